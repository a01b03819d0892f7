// The video network (video_attention, video_model, temporal_ae.VideoBlock): parity with the
// reference's fixtures with each output's worst error reported as a fraction of its tolerance
// (../shared/fixtures/networks; skipped with a message when absent), the full-size svd.yaml
// VideoUNet (key layout and order, build and trace on symbolic inputs), and what the fixtures do
// not pin down: frame-count errors, image-only frames, single-token context, registry wiring.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '../../src/tensor/index.js';
import * as nn from '../../src/nn/index.js';
import { ConfigError, instantiateFromConfig, loadConfigFile } from '../../src/config/index.js';
import { registry } from '../../src/registry.js';
import { SafetensorsFile, readSafetensors, type SafetensorsTensor } from '../../src/io/safetensors.js';
import { stateSourceFromSafetensors } from '../../src/io/checkpoint.js';
import { ResBlock } from '../../src/modules/diffusionmodules/openaimodel.js';
import { timestep_embedding } from '../../src/modules/diffusionmodules/util.js';
import { VideoResBlock, VideoUNet } from '../../src/modules/diffusionmodules/video_model.js';
import { SpatialVideoTransformer, VideoTransformerBlock, frameIndexEmbedding } from '../../src/modules/video_attention.js';
import { MemoryEfficientVideoBlock, VideoBlock } from '../../src/modules/autoencoding/temporal_ae.js';
import { AttnBlock } from '../../src/modules/diffusionmodules/model.js';
import { CrossAttention, MemoryEfficientCrossAttention } from '../../src/modules/attention.js';
import { assertClose, type Tolerance } from '../helpers/close.js';
import { fixtureRoot } from '../helpers/fixtures.js';
import { IO_DTYPE, graphNodes, runModuleCase, worstRatio, type Callable } from '../helpers/module-case.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NETWORKS = join(fixtureRoot(), 'networks');
const HAVE_FIXTURES = existsSync(NETWORKS);
const NO_FIXTURES = `fixtures not found at ${NETWORKS}: put them at ../shared/fixtures beside the repository or set SGM_FIXTURES_DIR`;
const CONFIGS = resolve(repoRoot, '..', 'shared', 'reference-configs', 'inference');

function loadCase(name: string): { spec: Record<string, any>; io: Map<string, SafetensorsTensor>; module: Callable } {
  const spec = JSON.parse(readFileSync(join(NETWORKS, `${name}.json`), 'utf8'));
  const io = readSafetensors(join(NETWORKS, `${name}.io.safetensors`));
  const module = instantiateFromConfig<Callable>({ target: spec.target, params: spec.params }, { path: name });
  const wpath = join(NETWORKS, `${name}.weights.safetensors`);
  module.loadStateDict(stateSourceFromSafetensors(SafetensorsFile.open(wpath)), { where: wpath });
  module.eval();
  return { spec, io, module };
}

/**
 * Runs one case: builds the target through the default registry, loads its weights (strict), runs
 * the call steps (VideoUNet block outputs through its traceHook) and compares every out.* tensor
 * with its own tolerance. Reports the worst error as a fraction of the tolerance, per output.
 */
async function runCase(name: string, t: TestContext): Promise<Map<string, number>> {
  const { spec, io, module } = loadCase(name);
  const callFunction = (fn: string, kwargs: Record<string, unknown>): T.Tensor => {
    assert.equal(fn, 'sgm.modules.diffusionmodules.util.timestep_embedding');
    return timestep_embedding(kwargs.timesteps as T.Tensor, kwargs.dim as number, (kwargs.max_period as number | undefined) ?? 10000, (kwargs.repeat_only as boolean | undefined) ?? false);
  };
  return runModuleCase(name, spec, io, module, { callFunction, traced: VideoUNet }, t);
}

const VIDEO_CASES = [
  'video_resblock',
  'video_resblock_fixed',
  'video_transformer_block',
  'spatial_video_transformer_svd_like',
  'spatial_video_transformer_time_context',
  'spatial_video_transformer_no_temporal_ca',
  'tae_video_block',
  'videounet_svd_like',
];

