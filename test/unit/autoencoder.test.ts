// The autoencoders: model.py's blocks, Encoder/Decoder, the Gaussian posterior and regularizer,
// AutoencoderKL / AutoencodingEngine and the SVD temporal decoder, checked against the reference's
// fixtures (../shared/fixtures/networks) directly (a quick subset of what the data-driven network
// runner covers, with the traced intermediates), plus key layouts of the full-size first stages of
// the reference configs and the behaviour the fixtures do not pin down.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as T from '../../src/tensor/index.js';
import * as nn from '../../src/nn/index.js';
import { SafetensorsFile, readSafetensors } from '../../src/io/safetensors.js';
import { stateSourceFromSafetensors } from '../../src/io/checkpoint.js';
import { ConfigError, NotImplementedTargetError, instantiateFromConfig, loadConfigFile } from '../../src/config/index.js';
import { registry } from '../../src/registry.js';
import * as M from '../../src/modules/diffusionmodules/model.js';
import { DiagonalGaussianDistribution } from '../../src/modules/distributions/distributions.js';
import { DiagonalGaussianRegularizer } from '../../src/modules/autoencoding/regularizers/index.js';
import { AE3DConv, VideoDecoder, VideoResBlock } from '../../src/modules/autoencoding/temporal_ae.js';
import {
  AutoencoderKL,
  AutoencoderKLModeOnly,
  AutoencodingEngine,
  IdentityFirstStage,
  type AutoencoderKLParams,
} from '../../src/models/autoencoder.js';
import { registerAutoencoderTargets } from '../../src/models/autoencoder_targets.js';
import { fixtureRoot } from '../helpers/fixtures.js';
import { assertClose, type Tolerance } from '../helpers/close.js';

registerAutoencoderTargets(registry); // idempotent; src/registry.ts does it too once wired

const NETWORKS = join(fixtureRoot(), 'networks');
const CONFIGS = process.env.SGM_REFERENCE_CONFIGS ? resolve(process.env.SGM_REFERENCE_CONFIGS) : resolve(fixtureRoot(), '..', 'reference-configs');

function requireFixtures(): void {
  if (!existsSync(NETWORKS)) {
    assert.fail(
      `network fixtures not found at ${NETWORKS}: put the fixtures at ../shared/fixtures beside the repository or set SGM_FIXTURES_DIR`,
    );
  }
}

interface Case {
  name: string;
  spec: Record<string, any>;
  io: Map<string, { dtype: string; shape: number[]; data: ArrayLike<number> }>;
}

/** Loads a case: its json and io file, and (when `module` is given) its weights, strictly. */
function loadCase(name: string, module?: nn.Module): Case {
  requireFixtures();
  const spec = JSON.parse(readFileSync(join(NETWORKS, `${name}.json`), 'utf8'));
  if (module) {
    module.loadStateDict(stateSourceFromSafetensors(SafetensorsFile.open(join(NETWORKS, `${name}.weights.safetensors`))), { where: name });
    module.eval();
  }
  const io = readSafetensors(join(NETWORKS, `${name}.io.safetensors`)) as unknown as Case['io'];
  return { name, spec, io };
}

function input(c: Case, key: string): T.Tensor {
  const e = c.io.get(key);
  assert.ok(e, `${c.name}: no ${key} in the io file`);
  return T.constant(e.data as Float32Array, e.shape, 'float32');
}

function tolerance(c: Case, key: string): Tolerance {
  const per = c.spec.tolerance.per_output[key];
  assert.ok(per, `${c.name}: no tolerance for ${key}`);
  return { atol: per.atol, rtol: per.rtol };
}

/** The worst |got - ref| / (atol + rtol |ref|) seen per case output (printed at the end). */
const fractions: string[] = [];

/** Compares computed outputs with the case's `out.*` tensors under their own tolerances. */
async function expectOutputs(c: Case, outputs: Record<string, T.Tensor>): Promise<void> {
  const keys = Object.keys(outputs);
  const values = await T.evaluate(keys.map((k) => outputs[k]!));
  keys.forEach((k, i) => {
    const ref = c.io.get(k);
    assert.ok(ref, `${c.name}: the io file has no ${k}`);
    assert.deepEqual([...outputs[k]!.shape], ref.shape, `${c.name}: ${k} shape`);
    const tol = tolerance(c, k);
    const got = values[i] as Float32Array;
    assertClose(got, ref.data as Float32Array, tol, `${c.name}: ${k}`);
    let worst = 0;
    for (let j = 0; j < got.length; j++) worst = Math.max(worst, Math.abs(got[j]! - ref.data[j]!) / (tol.atol + tol.rtol * Math.abs(ref.data[j]!)));
    fractions.push(`${c.name} ${k}: ${worst.toFixed(3)}`);
  });
}

