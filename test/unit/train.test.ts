// `sgm train` (src/training/main.ts): every toy config trains a few steps from tiny data files the
// test writes; the log dir has main.py's layout; a checkpoint loads as an engine; resuming from the
// log dir repeats an uninterrupted run exactly (losses and weights), with EMA and with gradient
// accumulation; the options' naming rules and errors.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../../src/registry.js';
import * as T from '../../src/tensor/index.js';
import { main } from '../../src/cli/main.js';
import { loadConfigs } from '../../src/config/index.js';
import { loadModelFromConfig } from '../../src/models/load.js';
import { readSafetensors, SafetensorsFile } from '../../src/io/safetensors.js';
import { readImageRgb } from '../../src/io/image.js';
import { train, resolveLayout, configRunName, checkpointName, TrainError, type TrainOptions, type BatchRecord } from '../../src/training/main.js';
import { drawLossCurve, movingAverage, niceTicks } from '../../src/training/plot.js';
import { writeTinyCifar, writeTinyMnist, TINY_COND, TINY_UNET } from '../helpers/train-data.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const toy = join(repoRoot, 'configs', 'example_training', 'toy');
const refToy = resolve(repoRoot, '..', 'shared', 'reference-configs', 'example_training', 'toy');
const work = mkdtempSync(join(tmpdir(), 'sgm-train-'));
test.after(() => rmSync(work, { recursive: true, force: true }));
const mnistDir = writeTinyMnist(join(work, 'mnist'), 24);
const cifarDir = writeTinyCifar(join(work, 'cifar'), 4);

const quiet = { log: () => {}, progressStream: { write: () => true } };
/** Overrides for fast runs: tiny UNet, batch 8, no image logging unless asked. */
const FAST = [...TINY_UNET, 'data.params.batch_size=8', 'lightning.callbacks.image_logger.params.disabled=true'];

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const w = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string | Uint8Array) => ((err += typeof s === 'string' ? s : Buffer.from(s).toString()), true)) as typeof process.stderr.write;
  try {
    const code = await main(args, (s) => void (out += s));
    return { code, out, err };
  } finally {
    process.stderr.write = w;
  }
}

function weights(path: string): Map<string, Uint8Array> {
  const m = new Map<string, Uint8Array>();
  for (const [k, v] of readSafetensors(path)) m.set(k, new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength).slice());
  return m;
}

