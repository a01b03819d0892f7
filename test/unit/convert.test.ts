// sgm convert: float tensors to another precision, integers unchanged, keys filtered, atomic.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile, writeSafetensors } from '../../src/io/safetensors.js';
import { convertCheckpoint } from '../../src/io/convert.js';
import { f16ToF32 } from '../../src/tensor/dtype-convert.js';
import { main } from '../../src/cli/main.js';

const dir = mkdtempSync(join(tmpdir(), 'sgm-convert-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('convert: float32 -> float16 rounds each value, int64 is copied, prefixes are dropped', async () => {
  const src = join(dir, 'in.safetensors');
  const w = Float32Array.from([0.1, -2.5, 65504, 1e-8, 3.14159]);
  writeSafetensors(src, {
    'model.w': { dtype: 'F32', shape: [5], data: w },
    'model.ids': { dtype: 'I64', shape: [3], data: BigInt64Array.from([0n, 1n, 76n]) },
    'model_ema.w': { dtype: 'F32', shape: [5], data: w },
  });
  const dst = join(dir, 'out.safetensors');
  assert.equal(convertCheckpoint(src, dst, { dtype: 'float16', drop: ['model_ema.'] }), 2);
  const f = SafetensorsFile.open(dst);
  assert.deepEqual(f.keys().sort(), ['model.ids', 'model.w']);
  assert.equal(f.info('model.w').dtype, 'F16');
  const back = f16ToF32(f.read('model.w') as Uint16Array);
  for (let i = 0; i < w.length; i++) assert.ok(Math.abs(back[i]! - w[i]!) <= Math.abs(w[i]!) * 2 ** -11 + 6e-8, `value ${i}`);
  assert.deepEqual(Array.from(f.read('model.ids') as BigInt64Array), [0n, 1n, 76n]);
  f.close();
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), [], 'no temporary files left');
});

test('sgm convert: a corrupt input is an error naming the file, and nothing is written', async () => {
  const bad = join(dir, 'bad.safetensors');
  writeFileSync(bad, Buffer.from([1, 2, 3]));
  const dst = join(dir, 'never.safetensors');
  const code = await main(['convert', bad, dst], () => {});
  assert.equal(code, 2);
  assert.equal(existsSync(dst), false);
});