/** Runs `fn` recording the outputs of the sub-modules at `paths` (the fixtures' `trace` lists) as out.trace.<prefix><path>. */
function traced<R>(root: nn.Module, paths: string[], prefix: string, fn: () => R): [R, Record<string, T.Tensor>] {
  const modules = new Map(root.namedModules());
  const got: Record<string, T.Tensor> = {};
  const restore: Array<() => void> = [];
  for (const p of paths) {
    const m = modules.get(p) as (nn.Module & { forward: (...a: unknown[]) => unknown }) | undefined;
    assert.ok(m, `no sub-module ${p}`);
    const original = m.forward;
    m.forward = function (this: unknown, ...args: unknown[]) {
      const out = original.apply(this, args);
      got[`out.trace.${prefix}${p}`] = out as T.Tensor;
      return out;
    };
    restore.push(() => delete (m as Partial<typeof m>).forward);
  }
  try {
    return [fn(), got];
  } finally {
    restore.forEach((r) => r());
  }
}

function traceList(c: Case, step: number): string[] {
  return (c.spec.call[step].trace ?? []) as string[];
}

function build<U extends nn.Module>(name: string): U {
  requireFixtures();
  const spec = JSON.parse(readFileSync(join(NETWORKS, `${name}.json`), 'utf8'));
  return instantiateFromConfig<U>({ target: spec.target, params: spec.params }, { path: name });
}

test('fixture parity: model.py building blocks', async () => {
  {
    const m = build<nn.GroupNorm>('vae_normalize');
    assert.equal(m.opts.eps, 1e-6);
    const c = loadCase('vae_normalize', m);
    await expectOutputs(c, { 'out.output': m.forward(input(c, 'in.x')) });
  }
  {
    const m = build<M.ResnetBlock>('vae_resnetblock');
    assert.ok(m.nin_shortcut && !m.temb_proj);
    const c = loadCase('vae_resnetblock', m);
    await expectOutputs(c, { 'out.output': m.forward(input(c, 'in.x'), null) });
  }
  {
    const m = build<M.ResnetBlock>('vae_resnetblock_temb_convshortcut');
    assert.ok(m.conv_shortcut && m.temb_proj);
    const c = loadCase('vae_resnetblock_temb_convshortcut', m);
    await expectOutputs(c, { 'out.output': m.forward(input(c, 'in.x'), input(c, 'in.temb')) });
  }
  for (const name of ['vae_attnblock', 'vae_memory_efficient_attnblock']) {
    const m = build<M.AttnBlock>(name);
    const c = loadCase(name, m);
    await expectOutputs(c, { 'out.output': m.forward(input(c, 'in.x')) });
  }
});

test('fixture parity: Encoder and Decoder with attention in the down / up path (traced)', async () => {
  {
    const m = build<M.Encoder>('encoder_attn');
    const c = loadCase('encoder_attn', m);
    const [out, traces] = traced(m, traceList(c, 0), '', () => m.forward(input(c, 'in.x')));
    await expectOutputs(c, { 'out.output': out, ...traces });
  }
  {
    const m = build<M.Decoder>('decoder_attn');
    assert.equal(m.up.at(1).attn.length, 2);
    const c = loadCase('decoder_attn', m);
    const [out, traces] = traced(m, traceList(c, 0), '', () => m.forward(input(c, 'in.z')));
    await expectOutputs(c, { 'out.output': out, ...traces });
  }
});