function metrics(logdir: string): BatchRecord[] {
  return readFileSync(join(logdir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as BatchRecord);
}

test("the project's toy configs hold the reference's settings", { skip: existsSync(refToy) ? false : `${refToy} is absent` }, () => {
  const names = readdirSync(toy).filter((f) => f.endsWith('.yaml')).sort();
  assert.deepEqual(names, ['cifar10_cond.yaml', 'mnist.yaml', 'mnist_cond.yaml', 'mnist_cond_discrete_eps.yaml', 'mnist_cond_l1_loss.yaml', 'mnist_cond_with_ema.yaml']);
  for (const f of names) assert.deepEqual(loadConfigs([join(toy, f)]), loadConfigs([join(refToy, f)]), f);
});

for (const name of ['mnist', 'mnist_cond', 'mnist_cond_discrete_eps', 'mnist_cond_l1_loss', 'mnist_cond_with_ema', 'cifar10_cond']) {
  test(`sgm train: ${name}.yaml trains 2 steps from a clean start`, async () => {
    const cond = name !== 'mnist' ? TINY_COND : [];
    const dataDir = name.startsWith('cifar') ? cifarDir : mnistDir;
    const logs = join(work, `toy-${name}`);
    const r = await cli(['train', '--base', join(toy, `${name}.yaml`), '-l', logs, '--data-dir', dataDir, '--max-steps', '2', '--no-test', ...FAST, ...cond]);
    assert.equal(r.code, 0, r.err);
    const [run] = readdirSync(logs);
    assert.match(run!, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d-\\d\\d-\\d\\d_example_training-toy-${name}$`));
    const logdir = join(logs, run!);
    assert.equal(r.out.trim().split('\n').at(-1), logdir);
    const cfgs = readdirSync(join(logdir, 'configs')).sort();
    assert.equal(cfgs.length, 2);
    assert.match(cfgs[0]!, /-lightning\.yaml$/);
    assert.match(cfgs[1]!, /-project\.yaml$/);
    const project = loadConfigs([join(logdir, 'configs', cfgs[1]!)]);
    assert.equal(project['lightning'], undefined, 'the lightning section is saved separately');
    const lightning = loadConfigs([join(logdir, 'configs', cfgs[0]!)]) as { lightning: { trainer: Record<string, unknown> } };
    assert.equal(lightning.lightning.trainer['max_steps'], 2);
    const m = metrics(logdir);
    assert.deepEqual(m.map((x) => x.step), [1, 2]);
    for (const x of m) assert.ok(Number.isFinite(x.loss) && x.loss > 0 && x.lr === 1e-4 && x.images_per_s > 0);
    assert.equal(readFileSync(join(logdir, 'metrics.csv'), 'utf8').split('\n')[0], 'step,epoch,batch_idx,loss,lr,images_per_s,time');
    assert.ok(existsSync(join(logdir, 'loss.png')));
    const latest = JSON.parse(readFileSync(join(logdir, 'checkpoints', 'latest.json'), 'utf8'));
    assert.equal(latest.global_step, 2);
    const keys = SafetensorsFile.open(join(logdir, 'checkpoints', 'last.safetensors')).keys();
    assert.ok(keys.some((k) => k.startsWith('model.diffusion_model.')));
    assert.equal(keys.some((k) => k.startsWith('model_ema.')), name === 'mnist_cond_with_ema');
    assert.equal(keys.some((k) => k.startsWith('conditioner.embedders.0.')), name !== 'mnist');
    if (name === 'mnist_cond_discrete_eps') assert.ok(keys.includes('denoiser.sigmas'));
  });
}

test('sgm train: the checkpoint loads as an engine from the saved project config and samples; images, numbered checkpoints', async () => {
  const logs = join(work, 'images');
  const r = await cli([
    'train', join(toy, 'mnist_cond.yaml'), '-l', logs, '-n', 'img', '--data-dir', mnistDir, '--max-steps', '3', '--no-test', ...TINY_UNET, ...TINY_COND,
    'data.params.batch_size=8', 'model.params.sampler_config.params.num_steps=2', 'lightning.modelcheckpoint.params.every_n_train_steps=2',
    'lightning.callbacks.metrics_over_trainsteps_checkpoint.params.every_n_train_steps=3',
    'lightning.callbacks.image_logger.params.batch_frequency=2', 'lightning.callbacks.image_logger.params.max_images=4', 'lightning.callbacks.image_logger.params.log_images_kwargs.N=4',
  ]);
  assert.equal(r.code, 0, r.err);
  const [run] = readdirSync(logs);
  assert.match(run!, /_img$/);
  const logdir = join(logs, run!);
  // increase_log_steps: global steps 1 and 2 (then every 2)
  const imgs = readdirSync(join(logdir, 'images', 'train')).filter((f) => f.endsWith('.png')).sort();
  assert.deepEqual(imgs, ['inputs_gs-000001_e-000000_b-000000.png', 'inputs_gs-000002_e-000000_b-000001.png', 'reconstructions_gs-000001_e-000000_b-000000.png', 'reconstructions_gs-000002_e-000000_b-000001.png', 'samples_gs-000001_e-000000_b-000000.png', 'samples_gs-000002_e-000000_b-000001.png']);
  const grid = await readImageRgb(join(logdir, 'images', 'train', imgs[0]!));
  assert.deepEqual([grid.width, grid.height], [4 * 30 + 2, 30 + 2], 'make_grid(nrow=4, padding=2) of four 28x28 images');
  const ck = readdirSync(join(logdir, 'checkpoints'));
  assert.ok(ck.includes('epoch=000000-step=000000002.safetensors'), ck.join(', '));
  assert.deepEqual(readdirSync(join(logdir, 'checkpoints', 'trainstep_checkpoints')), ['epoch=000000-step=000000003.safetensors']);
  // the weights load strictly into the engine the saved project config builds, and sample
  const project = join(logdir, 'configs', readdirSync(join(logdir, 'configs')).find((f) => f.endsWith('-project.yaml'))!);
  const { engine, report } = loadModelFromConfig(loadConfigs([project]) as Record<string, unknown>, join(logdir, 'checkpoints', 'last.safetensors'), { verbose: false });
  assert.deepEqual([report!.missing, report!.unexpected, report!.mismatched], [[], [], []]);
  const cls = T.constant(BigInt64Array.of(1n, 7n), [2], 'int64');
  const [c, uc] = engine.conditioner.get_unconditional_conditioning({ cls }, null, ['cls']);
  const x = await engine.sample(c, uc, 2, [1, 28, 28], { generator: new T.Generator().manualSeed(0) });
  const v = (await x.data()) as Float32Array;
  assert.equal(v.length, 2 * 28 * 28);
  assert.ok(v.every(Number.isFinite));
});

async function run(name: string, extra: Partial<TrainOptions>, overrides: string[], base = 'mnist_cond_with_ema.yaml'): Promise<string> {
  const logs = join(work, 'resume');
  const r = await train({ base: [join(toy, base)], overrides: [...FAST, ...TINY_COND, ...overrides], logdir: logs, name, dataDir: mnistDir, noTest: true, ...quiet, ...extra });
  return r.logdir;
}

for (const [label, base, acc, n, m] of [
  ['with EMA', 'mnist_cond_with_ema.yaml', 1, 2, 3],
  ['with EMA and accumulate_grad_batches 2', 'mnist_cond_with_ema.yaml', 2, 1, 2],
] as const) {
  test(`resume ${label}: N steps + resume M steps == N + M steps (losses and weights exactly)`, async () => {
    const ov = [`lightning.trainer.accumulate_grad_batches=${acc}`, 'lightning.modelcheckpoint.params.every_n_train_steps=1000'];
    const tag = `${acc}`;
    const full = await run(`full${tag}`, { maxSteps: n + m }, ov, base);
    const part = await run(`part${tag}`, { maxSteps: n }, ov, base);
    // a NEW engine, trainer and data loader, built from the log dir
    const resumed = await train({ resume: part, maxSteps: n + m, noTest: true, ...quiet });
    assert.equal(resumed.globalStep, n + m);
    const a = metrics(full);
    const b = metrics(part);
    assert.equal(a.length, (n + m) * acc, 'one record per batch');
    assert.deepEqual(b.map((x) => x.loss), a.map((x) => x.loss));
    assert.deepEqual(b.map((x) => [x.step, x.epoch, x.batch_idx]), a.map((x) => [x.step, x.epoch, x.batch_idx]));
    const wa = weights(join(full, 'checkpoints', 'last.safetensors'));
    const wb = weights(join(part, 'checkpoints', 'last.safetensors'));
    assert.deepEqual([...wb.keys()], [...wa.keys()]);
    assert.ok([...wa.keys()].some((k) => k.startsWith('model_ema.')));
    for (const [k, v] of wa) assert.deepEqual(wb.get(k), v, k);
    // two project configs now (the first run's and the resume's), both under configs/
    assert.ok(readdirSync(join(part, 'configs')).length >= 2);
  });
}

test('resume from a checkpoint file inside the log dir; scale_lr; the previous pair is deleted', async () => {
  const logdir = await run('file', { maxSteps: 1, scaleLr: true }, ['lightning.modelcheckpoint.params.every_n_train_steps=1'], 'mnist_cond.yaml');
  assert.equal(metrics(logdir)[0]!.lr, 1e-4 * 8, 'lr = accumulate (1) * ngpu (1) * batch size (8) * base_lr');
  const r = await train({ resume: join(logdir, 'checkpoints', 'last.safetensors'), maxSteps: 2, noTest: true, scaleLr: true, ...quiet });
  assert.equal(r.globalStep, 2);
  const files = readdirSync(join(logdir, 'checkpoints')).filter((f) => f.startsWith('pair-'));
  assert.deepEqual(files.sort(), ['pair-000000002.safetensors', 'pair-000000002.state.safetensors']);
});

test('log dir names follow main.py', () => {
  const now = '2024-01-02T03-04-05';
  assert.equal(configRunName(join('configs', 'example_training', 'toy', 'mnist.yaml')), 'example_training-toy-mnist');
  assert.equal(configRunName(join('x', 'mnist.yaml')), 'mnist');
  assert.equal(configRunName(join('configs', 'a', 'b.yaml'), true), 'b');
  const L = (o: TrainOptions): string => resolveLayout({ logdir: 'L', base: [join('configs', 'toy', 'm.yaml')], ...o }, now).logdir;
  assert.equal(L({}), join('L', `${now}_toy-m`));
  assert.equal(L({ name: 'run', postfix: '-x' }), join('L', `${now}_run-x`));
  assert.equal(L({ noDate: true }), join('L', 'toy-m'));
  assert.equal(L({ noBaseName: true }), join('L', now));
  assert.throws(() => resolveLayout({ name: 'a', resume: 'b' }, now), TrainError);
  assert.equal(checkpointName('{epoch:06}-{step:09}', 3, 42), 'epoch=000003-step=000000042');
});

test('sgm train: errors are one line without a stack trace', async () => {
  const r1 = await cli(['train', '-n', 'a', '-r', work]);
  assert.equal(r1.code, 2);
  assert.match(r1.err, /cannot be specified both/);
  const r2 = await cli(['train', '-r', join(work, 'nope')]);
  assert.equal(r2.code, 2);
  assert.match(r2.err, /Cannot find/);
  const r3 = await cli(['train', join(toy, 'mnist.yaml'), '-l', join(work, 'err'), '--data-dir', join(work, 'missing')]);
  assert.equal(r3.code, 2);
  assert.match(r3.err, /does not exist/);
});

test('loss plot: axes and curves drawn into an RGB buffer', () => {
  assert.deepEqual(movingAverage([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5]);
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1]);
  const img = drawLossCurve([1, 2, 3], [1, 0.5, 0.25], { width: 200, height: 100 });
  assert.equal(img.data.length, 200 * 100 * 3);
  let dark = 0;
  for (let i = 0; i < img.data.length; i += 3) if (img.data[i]! < 100 && img.data[i + 2]! > 100) dark++;
  assert.ok(dark > 20, 'the moving-average line is drawn');
});