for (const name of VIDEO_CASES) {
  test(`parity networks/${name} (worst error as a fraction of tolerance)`, HAVE_FIXTURES ? {} : { skip: NO_FIXTURES }, async (t) => {
    await runCase(name, t);
  });
}

test('compiled forward of videounet_svd_like (one graph, symbolic inputs) matches the fixture, mixed indicator too', HAVE_FIXTURES ? {} : { skip: NO_FIXTURES }, async (t) => {
  const name = 'videounet_svd_like';
  const { spec, io, module } = loadCase(name);
  const model = module as unknown as VideoUNet;
  const keys = ['in.x', 'in.timesteps', 'in.context', 'in.y', 'in.image_only_indicator'];
  const inputs = keys.map((k) => io.get(k)!);
  const fn = await T.compile(
    (x, ts, c, y, ind) => model.forward(x!, ts!, c!, y!, null, 3, ind!),
    inputs.map((v, i) => ({ shape: v.shape, dtype: IO_DTYPE[v.dtype]!, name: ['x', 't', 'context', 'y', 'indicator'][i] })),
  );
  for (const [indicator, out] of [
    ['in.image_only_indicator', 'out.output'],
    ['in.image_only_indicator_mixed', 'out.output_mixed_indicator'],
  ] as const) {
    const args = inputs.map((v) => v.data as T.TypedArray);
    args[4] = io.get(indicator)!.data as T.TypedArray;
    const got = (await (await fn(...args)).data()) as Float32Array;
    const tol = spec.tolerance.per_output[out] as Tolerance;
    const ref = io.get(out)!.data as Float32Array;
    assertClose(got, ref, tol, `${name} compiled ${out}`);
    t.diagnostic(`${name} compiled ${out}: worst ${worstRatio(got, ref, tol).toFixed(3)} of tolerance`);
  }
  t.diagnostic(`${name} compiled: ${fn.nodeCount} nodes`);
  await fn.release();
});

// ---------------------------------------------------------------- full-size svd.yaml

function buildSvd(): VideoUNet {
  const cfg = loadConfigFile(join(CONFIGS, 'svd.yaml')) as Record<string, any>;
  return nn.withInitMode('none', () => instantiateFromConfig<VideoUNet>(cfg['model']['params']['network_config'], { path: 'model.params.network_config' }));
}

test('key layout: svd.yaml network_config = keys_svd.json (keys, shapes and state_dict order)', (t) => {
  if (!existsSync(CONFIGS)) return t.skip(`reference configs not found at ${CONFIGS}`);
  if (!HAVE_FIXTURES) return t.skip(NO_FIXTURES);
  const model = buildSvd();
  const prefix = 'model.diffusion_model.';
  const expected = (JSON.parse(readFileSync(join(NETWORKS, 'keys_svd.json'), 'utf8')).keys as Array<[string, number[]]>).filter(([k]) => k.startsWith(prefix));
  const got = [...model.stateDict(prefix)].map(([k, v]) => [k, [...v.shape]] as [string, number[]]);
  assert.equal(got.length, 1428);
  assert.deepEqual(got, expected);
  assert.equal(model.numParameters(), 1_524_623_082);
});