test('fixture parity: AutoencoderKL (encoder, moments, posterior, sampled z + kl_loss, decode, decode(mean))', async () => {
  const m = build<AutoencoderKL>('autoencoder_kl_sdxl_like');
  const c = loadCase('autoencoder_kl_sdxl_like', m);
  const x = input(c, 'in.x');
  const [h, encTraces] = traced(m, traceList(c, 0), '', () => m.encoder.forward(x));
  const moments = m.quant_conv.forward(h);
  const posterior = new DiagonalGaussianDistribution(moments);
  // encode draws torch.randn(mean.shape) after torch.manual_seed(1234): the same numbers as noise.0
  const step = c.spec.call[3];
  T.manualSeed(step.seed);
  const [z, log] = m.encode(x, true);
  T.manualSeed(step.seed);
  const draw = T.defaultGenerator.randnData(posterior.mean.shape);
  assert.deepEqual(Array.from(draw), Array.from(c.io.get('noise.0')!.data), 'the seeded draw reproduces noise.0');
  const [zReplay] = m.encode(x, true, false, { noise: c.io.get('noise.0')!.data as Float32Array });
  const [dec, decTraces] = traced(m, traceList(c, 4), '', () => m.decode(input(c, 'in.z')));
  await expectOutputs(c, {
    'out.h': h,
    ...encTraces,
    'out.moments': moments,
    'out.mean': posterior.mean,
    'out.logvar': posterior.logvar,
    'out.std': posterior.std,
    'out.z_sample': z,
    'out.kl_loss': log.kl_loss!,
    'out.dec': dec,
    ...decTraces,
    'out.rec_mode': m.decode(posterior.mean),
  });
  await expectOutputs(c, { 'out.z_sample': zReplay });
  // kl_loss against an independent float64 computation from the reference's mean / logvar
  const mean = c.io.get('out.mean')!;
  const logvar = c.io.get('out.logvar')!;
  let kl = 0;
  for (let i = 0; i < mean.data.length; i++) kl += 0.5 * (mean.data[i]! ** 2 + Math.exp(logvar.data[i]!) - 1 - logvar.data[i]!);
  kl /= mean.shape[0]!;
  assertClose([await log.kl_loss!.item()], [kl], tolerance(c, 'out.kl_loss'), 'kl_loss vs float64');
});

test('fixture parity: temporal autoencoder blocks (VideoResBlock, AE3DConv)', async () => {
  {
    const m = build<VideoResBlock>('tae_video_resblock');
    const c = loadCase('tae_video_resblock', m);
    await expectOutputs(c, { 'out.output': m.forward(input(c, 'in.x'), null, { timesteps: 3 }) });
    assert.throws(() => m.forward(input(c, 'in.x'), null), /timesteps/);
    assert.throws(() => m.forward(input(c, 'in.x'), null, { timesteps: 4 }), /not a whole number of videos/);
    // skip_video: the plain ResnetBlock
    const plain = new M.ResnetBlock({ in_channels: 32, out_channels: 64, dropout: 0, temb_channels: 0 });
    plain.loadStateDict(m.stateDict(), { strict: false });
    assert.deepEqual(await m.forward(input(c, 'in.x'), null, { skip_video: true }).toArray(), await plain.forward(input(c, 'in.x')).toArray());
  }
  {
    const m = build<AE3DConv>('tae_ae3dconv');
    const c = loadCase('tae_ae3dconv', m);
    await expectOutputs(c, { 'out.output': m.forward(input(c, 'in.x'), { timesteps: 3 }) });
  }
});

test('temporal_ae.VideoBlock waits for VideoTransformerBlock (a placeholder naming why)', (t) => {
  requireFixtures();
  try {
    build('tae_video_block');
    t.diagnostic('VideoBlock is implemented now: run tae_video_block here');
  } catch (e) {
    assert.ok(e instanceof NotImplementedTargetError && /VideoTransformerBlock/.test(e.message), String(e));
    t.todo('tae_video_block: VideoBlock needs sgm.modules.video_attention.VideoTransformerBlock');
  }
});

