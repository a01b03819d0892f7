// The opt-in conversion cache (SGM_WEIGHT_CACHE): fp16 weights converted for an fp32 graph are
// written once and reused by the next process with the same numbers; a changed checkpoint is
// converted again.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { f32ToF16 } from '../../src/tensor/dtype-convert.js';

const here = dirname(fileURLToPath(import.meta.url));
const child = resolve(here, '..', 'helpers', 'weight-cache-child.ts');
const dir = mkdtempSync(join(tmpdir(), 'sgm-wcache-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function run(ckpt: string, cache: string): { y: number[]; files: string[] } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', child, ckpt, cache], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  // The index is written when the child exits: list the folder afterwards.
  return { y: JSON.parse(r.stdout.trim().split('\n').pop()!).y, files: readdirSync(cache).sort() };
}

test('weight cache: the second process reuses the converted weights, with identical outputs', () => {
  const ckpt = join(dir, 'conv.safetensors');
  const w = Float32Array.from({ length: 8 * 4 * 9 }, (_, i) => Math.cos(i * 0.7) * 0.3);
  const b = Float32Array.from({ length: 8 }, (_, i) => i * 0.01);
  writeSafetensors(ckpt, { weight: { dtype: 'F16', shape: [8, 4, 3, 3], data: f32ToF16(w) }, bias: { dtype: 'F16', shape: [8], data: f32ToF16(b) } });
  const cache = join(dir, 'cache');
  const first = run(ckpt, cache);
  const dataFiles = first.files.filter((f) => f.endsWith('.bin'));
  assert.equal(dataFiles.length, 1, 'one data file written');
  assert.equal(first.files.filter((f) => f.endsWith('.json')).length, 1, 'one index');
  const second = run(ckpt, cache);
  assert.deepEqual(second.files, first.files, 'nothing converted again');
  assert.deepEqual(second.y, first.y, 'same numbers from the cached weights');
  // Without the cache: the same numbers (the cache changes nothing but the time).
  const none = spawnSync(process.execPath, ['--import', 'tsx', child, ckpt, join(dir, 'other')], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(none.stdout.trim()).y, first.y);
  // A changed checkpoint (new mtime) is converted again into a new data file.
  utimesSync(ckpt, new Date(), new Date(Date.now() + 5000));
  const third = run(ckpt, cache);
  assert.equal(third.files.filter((f) => f.endsWith('.bin')).length, 2);
  assert.deepEqual(third.y, first.y);
});