test('full-size SVD VideoUNet: built with init mode none and traced on symbolic inputs (1 video x 14 frames, 576x1024)', (t) => {
  if (!existsSync(CONFIGS)) return t.skip(`reference configs not found at ${CONFIGS}`);
  const t0 = performance.now();
  const model = buildSvd().eval();
  const t1 = performance.now();
  const F = 14;
  const x = T.symbolicInput('x', [F, 8, 72, 128], 'float32');
  const ts = T.symbolicInput('t', [F], 'float32');
  const ctx = T.symbolicInput('context', [F, 1, 1024], 'float32');
  const y = T.symbolicInput('y', [F, 768], 'float32');
  const ind = T.symbolicInput('image_only_indicator', [1, F], 'float32');
  const out = model.forward(x, ts, ctx, y, null, F, ind);
  const t2 = performance.now();
  assert.deepEqual([...out.shape], [F, 4, 72, 128]);
  const nodes = graphNodes([out]);
  // attention at ds 1, 2, 4: 2 + 2 + 2 input, 1 middle, 3 + 3 + 3 output = 16 SpatialVideoTransformers,
  // each with a spatial and a temporal block of two attentions.
  const attention = nodes.filter((n) => n.op === 'attention');
  assert.equal(attention.length, 64);
  assert.equal(nodes.filter((n) => n instanceof nn.Parameter).length, 1428);
  // Temporal self-attention at ds 1: one sequence of 14 frames per pixel (72 * 128), 5 heads of 64.
  assert.ok(attention.some((a) => a.inputs[0]!.shape.join() === [72 * 128, 5, F, 64].join()));
  // Temporal cross-attention to the first frame's single context token, repeated per pixel.
  assert.ok(attention.some((a) => a.inputs[0]!.shape.join() === [72 * 128, 5, F, 64].join() && a.inputs[1]!.shape[2] === 1));
  // Spatial cross-attention: every frame's 72 * 128 pixels over its one token.
  assert.ok(attention.some((a) => a.inputs[0]!.shape.join() === [F, 5, 72 * 128, 64].join() && a.inputs[1]!.shape[2] === 1));
  t.diagnostic(`svd VideoUNet: build ${(t1 - t0).toFixed(0)} ms, trace ${(t2 - t1).toFixed(0)} ms; ${nodes.length} nodes, ${model.numParameters()} parameters`);
});

// ---------------------------------------------------------------- errors

function tinyUNet(extra: Record<string, unknown> = {}): VideoUNet {
  return nn.withInitMode('eager', () =>
    instantiateFromConfig<VideoUNet>({
      target: 'sgm.modules.diffusionmodules.video_model.VideoUNet',
      params: {
        in_channels: 4,
        out_channels: 4,
        model_channels: 32,
        attention_resolutions: [1],
        num_res_blocks: 1,
        channel_mult: [1],
        num_head_channels: 16,
        use_linear_in_transformer: true,
        context_dim: 8,
        use_spatial_context: true,
        extra_ff_mix_layer: true,
        merge_strategy: 'learned_with_images',
        video_kernel_size: [3, 1, 1],
        ...extra,
      },
    }),
  );
}

test('VideoUNet: num_video_frames and image_only_indicator mismatches are clear errors', () => {
  const m = tinyUNet();
  const x = T.zeros([6, 4, 4, 4]);
  const ts = T.zeros([6]);
  const ctx = T.zeros([6, 1, 8]);
  const ind = T.zeros([2, 3]);
  assert.throws(() => m.forward(x, ts, ctx, null, null, 4, ind), /batch of 6 frame rows is not a whole number of videos of num_video_frames=4/);
  assert.throws(() => m.forward(x, ts, ctx, null, null, null, ind), /num_video_frames \(frames per video\) is required/);
  assert.throws(() => m.forward(x, ts, ctx, null, null, 2.5, ind), /positive integer/);
  assert.throws(() => m.forward(x, ts, ctx, null, null, 2, ind), /image_only_indicator has shape \[2, 3\], expected \(videos, frames\) = \[3, 2\]/);
  assert.throws(() => m.forward(x, ts, ctx, null, null, 3, null), /learned_with_images needs image_only_indicator/);
  assert.throws(() => m.forward(x, T.zeros([2]), ctx, null, null, 3, ind), /timesteps \[2\] need one entry per frame row/);
  // A correct call builds.
  assert.deepEqual([...m.forward(x, ts, ctx, null, null, 3, ind).shape], [6, 4, 4, 4]);
  // y if and only if num_classes.
  assert.throws(() => m.forward(x, ts, ctx, T.zeros([6, 3]), null, 3, ind), /y if and only if/);
});