test('fixture parity: VideoDecoder and the SVD AutoencodingEngine', async () => {
  {
    const m = build<VideoDecoder>('video_decoder_svd_like');
    const c = loadCase('video_decoder_svd_like', m);
    const [out, traces] = traced(m, traceList(c, 0), '', () => m.forward(input(c, 'in.z'), { timesteps: 3 }));
    await expectOutputs(c, { 'out.output': out, ...traces });
    assert.throws(() => m.forward(input(c, 'in.z')), /timesteps/);
  }
  {
    const m = build<AutoencodingEngine>('autoencoding_engine_svd_like');
    const c = loadCase('autoencoding_engine_svd_like', m);
    const x = input(c, 'in.x');
    const [[moments, empty], encTraces] = traced(m, traceList(c, 0), '', () => m.encode(x, false, true));
    assert.deepEqual(empty, {});
    const posterior = new DiagonalGaussianDistribution(moments);
    T.manualSeed(c.spec.call[2].seed);
    const [z, log] = m.encode(x, true);
    const [dec, decTraces] = traced(m, traceList(c, 3), '', () => m.decode(input(c, 'in.z'), { timesteps: 3 }));
    await expectOutputs(c, {
      'out.moments': moments,
      ...encTraces,
      'out.mean': posterior.mean,
      'out.logvar': posterior.logvar,
      'out.std': posterior.std,
      'out.z_sample': z,
      'out.kl_loss': log.kl_loss!,
      'out.dec': dec,
      ...decTraces,
    });
  }
});

// ---------------------------------------------------------------- full-size key layouts

/** The reference-config first stages and the key list each must reproduce (the refiner's VAE is SDXL base's). */
const KEY_CASES: Array<[config: string, keys: string]> = [
  ['sd_xl_base', 'sd_xl_base'],
  ['sd_xl_refiner', 'sd_xl_base'],
  ['sd_2_1', 'sd_2_1'],
  ['sd_2_1_768', 'sd_2_1_768'],
  ['svd', 'svd'],
];

for (const [config, keys] of KEY_CASES) {
  test(`first_stage_config of inference/${config}.yaml has the released first_stage_model.* layout (keys_${keys}.json)`, () => {
    requireFixtures();
    const path = join(CONFIGS, 'inference', `${config}.yaml`);
    assert.ok(existsSync(path), `reference config ${path} not found (set SGM_REFERENCE_CONFIGS)`);
    const cfg = loadConfigFile(path) as Record<string, any>;
    const model = nn.withInitMode('none', () =>
      instantiateFromConfig<nn.Module>(cfg.model.params.first_stage_config, { path: 'model.params.first_stage_config' }),
    );
    const got = [...model.stateDict('first_stage_model.')].map(([k, v]) => [k, [...v.shape]]);
    const spec = JSON.parse(readFileSync(join(NETWORKS, `keys_${keys}.json`), 'utf8'));
    const expected = (spec.keys as Array<[string, number[]]>).filter(([k]) => k.startsWith('first_stage_model.'));
    assert.equal(got.length, expected.length, `${config}: ${got.length} keys, expected ${expected.length}`);
    assert.deepEqual(got, expected, `${config}: keys, shapes and their order`);
    assert.equal(model.numParameters(), spec.parts.first_stage_config.num_parameters);
    // built under init mode 'none': no parameter holds data until a checkpoint is loaded
    assert.ok(model.parameters().every((p) => p.rawStorage.kind === 'empty'));
  });
}

// ---------------------------------------------------------------- behaviour beyond the fixtures

function randn(shape: number[], seed: number): T.Tensor {
  const g = new T.Generator(seed);
  return T.tensor(g.randnData(shape), shape, 'float32');
}

const SMALL_DD = {
  double_z: true,
  z_channels: 4,
  resolution: 16,
  in_channels: 3,
  out_ch: 3,
  ch: 32,
  ch_mult: [1, 2],
  num_res_blocks: 1,
  attn_resolutions: [],
  dropout: 0.0,
};

