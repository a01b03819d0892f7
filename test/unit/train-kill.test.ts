// Killing `sgm train` while it writes a checkpoint (SIGKILL in the middle of the weights file, of
// the state file, and between replacing latest.json and deleting the old pair) never leaves a
// half-written file named as the latest: latest.json always names a complete pair that loads, and
// resuming after every kill ends with exactly the losses and weights of an uninterrupted run.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../../src/registry.js';
import { readSafetensors, SafetensorsFile } from '../../src/io/safetensors.js';
import { train, type TrainOptions } from '../../src/training/main.js';
import { writeTinyMnist, TINY_COND, TINY_UNET } from '../helpers/train-data.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const helper = join(repoRoot, 'test', 'helpers', 'train-child.ts');
const work = mkdtempSync(join(tmpdir(), 'sgm-train-kill-'));
test.after(() => rmSync(work, { recursive: true, force: true }));
const mnistDir = writeTinyMnist(join(work, 'mnist'), 24);

const MAX = 6;
const overrides = [
  ...TINY_UNET,
  ...TINY_COND,
  'data.params.batch_size=8',
  'lightning.callbacks.image_logger.params.disabled=true',
  'lightning.modelcheckpoint.params.every_n_train_steps=1',
];

/** Runs the helper until it reports `phase` at a global step >= minStep, then SIGKILLs it there. */
function runAndKill(opts: TrainOptions, phase: string, minStep: number): Promise<{ killedAt: number; out: string }> {
  return new Promise((resolveP, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', helper, JSON.stringify(opts)], {
      cwd: repoRoot,
      env: { ...process.env, SGM_TEST_SAVE_PAUSE_MS: '500' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let killedAt = -1;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        const m = /^SAVING (\w+) (\d+) /.exec(line);
        if (m && killedAt < 0 && m[1] === phase && Number(m[2]) >= minStep) {
          killedAt = Number(m[2]);
          child.kill('SIGKILL');
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => void (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (killedAt < 0) reject(new Error(`the child ended (${code ?? signal}) before the ${phase} save at step ${minStep}:\n${out}\n${err}`));
      else if (signal !== 'SIGKILL') reject(new Error(`the child was not killed: ${code}\n${err}`));
      else resolveP({ killedAt, out });
    });
  });
}

/** latest.json names a complete pair; last.safetensors is complete; both load. */
function checkLatest(logdir: string, minStep: number): number {
  const ck = join(logdir, 'checkpoints');
  const latest = JSON.parse(readFileSync(join(ck, 'latest.json'), 'utf8')) as { weights: string; state: string; global_step: number };
  assert.ok(latest.global_step >= minStep, `latest is at step ${latest.global_step}`);
  for (const f of [latest.weights, latest.state, 'last.safetensors', 'last.state.safetensors']) {
    const sf = SafetensorsFile.open(join(ck, f)); // validates the header against the file size
    sf.close();
    readSafetensors(join(ck, f)); // every tensor's bytes are there
  }
  const meta = JSON.parse(SafetensorsFile.open(join(ck, latest.state)).metadata['sgm_train_state']!) as { global_step: number; weights: string };
  assert.equal(meta.global_step, latest.global_step, 'the state file belongs to the pair');
  assert.equal(meta.weights, latest.weights);
  return latest.global_step;
}

test('SIGKILL during checkpoint writes: the latest complete pair always loads, and resuming repeats an uninterrupted run', async () => {
  const base = { base: [join(repoRoot, 'configs', 'example_training', 'toy', 'mnist_cond_with_ema.yaml')], overrides, dataDir: mnistDir, noTest: true, maxSteps: MAX };
  // 1: a fresh run killed half-way through writing the weights of step 2's checkpoint
  const first = await runAndKill({ ...base, logdir: join(work, 'logs'), name: 'killed' }, 'weights', 2);
  const logdir = join(work, 'logs', readdirSync(join(work, 'logs'))[0]!);
  assert.equal(checkLatest(logdir, 1), first.killedAt - 1);
  assert.ok(readdirSync(join(logdir, 'checkpoints')).some((f) => f.endsWith('.tmp')), 'the half-written file exists only under a temporary name');
  // 2: resumed, killed while writing the state file
  const second = await runAndKill({ resume: logdir, maxSteps: MAX, noTest: true }, 'state', first.killedAt + 1);
  assert.equal(checkLatest(logdir, 1), second.killedAt - 1);
  // 3: resumed, killed after latest.json was replaced but before the old pair was deleted
  const third = await runAndKill({ resume: logdir, maxSteps: MAX, noTest: true }, 'pointer', second.killedAt + 1);
  assert.equal(checkLatest(logdir, 1), third.killedAt);
  // finish in this process; temporary files and orphaned pairs are cleaned up on resume
  const r = await train({ resume: logdir, maxSteps: MAX, noTest: true, log: () => {}, progressStream: { write: () => true } });
  assert.equal(r.globalStep, MAX);
  const left = readdirSync(join(logdir, 'checkpoints'));
  assert.ok(!left.some((f) => f.endsWith('.tmp')), left.join(', '));
  assert.deepEqual(left.filter((f) => f.startsWith('pair-')).length, 2);
  // the same run without interruptions
  const clean = await train({ ...base, logdir: join(work, 'clean'), name: 'clean', log: () => {}, progressStream: { write: () => true } });
  const losses = (d: string): number[] => readFileSync(join(d, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { loss: number }).loss);
  assert.deepEqual(losses(logdir), losses(clean.logdir));
  const a = readSafetensors(join(clean.logdir, 'checkpoints', 'last.safetensors'));
  const b = readSafetensors(join(logdir, 'checkpoints', 'last.safetensors'));
  for (const [k, v] of a) assert.deepEqual(b.get(k)!.data, v.data, k);
  assert.ok(existsSync(join(logdir, 'loss.png')));
});