test('video blocks: frame-count errors name the block, the batch and the frame count', () => {
  const rb = nn.withInitMode('eager', () => new VideoResBlock({ channels: 32, emb_channels: 8, dropout: 0, merge_strategy: 'learned_with_images' }));
  assert.throws(() => rb.forward(T.zeros([6, 32, 2, 2]), T.zeros([6, 8]), 4, T.zeros([2, 3])), /VideoResBlock.*batch of 6 frame rows.*num_video_frames=4/);
  assert.throws(() => rb.forward(T.zeros([6, 32, 2, 2]), T.zeros([6, 8]), 3, T.zeros([3, 2])), /VideoResBlock.*image_only_indicator has shape \[3, 2\]/);
  assert.throws(() => rb.forward(T.zeros([6, 32, 2, 2]), T.zeros([6, 8])), /VideoResBlock: num_video_frames .* is required/);
  assert.throws(() => rb.forward(T.zeros([6, 32, 2, 2]), T.zeros([3, 8]), 3, T.zeros([2, 3])), /emb \[3, 8\] needs one row per frame/);

  const svt = nn.withInitMode('eager', () => new SpatialVideoTransformer({ in_channels: 32, n_heads: 2, d_head: 16, context_dim: 8, use_spatial_context: true, use_linear: true }));
  assert.throws(() => svt.forward(T.zeros([6, 32, 2, 2]), T.zeros([6, 1, 8]), null, 4), /SpatialVideoTransformer.*batch of 6 frame rows.*timesteps=4/);
  assert.throws(() => svt.forward(T.zeros([6, 32, 2, 2]), T.zeros([6, 8]), null, 3), /n dims of spatial context should be 3 but are 2/);
  assert.throws(() => svt.forward(T.zeros([6, 32, 2, 2]), T.zeros([2, 1, 8]), null, 3), /one row per frame \(6\)/);

  const svtTc = nn.withInitMode('eager', () => new SpatialVideoTransformer({ in_channels: 32, n_heads: 2, d_head: 16, context_dim: 8, time_context_dim: 5 }));
  assert.throws(() => svtTc.forward(T.zeros([6, 32, 2, 2]), T.zeros([6, 1, 8]), T.zeros([6, 1, 5]), 3), /time_context \[6, 1, 5\] needs one row per video \(2\)/);

  const vtb = nn.withInitMode('eager', () => new VideoTransformerBlock({ dim: 16, n_heads: 2, d_head: 8, context_dim: 4, timesteps: 3 }));
  assert.throws(() => vtb.forward(T.zeros([6, 5, 16]), null, 2), /forward got timesteps=2, but the block was built for timesteps=3/);
  assert.throws(() => vtb.forward(T.zeros([6, 5, 16]), T.zeros([6, 1, 4])), /context \[6, 1, 4\] needs one row per \(video, spatial position\) = 2 \* 5 = 10 rows/);
  assert.deepEqual([...vtb.forward(T.zeros([6, 5, 16]), T.zeros([10, 1, 4])).shape], [6, 5, 16]);
  const free = nn.withInitMode('eager', () => new VideoTransformerBlock({ dim: 16, n_heads: 2, d_head: 8 }));
  assert.throws(() => free.forward(T.zeros([6, 5, 16])), /timesteps \(frames per video\) is required/);
  assert.throws(() => new VideoTransformerBlock({ dim: 16, n_heads: 3, d_head: 8 }), /n_heads \* d_head \(3 \* 8\) must equal inner_dim \(16\)/);
  assert.throws(
    () => new VideoTransformerBlock({ dim: 16, n_heads: 2, d_head: 8, disable_temporal_crossattention: true, switch_temporal_ca_to_sa: true }),
    /switch_temporal_ca_to_sa/,
  );

  const vb = nn.withInitMode('eager', () => new VideoBlock({ in_channels: 32 }));
  assert.throws(() => vb.forward(T.zeros([6, 32, 2, 2])), /VideoBlock: timesteps \(frames per video\) is required/);
  assert.throws(() => vb.forward(T.zeros([6, 32, 2, 2]), { timesteps: 4 }), /batch of 6 frames is not a whole number of videos of timesteps=4/);
  assert.throws(() => vb.forward(T.zeros([6, 32, 2, 2]), { timesteps: 3, skip_time_block: true }), /unexpected keyword argument\(s\) 'skip_time_block'/);
});

// ---------------------------------------------------------------- semantics

async function values(x: T.Tensor): Promise<number[]> {
  return x.toArray();
}