test('DiagonalGaussianDistribution: clamp, deterministic, kl to another, nll, injected noise', async () => {
  const params = T.concat([randn([1, 2, 2, 2], 1), T.tensor([40, -40, 0, 1, 2, 3, -1, 0.5], [1, 2, 2, 2])], 1);
  const d = new DiagonalGaussianDistribution(params);
  assert.deepEqual(await d.logvar.toArray(), [20, -30, 0, 1, 2, 3, -1, 0.5]);
  const mean = await d.mean.toArray();
  const lv = [20, -30, 0, 1, 2, 3, -1, 0.5];
  // nll of a sample against float64
  const s = randn([1, 2, 2, 2], 2);
  const sv = await s.toArray();
  let nll = 0;
  for (let i = 0; i < 8; i++) nll += 0.5 * (Math.log(2 * Math.PI) + lv[i]! + (sv[i]! - mean[i]!) ** 2 / Math.exp(lv[i]!));
  assertClose([await T.sum(d.nll(s)).item()], [nll], { atol: 0, rtol: 1e-5 }, 'nll');
  // kl against another distribution, float64
  const other = new DiagonalGaussianDistribution(T.concat([randn([1, 2, 2, 2], 3), T.mul(randn([1, 2, 2, 2], 4), 0.3)], 1));
  const om = await other.mean.toArray();
  const olv = await other.logvar.toArray();
  let kl = 0;
  for (let i = 0; i < 8; i++) kl += 0.5 * ((mean[i]! - om[i]!) ** 2 / Math.exp(olv[i]!) + Math.exp(lv[i]!) / Math.exp(olv[i]!) - 1 - lv[i]! + olv[i]!);
  assertClose([await d.kl(other).item()], [kl], { atol: 0, rtol: 1e-5 }, 'kl(other)');
  // deterministic: std = var = 0, sample = mean, kl = nll = [0]
  const det = new DiagonalGaussianDistribution(params, true);
  assert.deepEqual(await det.std.toArray(), new Array(8).fill(0));
  assert.deepEqual(await det.sample().toArray(), mean);
  assert.deepEqual(await det.kl().toArray(), [0]);
  assert.deepEqual(await det.nll(s).toArray(), [0]);
  // injected noise, and a generator of our own
  const noise = Float32Array.from([1, 0, 0, 0, 0, 0, 0, 0]);
  const smp = await new DiagonalGaussianDistribution(params).sample(undefined, noise).toArray();
  assertClose([smp[0]!], [mean[0]! + Math.exp(10)], { atol: 0, rtol: 1e-6 }, 'sample with injected noise');
  const g1 = new T.Generator(7);
  const a = await d.sample(g1).toArray();
  const b = await d.sample(new T.Generator(7)).toArray();
  assert.deepEqual(a, b);
  assert.throws(() => d.sample(undefined, new Float32Array(3)), /noise has 3 values/);
  assert.throws(() => new DiagonalGaussianDistribution(randn([1, 3, 2, 2], 1)), /even number of channels/);
});

test('DiagonalGaussianRegularizer(sample=false) and AutoencoderKLModeOnly return the posterior mean', async () => {
  const z = randn([2, 8, 3, 3], 5);
  const [mode, log] = new DiagonalGaussianRegularizer({ sample: false }).forward(z);
  assert.deepEqual(await mode.toArray(), await T.slice(z, 1, 0, 4).toArray());
  assert.ok(log.kl_loss);
  const kl = new AutoencoderKL({ embed_dim: 4, ddconfig: SMALL_DD });
  const modeOnly = new AutoencoderKLModeOnly({ embed_dim: 4, ddconfig: SMALL_DD });
  modeOnly.loadStateDict(kl.stateDict());
  const x = randn([1, 3, 8, 8], 6);
  const [moments] = kl.encode(x, false, true);
  assert.deepEqual(await modeOnly.encode(x).toArray(), await T.slice(moments, 1, 0, 4).toArray());
});

test('AutoencodingEngineLegacy: max_batch_size splits encode / decode without changing the result', async () => {
  const whole = new AutoencoderKL({ embed_dim: 4, ddconfig: SMALL_DD });
  const split = new AutoencoderKL({ embed_dim: 4, ddconfig: SMALL_DD, max_batch_size: 2 });
  split.loadStateDict(whole.stateDict());
  const x = randn([3, 3, 8, 8], 8);
  const [a] = whole.encode(x, false, true);
  const [b] = split.encode(x, false, true);
  assertClose(await b.data(), await a.data(), { atol: 1e-6, rtol: 1e-5 }, 'encode');
  const z = randn([3, 4, 4, 4], 9);
  assertClose(await split.decode(z).data(), await whole.decode(z).data(), { atol: 1e-6, rtol: 1e-5 }, 'decode');
  const [zz, dec, log] = whole.forward(x);
  assert.deepEqual(zz.shape, [3, 4, 4, 4]);
  assert.deepEqual(dec.shape, [3, 3, 8, 8]);
  assert.ok(log.kl_loss);
});

test('Decoder options: give_pre_end, tanh_out; plain blocks reject decoder kwargs', async () => {
  const base = new M.Decoder({ ...SMALL_DD });
  const pre = new M.Decoder({ ...SMALL_DD, give_pre_end: true });
  const tanh = new M.Decoder({ ...SMALL_DD, tanh_out: true });
  pre.loadStateDict(base.stateDict());
  tanh.loadStateDict(base.stateDict());
  const z = randn([1, 4, 4, 4], 10);
  assert.deepEqual(pre.forward(z).shape, [1, 32, 8, 8]);
  const out = await base.forward(z).toArray();
  const th = await tanh.forward(z).toArray();
  assertClose(th, out.map(Math.tanh), { atol: 1e-6, rtol: 1e-6 }, 'tanh_out');
  assert.deepEqual(base.z_shape, [1, 4, 8, 8]);
  assert.throws(() => base.forward(z, { timesteps: 3 }), /unexpected keyword argument\(s\) 'timesteps'/);
});

test('make_attn: attention types and their modules', async () => {
  assert.ok(M.make_attn(32, 'vanilla') instanceof M.AttnBlock);
  assert.ok(M.make_attn(32, 'vanilla-xformers') instanceof M.MemoryEfficientAttnBlock);
  assert.ok(M.make_attn(32, 'none') instanceof nn.Identity);
  const lin = M.make_attn(32, 'linear');
  assert.ok(lin instanceof M.LinAttnBlock);
  // the reference's memory-efficient-cross-attn branch is unreachable: it falls through to LinAttnBlock
  assert.ok(M.make_attn(32, 'memory-efficient-cross-attn') instanceof M.LinAttnBlock);
  assert.throws(() => M.make_attn(32, 'flash'), /attn_type flash unknown/);
  assert.deepEqual([...lin.stateDict()].map(([k, v]) => [k, [...v.shape]]), [
    ['to_qkv.weight', [96, 32, 1, 1]],
    ['to_out.weight', [32, 32, 1, 1]],
    ['to_out.bias', [32]],
  ]);
  // LinearAttention against a host computation (heads 1: out = to_out(v softmax(k)^T q))
  const x = randn([1, 32, 2, 3], 11);
  const y = await lin.forward(x).data();
  const w = (await (lin as M.LinAttnBlock).to_qkv.weight.data()) as Float32Array;
  const wo = (await (lin as M.LinAttnBlock).to_out.weight.data()) as Float32Array;
  const bo = (await (lin as M.LinAttnBlock).to_out.bias!.data()) as Float32Array;
  const xv = (await x.data()) as Float32Array;
  const n = 6;
  const proj = (row: number, j: number): number => {
    let s = 0;
    for (let c = 0; c < 32; c++) s += w[row * 32 + c]! * xv[c * n + j]!;
    return s;
  };
  const q = (d: number, j: number) => proj(d, j);
  const k = (d: number, j: number) => proj(32 + d, j);
  const v = (e: number, j: number) => proj(64 + e, j);
  const ks = (d: number, j: number) => {
    let m = -Infinity;
    for (let i = 0; i < n; i++) m = Math.max(m, k(d, i));
    let s = 0;
    for (let i = 0; i < n; i++) s += Math.exp(k(d, i) - m);
    return Math.exp(k(d, j) - m) / s;
  };
  const ctx = (d: number, e: number) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += ks(d, i) * v(e, i);
    return s;
  };
  const ref: number[] = [];
  for (let o = 0; o < 32; o++) {
    for (let j = 0; j < n; j++) {
      let s = bo[o]!;
      for (let e = 0; e < 32; e++) {
        let a = 0;
        for (let d = 0; d < 32; d++) a += ctx(d, e) * q(d, j);
        s += wo[o * 32 + e]! * a;
      }
      ref.push(s);
    }
  }
  assertClose(y as Float32Array, ref, { atol: 1e-4, rtol: 1e-4 }, 'LinAttnBlock');
});