function randn(shape: number[], seed: number): T.Tensor {
  return T.tensor(new T.Generator(seed).randnData(shape, 'float32'), shape);
}

test('image-only frames take the spatial branch: VideoResBlock and SpatialVideoTransformer with an all-ones indicator', async () => {
  const x = randn([4, 32, 3, 3], 1);
  const emb = randn([4, 16], 2);
  const ones = T.ones([2, 2]);
  const rb = nn.withInitMode('eager', () => new VideoResBlock({ channels: 32, emb_channels: 16, dropout: 0, merge_strategy: 'learned_with_images', merge_factor: 0.3 }));
  const spatial = ResBlock.prototype.forward.call(rb, x, emb);
  assertClose(await values(rb.forward(x, emb, 2, ones)), await values(spatial), { atol: 0, rtol: 0 });
  // Mixed: rows of image-only frames equal the spatial output, the others differ.
  const mixed = await values(rb.forward(x, emb, 2, T.tensor([0, 1, 1, 0], [2, 2])));
  const sp = await values(spatial);
  const n = 32 * 9;
  assert.deepEqual(mixed.slice(n, 3 * n), sp.slice(n, 3 * n));
  assert.notDeepEqual(mixed.slice(0, n), sp.slice(0, n));

  const svt = nn.withInitMode('eager', () =>
    new SpatialVideoTransformer({ in_channels: 32, n_heads: 2, d_head: 16, context_dim: 8, use_spatial_context: true, use_linear: true, merge_strategy: 'learned_with_images' }),
  );
  const ctx = randn([4, 2, 8], 3);
  // Without its temporal part, SpatialVideoTransformer is the SpatialTransformer it extends.
  const spatialOnly = (await import('../../src/modules/attention.js')).SpatialTransformer.prototype.forward.call(svt, x, ctx);
  assertClose(await values(svt.forward(x, ctx, null, 2, ones)), await values(spatialOnly), { atol: 0, rtol: 0 });
});

test('single context token: the temporal and spatial attn2 to_q / to_k / norm2 have no effect (quirk 13)', async () => {
  const svt = nn.withInitMode('eager', () =>
    new SpatialVideoTransformer({ in_channels: 32, n_heads: 2, d_head: 16, context_dim: 8, use_spatial_context: true, use_linear: true, merge_strategy: 'learned', merge_factor: 0.1 }),
  );
  const x = randn([4, 32, 3, 3], 4);
  const ctx = randn([4, 1, 8], 5);
  const before = await values(svt.forward(x, ctx, null, 2));
  const sd = svt.stateDict();
  for (const k of ['time_stack.0.attn2.to_q.weight', 'time_stack.0.attn2.to_k.weight', 'time_stack.0.norm2.weight', 'transformer_blocks.0.attn2.to_q.weight']) {
    const v = sd.get(k)!;
    v.assign({ kind: 'host', dtype: 'float32', data: new Float32Array(v.size).fill(0.37) });
  }
  assertClose(await values(svt.forward(x, ctx, null, 2)), before, { atol: 1e-5, rtol: 1e-5 });
  // ... while attn2's to_v does matter.
  const v = sd.get('time_stack.0.attn2.to_v.weight')!;
  v.assign({ kind: 'host', dtype: 'float32', data: new Float32Array(v.size).fill(0.37) });
  const after = await values(svt.forward(x, ctx, null, 2));
  assert.ok(after.some((a, i) => Math.abs(a - before[i]!) > 1e-3));
});