test('model.get_timestep_embedding: [sin | cos] with denominator half - 1, odd dims zero-padded', async () => {
  const t = T.tensor([0, 3, 250], [3]);
  for (const dim of [8, 7]) {
    const got = await M.get_timestep_embedding(t, dim).toArray();
    const half = Math.floor(dim / 2);
    const ref: number[] = [];
    for (const ts of [0, 3, 250]) {
      const f = Array.from({ length: half }, (_, i) => ts * Math.exp((-Math.log(10000) / (half - 1)) * i));
      ref.push(...f.map(Math.sin), ...f.map(Math.cos), ...(dim % 2 ? [0] : []));
    }
    assertClose(got, ref, { atol: 2e-5, rtol: 1e-5 }, `get_timestep_embedding dim ${dim}`);
  }
});

test('Downsample without conv is a 2x2 average pool; Upsample without conv repeats pixels', async () => {
  const x = T.tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [1, 1, 4, 4]);
  assert.deepEqual(await new M.Downsample({ in_channels: 1, with_conv: false }).forward(x).toArray(), [3.5, 5.5, 11.5, 13.5]);
  const up = await new M.Upsample({ in_channels: 1, with_conv: false }).forward(T.tensor([1, 2], [1, 1, 1, 2])).toArray();
  assert.deepEqual(up, [1, 1, 2, 2, 1, 1, 2, 2]);
  const down = new M.Downsample({ in_channels: 1, with_conv: true });
  // pad (0, 1, 0, 1) to 8x6, 3x3 stride 2 without padding
  assert.deepEqual(down.forward(T.zeros([1, 1, 7, 5])).shape, [1, 1, 3, 2]);
});

test('IdentityFirstStage, unregularized encode, VideoDecoder time modes, config errors', () => {
  const { ch: _ch, ...NO_CH } = SMALL_DD;
  const id = new IdentityFirstStage();
  const x = randn([1, 4, 2, 2], 12);
  assert.equal(id.encode(x), x);
  assert.equal(id.decode(x), x);
  assert.equal(instantiateFromConfig<IdentityFirstStage>({ target: 'sgm.models.autoencoder.IdentityFirstStage' }).input_key, 'jpg');
  assert.throws(
    () => new VideoDecoder({ ...SMALL_DD, time_mode: 'attn-only' }),
    /time_mode 'attn-only' cannot be built by the reference/,
  );
  assert.throws(() => new VideoDecoder({ ...SMALL_DD, time_mode: 'frames' }), /time_mode parameter has to be in/);
  assert.throws(() => new AutoencoderKL({ embed_dim: 4, ddconfig: SMALL_DD, ema_decay: 0.99 } as AutoencoderKLParams), /ema_decay/);
  assert.throws(() => new AutoencoderKL({ embed_dim: 4, ddconfig: SMALL_DD, ckpt_path: 'x.ckpt' }), /loadStateDict/);
  assert.throws(
    () =>
      instantiateFromConfig({ target: 'sgm.models.autoencoder.AutoencoderKL', params: { embed_dim: 4, ddconfig: SMALL_DD, lossconfig: { target: 'torch.nn.Identity' }, embeddim: 3 } }, { path: 'first_stage_config' }),
    (e: unknown) => e instanceof ConfigError && /unknown param 'embeddim'.*did you mean 'embed_dim'/.test(e.message),
  );
  assert.throws(
    () =>
      instantiateFromConfig(
        { target: 'sgm.models.autoencoder.AutoencodingEngine', params: { encoder_config: { target: 'sgm.modules.diffusionmodules.model.Encoder', params: NO_CH }, decoder_config: { target: 'torch.nn.Identity' }, loss_config: { target: 'torch.nn.Identity' }, regularizer_config: { target: 'sgm.modules.autoencoding.regularizers.DiagonalGaussianRegularizer' } } },
        { path: 'first_stage_config' },
      ),
    (e: unknown) => e instanceof ConfigError && e.message.includes('first_stage_config.params.encoder_config'),
  );
  // building a full-size model is cheap: nothing is drawn in init mode 'lazy' until a value is needed
  const big = nn.withInitMode('lazy', () => new AutoencoderKL({ embed_dim: 4, ddconfig: { ...SMALL_DD, ch: 128, ch_mult: [1, 2, 4, 4], num_res_blocks: 2, resolution: 256 } }));
  assert.ok(big.parameters().every((p) => p.rawStorage.kind === 'lazy'));
});

test('max error of each fixture output, as a fraction of its tolerance', (t) => {
  for (const f of fractions) t.diagnostic(f);
});