test('SpatialVideoTransformer: the time blocks always get ff_in; time_context (b, c) works as one token; use_spatial_context ignores time_context', async () => {
  const noFf = nn.withInitMode('none', () => new SpatialVideoTransformer({ in_channels: 32, n_heads: 2, d_head: 16, ff_in: false }));
  assert.ok(noFf.stateDict().has('time_stack.0.ff_in.net.0.proj.weight'), 'inner_dim is passed, so ff_in is built');
  const alone = nn.withInitMode('none', () => new VideoTransformerBlock({ dim: 16, n_heads: 2, d_head: 8 }));
  assert.ok(!alone.stateDict().has('ff_in.net.0.proj.weight') && !alone.stateDict().has('norm_in.weight'));
  const noCa = nn.withInitMode('none', () => new VideoTransformerBlock({ dim: 16, n_heads: 2, d_head: 8, disable_temporal_crossattention: true }));
  assert.ok(!noCa.stateDict().has('attn2.to_q.weight') && !noCa.stateDict().has('norm2.weight'));
  // disable_self_attn: attn1 attends to the context too; switch_temporal_ca_to_sa: attn2 is self-attention.
  const dsa = nn.withInitMode('eager', () => new VideoTransformerBlock({ dim: 16, n_heads: 2, d_head: 8, context_dim: 4, disable_self_attn: true }));
  assert.deepEqual([...dsa.stateDict().get('attn1.to_k.weight')!.shape], [16, 4]);
  assert.deepEqual([...dsa.forward(randn([6, 5, 16], 20), randn([10, 2, 4], 21), 3).shape], [6, 5, 16]);
  const sw = nn.withInitMode('eager', () => new VideoTransformerBlock({ dim: 16, n_heads: 2, d_head: 8, context_dim: 4, switch_temporal_ca_to_sa: true }));
  assert.deepEqual([...sw.stateDict().get('attn2.to_k.weight')!.shape], [16, 16]);
  assert.deepEqual([...sw.forward(randn([6, 5, 16], 22), null, 3).shape], [6, 5, 16]);
  const tfixed = nn.withInitMode('eager', () => new VideoTransformerBlock({ dim: 16, n_heads: 2, d_head: 8, timesteps: 3 }));
  assert.deepEqual(await values(tfixed.forward(randn([6, 5, 16], 23))), await values(tfixed.forward(randn([6, 5, 16], 23), null, 3)));

  const svt = nn.withInitMode('eager', () => new SpatialVideoTransformer({ in_channels: 32, n_heads: 2, d_head: 16, context_dim: 8, time_context_dim: 5, merge_strategy: 'learned' }));
  const x = randn([4, 32, 2, 3], 6);
  const ctx = randn([4, 2, 8], 7);
  const tc = randn([2, 5], 8);
  const a = await values(svt.forward(x, ctx, tc, 2));
  const b = await values(svt.forward(x, ctx, T.unsqueeze(tc, 1), 2));
  assertClose(a, b, { atol: 0, rtol: 0 });

  const spatialCtx = nn.withInitMode('eager', () => new SpatialVideoTransformer({ in_channels: 32, n_heads: 2, d_head: 16, context_dim: 8, use_spatial_context: true }));
  const c1 = await values(spatialCtx.forward(x, ctx, null, 2));
  const c2 = await values(spatialCtx.forward(x, ctx, randn([2, 3, 8], 9), 2));
  assertClose(c1, c2, { atol: 0, rtol: 0 });
});

test('frame index embedding: timestep_embedding of 0..T-1 per video', async () => {
  const got = await values(frameIndexEmbedding(6, 3, 8, 100));
  const ref = await values(timestep_embedding(T.tensor([0, 1, 2, 0, 1, 2], [6]), 8, 100));
  assert.deepEqual(got, ref);
});

test('VideoBlock: skip_video is the plain AttnBlock; MemoryEfficientVideoBlock computes the same with the same weights', async () => {
  const vb = nn.withInitMode('eager', () => new VideoBlock({ in_channels: 32, alpha: 0.2, merge_strategy: 'learned' }));
  const me = nn.withInitMode('none', () => new MemoryEfficientVideoBlock({ in_channels: 32, alpha: 0.2, merge_strategy: 'learned' }));
  assert.deepEqual([...me.stateDict().keys()], [...vb.stateDict().keys()]);
  me.loadStateDict(new Map([...vb.stateDict()].map(([k, v]) => [k, { dtype: v.dtype, shape: v.shape, storage: v.storage }])));
  assert.ok(vb.time_mix_block.attn1 instanceof CrossAttention && !(vb.time_mix_block.attn1 instanceof MemoryEfficientCrossAttention));
  assert.ok(me.time_mix_block.attn1 instanceof MemoryEfficientCrossAttention);
  const x = randn([6, 32, 2, 3], 10);
  assertClose(await values(vb.forward(x, { skip_video: true })), await values(AttnBlock.prototype.forward.call(vb, x)), { atol: 0, rtol: 0 });
  assertClose(await values(me.forward(x, { skip_time_block: true })), await values(AttnBlock.prototype.forward.call(vb, x)), { atol: 0, rtol: 0 });
  assertClose(await values(me.forward(x, { timesteps: 3 })), await values(vb.forward(x, { timesteps: 3 })), { atol: 1e-6, rtol: 1e-6 });
  const fixed = nn.withInitMode('none', () => new VideoBlock({ in_channels: 32, alpha: 0.2, merge_strategy: 'fixed' }));
  assert.ok(fixed.namedBuffers().some(([k]) => k === 'mix_factor'));
  assert.throws(() => new VideoBlock({ in_channels: 32, merge_strategy: 'learned_with_images' as never }), /unknown merge strategy/);
});

test('registry: the video targets replace their placeholders and check their params', () => {
  for (const target of [
    'sgm.modules.video_attention.VideoTransformerBlock',
    'sgm.modules.video_attention.SpatialVideoTransformer',
    'sgm.modules.diffusionmodules.video_model.VideoResBlock',
    'sgm.modules.diffusionmodules.video_model.VideoUNet',
    'sgm.modules.autoencoding.temporal_ae.VideoBlock',
    'sgm.modules.autoencoding.temporal_ae.MemoryEfficientVideoBlock',
  ]) {
    assert.ok(registry.has(target) && !registry.isPlaceholder(target), `${target} is implemented`);
  }
  assert.throws(() => tinyUNet({ legacy: false }), (e: unknown) => e instanceof ConfigError && /unknown param 'legacy'/.test((e as Error).message));
  assert.throws(() => tinyUNet({ context_dim: null }), (e: unknown) => e instanceof ConfigError && /needs context_dim/.test((e as Error).message));
  assert.throws(() => tinyUNet({ merge_strategy: 'mean' }), (e: unknown) => e instanceof ConfigError && /merge_strategy: expected one of/.test((e as Error).message));
  assert.throws(() => tinyUNet({ spatial_transformer_attn_type: 'flash' }), (e: unknown) => e instanceof ConfigError && /spatial_transformer_attn_type/.test((e as Error).message));
});

test('VideoUNet options: transformer_depth_middle, resblock_updown, num_heads, fixed merge without indicator', async () => {
  const m = tinyUNet({
    channel_mult: [1, 2],
    transformer_depth: [1, 2],
    transformer_depth_middle: 3,
    resblock_updown: true,
    num_head_channels: -1,
    num_heads: 4,
    merge_strategy: 'fixed',
    merge_factor: 0.25,
    num_classes: 'sequential',
    adm_in_channels: 6,
  });
  const sd = m.stateDict();
  assert.ok(sd.has('middle_block.1.transformer_blocks.2.attn1.to_q.weight') && !sd.has('middle_block.1.transformer_blocks.3.attn1.to_q.weight'));
  assert.ok(sd.has('middle_block.1.time_stack.2.attn1.to_q.weight'));
  assert.ok(sd.has('input_blocks.2.0.time_stack.in_layers.2.weight'), 'the downsampling block is a VideoResBlock');
  assert.ok(sd.has('output_blocks.1.1.time_mixer.mix_factor') && !sd.has('output_blocks.1.2.time_mixer.mix_factor'), 'the upsampling block is a VideoResBlock');
  assert.equal(m.middle_block.items[1]!.constructor, SpatialVideoTransformer);
  assert.equal((m.middle_block.items[1] as SpatialVideoTransformer).transformer_blocks.at(0).attn1.heads, 4);
  const out = m.forward(randn([4, 4, 4, 4], 11), T.tensor([1, 1, 2, 2], [4]), randn([4, 1, 8], 12), randn([4, 6], 13), null, 2, null);
  assert.deepEqual([...out.shape], [4, 4, 4, 4]);
  const v = await values(out);
  assert.ok(v.every(Number.isFinite));
});
