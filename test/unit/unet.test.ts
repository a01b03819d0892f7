// The UNet and its building blocks (openaimodel, attention, util, wrappers): parity with the
// reference's fixtures (../shared/fixtures/networks, skipped with a message when absent), key
// layout of the full-size configs, and small checks of semantics the fixtures do not pin down.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '../../src/tensor/index.js';
import * as nn from '../../src/nn/index.js';
import { Registry, instantiateFromConfig, loadConfigFile } from '../../src/config/index.js';
import { SafetensorsFile, readSafetensors } from '../../src/io/safetensors.js';
import { stateSourceFromSafetensors } from '../../src/io/checkpoint.js';
import { registerUNetTargets, UNET_FUNCTIONS } from '../../src/modules/diffusionmodules/openaimodel_targets.js';
import { UNetModel, ResBlock } from '../../src/modules/diffusionmodules/openaimodel.js';
import { AlphaBlender, rearrange, timestep_embedding } from '../../src/modules/diffusionmodules/util.js';
import { OpenAIWrapper } from '../../src/modules/diffusionmodules/wrappers.js';
import { CrossAttention, MemoryEfficientCrossAttention } from '../../src/modules/attention.js';
import { assertClose, type Tolerance } from '../helpers/close.js';
import { fixtureRoot } from '../helpers/fixtures.js';
import { IO_DTYPE, graphNodes, runModuleCase, worstRatio, type Callable } from '../helpers/module-case.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NETWORKS = join(fixtureRoot(), 'networks');
const HAVE_FIXTURES = existsSync(NETWORKS);
const NO_FIXTURES = `fixtures not found at ${NETWORKS}: put them at ../shared/fixtures beside the repository or set SGM_FIXTURES_DIR`;
const CONFIGS = resolve(repoRoot, '..', 'shared', 'reference-configs', 'inference');

function registry(): Registry {
  const reg = new Registry();
  registerUNetTargets(reg);
  return reg;
}

/**
 * Runs one network case: builds the target through the config registry, loads its weights
 * (strict), runs the call steps and compares every out.* tensor with its own tolerance. Returns
 * the worst error as a fraction of the tolerance, per output.
 */
async function runCase(name: string, t?: TestContext): Promise<Map<string, number>> {
  const spec = JSON.parse(readFileSync(join(NETWORKS, `${name}.json`), 'utf8'));
  const io = readSafetensors(join(NETWORKS, `${name}.io.safetensors`));
  let module: Callable | null = null;
  if (spec.params !== null) {
    module = instantiateFromConfig<Callable>({ target: spec.target, params: spec.params }, { registry: registry(), path: name });
    module.eval();
    const wpath = join(NETWORKS, `${name}.weights.safetensors`);
    const file = SafetensorsFile.open(wpath);
    module.loadStateDict(stateSourceFromSafetensors(file), { where: wpath });
  }
  const callFunction = (fn: string, kwargs: Record<string, unknown>): T.Tensor => {
    const f = UNET_FUNCTIONS[fn];
    assert.ok(f, `${name}: function ${fn} is not implemented`);
    for (const k of Object.keys(kwargs)) assert.ok(f.args.includes(k), `${fn}: unknown argument ${k}`);
    return f.fn(...f.args.map((a) => kwargs[a])) as T.Tensor;
  };
  return runModuleCase(name, spec, io, module, { callFunction, traced: UNetModel }, t);
}

// The required cases, then every other case of a target implemented here.
const REQUIRED = [
  'timestep_embedding',
  'resblock_emb',
  'cross_attention',
  'basic_transformer_block',
  'spatial_transformer_linear_ctx',
  'unet_sd21_like',
  'unet_sdxl_like',
  'unet_mnist_like',
  'unet_sd1_like',
];

function otherCases(): string[] {
  if (!HAVE_FIXTURES) return [];
  const reg = registry();
  const names: string[] = [];
  for (const f of readdirSync(NETWORKS).sort()) {
    if (!f.endsWith('.io.safetensors')) continue;
    const n = f.slice(0, -'.io.safetensors'.length);
    if (REQUIRED.includes(n)) continue;
    const spec = JSON.parse(readFileSync(join(NETWORKS, `${n}.json`), 'utf8'));
    if (reg.has(spec.target) && !reg.isPlaceholder(spec.target)) names.push(n);
  }
  return names;
}

for (const name of [...REQUIRED, ...otherCases()]) {
  test(`parity networks/${name}`, HAVE_FIXTURES ? {} : { skip: NO_FIXTURES }, async (t) => {
    await runCase(name, t);
  });
}

// ---------------------------------------------------------------- full-size key layout

function buildNetwork(config: string): UNetModel {
  const cfg = loadConfigFile(join(CONFIGS, `${config}.yaml`)) as Record<string, any>;
  const net = cfg['model']['params']['network_config'];
  return nn.withInitMode('none', () => instantiateFromConfig<UNetModel>(net, { registry: registry(), path: 'model.params.network_config' }));
}

for (const config of ['sd_xl_base', 'sd_2_1', 'sd_2_1_768']) {
  const keysFile = join(NETWORKS, `keys_${config}.json`);
  test(`key layout: ${config}.yaml network_config = keys_${config}.json`, HAVE_FIXTURES ? {} : { skip: NO_FIXTURES }, (t) => {
    const t0 = performance.now();
    const model = buildNetwork(config);
    const buildMs = performance.now() - t0;
    const prefix = 'model.diffusion_model.';
    const expected = (JSON.parse(readFileSync(keysFile, 'utf8')).keys as Array<[string, number[]]>).filter(([k]) => k.startsWith(prefix));
    const got = [...model.stateDict(prefix)].map(([k, v]) => [k, [...v.shape]] as [string, number[]]);
    const gotKeys = new Set(got.map(([k]) => k));
    const expKeys = new Set(expected.map(([k]) => k));
    const missing = [...expKeys].filter((k) => !gotKeys.has(k));
    const extra = [...gotKeys].filter((k) => !expKeys.has(k));
    assert.deepEqual({ missing: missing.slice(0, 10), extra: extra.slice(0, 10) }, { missing: [], extra: [] }, `${config}: key sets differ`);
    // Same keys, same shapes, and the same (state_dict) order.
    assert.deepEqual(got, expected);
    const params = got.reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);
    t.diagnostic(`${config}: ${got.length} keys, ${params} parameters, built in ${buildMs.toFixed(0)} ms (init mode none)`);
  });
}

test('key layout: sd_xl_refiner.yaml network_config builds (no key list among the fixtures)', (t) => {
  if (!existsSync(CONFIGS)) return t.skip(`reference configs not found at ${CONFIGS}`);
  const model = buildNetwork('sd_xl_refiner');
  const sd = model.stateDict();
  // 384 channels, mult [1, 2, 4, 4], depth 4 at ds 2 and 4, context 1280, adm 2560.
  assert.deepEqual([...sd.get('label_emb.0.0.weight')!.shape], [1536, 2560]);
  assert.deepEqual([...sd.get('input_blocks.4.1.transformer_blocks.3.attn2.to_k.weight')!.shape], [768, 1280]);
  assert.deepEqual([...sd.get('middle_block.1.transformer_blocks.3.ff.net.0.proj.weight')!.shape], [12288, 1536]);
  assert.ok(!sd.has('input_blocks.1.1.norm.weight'), 'no attention at ds 1');
  assert.ok(sd.has('input_blocks.7.1.norm.weight') && !sd.has('input_blocks.10.1.norm.weight'), 'attention at ds 4, none at ds 8');
  assert.ok(sd.has('input_blocks.11.0.in_layers.0.weight') && !sd.has('input_blocks.12.0.in_layers.0.weight'), '12 input blocks');
  assert.ok(sd.has('output_blocks.11.0.in_layers.0.weight') && !sd.has('output_blocks.12.0.in_layers.0.weight'), '12 output blocks');
  assert.deepEqual([...sd.get('out.2.weight')!.shape], [4, 384, 3, 3]);
  t.diagnostic(`sd_xl_refiner: ${sd.size} keys, ${model.numParameters()} parameters`);
});

// ---------------------------------------------------------------- full-size build and trace

test('full-size SDXL UNet: built with init mode none and traced at 1x4x64x64', (t) => {
  if (!existsSync(CONFIGS)) return t.skip(`reference configs not found at ${CONFIGS}`);
  const t0 = performance.now();
  const model = buildNetwork('sd_xl_base').eval();
  const t1 = performance.now();
  const x = T.symbolicInput('x', [1, 4, 64, 64], 'float32');
  const ts = T.symbolicInput('t', [1], 'float32');
  const ctx = T.symbolicInput('context', [1, 77, 2048], 'float32');
  const y = T.symbolicInput('y', [1, 2816], 'float32');
  const out = model.forward(x, ts, ctx, y);
  const t2 = performance.now();
  assert.deepEqual([...out.shape], [1, 4, 64, 64]);
  const nodes = graphNodes([out]);
  const t3 = performance.now();
  // transformer_depth [1, 2, 10], attention at ds 2 and 4: 2x2 + 2x10 input, 10 middle, 3x10 + 3x2 output = 70 blocks, two attentions each.
  const attention = nodes.filter((n) => n.op === 'attention');
  assert.equal(attention.length, 140);
  assert.equal(nodes.filter((n) => n instanceof nn.Parameter).length, 1680);
  // Cross-attention over the 77 context tokens at 32x32 (ds 2) and 16x16 (ds 4): [1, heads, tokens, 77] scores.
  assert.ok(attention.some((a) => a.inputs[1]!.shape[2] === 77 && a.inputs[0]!.shape[2] === 32 * 32));
  t.diagnostic(
    `sd_xl_base UNet: build ${(t1 - t0).toFixed(0)} ms, trace ${(t2 - t1).toFixed(0)} ms, graph walk ${(t3 - t2).toFixed(0)} ms; ` +
      `${nodes.length} nodes, ${attention.length} attention nodes, ${model.numParameters()} parameters`,
  );
});

test('compiled forward of unet_sdxl_like (weights baked from the file) matches the fixture', HAVE_FIXTURES ? {} : { skip: NO_FIXTURES }, async (t) => {
  const name = 'unet_sdxl_like';
  const spec = JSON.parse(readFileSync(join(NETWORKS, `${name}.json`), 'utf8'));
  const io = readSafetensors(join(NETWORKS, `${name}.io.safetensors`));
  const model = nn.withInitMode('none', () => instantiateFromConfig<UNetModel>({ target: spec.target, params: spec.params }, { registry: registry() })).eval();
  model.loadStateDict(stateSourceFromSafetensors(SafetensorsFile.open(join(NETWORKS, `${name}.weights.safetensors`))));
  const inputs = ['in.x', 'in.timesteps', 'in.context', 'in.y'].map((k) => io.get(k)!);
  const fn = await T.compile(
    (x, ts, c, y) => model.forward(x!, ts!, c!, y!),
    inputs.map((v, i) => ({ shape: v.shape, dtype: IO_DTYPE[v.dtype]!, name: ['x', 't', 'context', 'y'][i] })),
  );
  const out = await fn(...inputs.map((v) => v.data as T.TypedArray));
  const tol = spec.tolerance.per_output['out.output'] as Tolerance;
  const ref = io.get('out.output')!.data as Float32Array;
  const got = (await out.data()) as Float32Array;
  assertClose(got, ref, tol, `${name} compiled`);
  t.diagnostic(`${name} compiled: ${fn.nodeCount} nodes, session ${fn.createMs.toFixed(0)} ms, worst ${worstRatio(got, ref, tol).toFixed(3)} of tolerance`);
  await fn.release();
});

// ---------------------------------------------------------------- semantics

async function values(x: T.Tensor): Promise<number[]> {
  return x.toArray();
}

test('timestep_embedding: [cos | sin], denominator half, odd dims padded, dim 1 empty, int64 and repeat_only', async () => {
  const ts = T.tensor([0, 3, 999.5], [3]);
  const emb = timestep_embedding(ts, 7, 100);
  assert.deepEqual([...emb.shape], [3, 7]);
  const got = await values(emb);
  const half = 3;
  [0, 3, 999.5].forEach((tv, r) => {
    for (let i = 0; i < half; i++) {
      const freq = Math.fround(Math.exp(Math.fround(Math.fround(Math.fround(-Math.log(100)) * i) / half)));
      const arg = Math.fround(tv * freq);
      assert.ok(Math.abs(got[r * 7 + i]! - Math.cos(arg)) < 2e-6, `cos at ${r},${i}`);
      assert.ok(Math.abs(got[r * 7 + half + i]! - Math.sin(arg)) < 2e-6, `sin at ${r},${i}`);
    }
    assert.equal(got[r * 7 + 6], 0);
  });
  assert.deepEqual([...timestep_embedding(ts, 1).shape], [3, 0]);
  const ints = T.tensor([0, 1, 500], [3], 'int64');
  assertClose(await values(timestep_embedding(ints, 8)), await values(timestep_embedding(T.tensor([0, 1, 500], [3]), 8)), { atol: 0, rtol: 0 });
  const rep = timestep_embedding(ints, 4, 10000, true);
  assert.equal(rep.dtype, 'int64');
  assert.deepEqual(await values(rep), [0, 0, 0, 0, 1, 1, 1, 1, 500, 500, 500, 500]);
  assert.throws(() => timestep_embedding(T.tensor([1, 2], [1, 2]), 4), /1-d/);
});

test('rearrange: the AlphaBlender patterns', async () => {
  const a = T.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  const r1 = rearrange(a, 'b t -> (b t) 1 1');
  assert.deepEqual([...r1.shape], [6, 1, 1]);
  assert.deepEqual(await values(r1), [1, 2, 3, 4, 5, 6]);
  const r2 = rearrange(a, 'b t -> b 1 t 1 1');
  assert.deepEqual([...r2.shape], [2, 1, 3, 1, 1]);
  const r3 = rearrange(a, 'b t -> (t b)');
  assert.deepEqual(await values(r3), [1, 4, 2, 5, 3, 6]);
  assert.throws(() => rearrange(a, 'b t -> b'), /exactly once/);
});

test('AlphaBlender: image-only frames take the spatial branch', async () => {
  const ab = new AlphaBlender({ alpha: 0.3, merge_strategy: 'learned_with_images' });
  // x is ((b t), tokens, c) for the default pattern: 2 videos x 2 frames.
  const xs = T.full([4, 2, 1], 1);
  const xt = T.full([4, 2, 1], 0);
  const ind = T.tensor([1, 0, 0, 1], [2, 2]);
  const got = await values(ab.forward(xs, xt, ind));
  const s = 1 / (1 + Math.exp(-0.3));
  assertClose(got, [1, 1, s, s, s, s, 1, 1], { atol: 1e-6, rtol: 0 });
  assert.throws(() => ab.forward(xs, xt, null), /image_only_indicator/);
  assert.equal([...new AlphaBlender({ alpha: 0.5, merge_strategy: 'fixed' }).stateDict().keys()].join(), 'mix_factor');
});

test('UNetModel: y iff num_classes; label_emb layouts; parameters sgm does not have are rejected', () => {
  const base = { in_channels: 4, model_channels: 32, out_channels: 4, num_res_blocks: 1, attention_resolutions: [], channel_mult: [1], num_heads: 1 };
  const keys = (p: Record<string, unknown>): string[] =>
    [...nn.withInitMode('none', () => new UNetModel({ ...base, ...p } as never)).stateDict().keys()].filter((k) => k.startsWith('label_emb'));
  assert.deepEqual(keys({ num_classes: 10 }), ['label_emb.weight']);
  assert.deepEqual(keys({ num_classes: 'continuous' }), ['label_emb.weight', 'label_emb.bias']);
  assert.deepEqual(keys({ num_classes: 'timestep' }), ['label_emb.1.0.weight', 'label_emb.1.0.bias', 'label_emb.1.2.weight', 'label_emb.1.2.bias']);
  assert.deepEqual(keys({ num_classes: 'sequential', adm_in_channels: 8 }), ['label_emb.0.0.weight', 'label_emb.0.0.bias', 'label_emb.0.2.weight', 'label_emb.0.2.bias']);
  const m = nn.withInitMode('none', () => new UNetModel({ ...base, num_classes: 10 }));
  const x = T.zeros([1, 4, 8, 8]);
  assert.throws(() => m.forward(x, T.tensor([1], [1])), /if and only if/);
  assert.throws(() => new UNetModel({ ...base, legacy: false } as never), /legacy/);
  assert.throws(() => new UNetModel({ ...base, use_fp16: true } as never), /use_fp16/);
  assert.throws(() => new UNetModel({ ...base, num_heads: -1 }), /num_heads or num_head_channels/);
  assert.throws(
    () => instantiateFromConfig({ target: 'sgm.modules.diffusionmodules.openaimodel.UNetModel', params: { ...base, legacy: false } }, { registry: registry() }),
    /unknown param 'legacy'/,
  );
});

test('UNetModel: disable_self_attentions, num_attention_blocks, per-level num_res_blocks, disable_middle_transformer', () => {
  const m = nn.withInitMode('none', () =>
    new UNetModel({
      in_channels: 4,
      model_channels: 32,
      out_channels: 4,
      num_res_blocks: [2, 1],
      attention_resolutions: [1, 2],
      channel_mult: [1, 2],
      num_head_channels: 16,
      context_dim: 8,
      disable_self_attentions: [true, false],
      num_attention_blocks: [1, 1],
      disable_middle_transformer: true,
    }),
  );
  const sd = m.stateDict();
  // Level 0: two ResBlocks, attention only in the first (num_attention_blocks), attn1 attends to the context.
  assert.deepEqual([...sd.get('input_blocks.1.1.transformer_blocks.0.attn1.to_k.weight')!.shape], [32, 8]);
  assert.ok(!sd.has('input_blocks.2.1.norm.weight'));
  // Level 1 (64 channels, 4 heads of 16): self-attention in attn1.
  assert.deepEqual([...sd.get('input_blocks.4.1.transformer_blocks.0.attn1.to_k.weight')!.shape], [64, 64]);
  assert.ok(!sd.has('input_blocks.5.0.in_layers.0.weight'));
  assert.ok(!sd.has('middle_block.1.norm.weight') && sd.has('middle_block.2.in_layers.0.weight'));
  // Output blocks: level 1 has 2 (num_res_blocks + 1), the first with attention; then level 0 with 3.
  assert.ok(sd.has('output_blocks.0.1.norm.weight') && !sd.has('output_blocks.1.1.norm.weight') && sd.has('output_blocks.1.1.conv.weight'));
  assert.deepEqual([...sd.get('output_blocks.2.1.transformer_blocks.0.attn1.to_k.weight')!.shape], [32, 8]);
  assert.ok(sd.has('output_blocks.4.0.in_layers.0.weight') && !sd.has('output_blocks.5.0.in_layers.0.weight'));
  const out = m.forward(T.zeros([2, 4, 8, 8]), T.tensor([1, 2], [2]), T.zeros([2, 3, 8]));
  assert.deepEqual([...out.shape], [2, 4, 8, 8]);
});

test('OpenAIWrapper: concat along channels, crossattn -> context, vector -> y, keys under diffusion_model', async () => {
  const unet = nn.withInitMode('eager', () =>
    new UNetModel({
      in_channels: 6,
      model_channels: 32,
      out_channels: 4,
      num_res_blocks: 1,
      attention_resolutions: [1],
      channel_mult: [1],
      num_head_channels: 16,
      context_dim: 8,
      num_classes: 'sequential',
      adm_in_channels: 5,
    }),
  ).eval();
  const wrapper = instantiateFromConfig<OpenAIWrapper>(
    { target: 'sgm.modules.diffusionmodules.wrappers.OpenAIWrapper', params: { diffusion_model: unet, compile_model: false } },
    { registry: registry() },
  );
  assert.ok([...wrapper.stateDict().keys()].every((k) => k.startsWith('diffusion_model.')));
  const x = T.tensor(Float32Array.from({ length: 2 * 4 * 4 * 4 }, (_, i) => Math.sin(i)), [2, 4, 4, 4]);
  const cc = T.tensor(Float32Array.from({ length: 2 * 2 * 4 * 4 }, (_, i) => Math.cos(i)), [2, 2, 4, 4]);
  const ctx = T.tensor(Float32Array.from({ length: 2 * 3 * 8 }, (_, i) => Math.sin(3 * i)), [2, 3, 8]);
  const vec = T.tensor(Float32Array.from({ length: 2 * 5 }, (_, i) => i / 10), [2, 5]);
  const ts = T.tensor([3, 500], [2], 'int64');
  const viaWrapper = wrapper.forward(x, ts, { concat: cc, crossattn: ctx, vector: vec }, { unused_by_unet: 1 });
  const direct = unet.forward(T.concat([x, cc], 1), ts, ctx, vec);
  assertClose(await values(viaWrapper), await values(direct), { atol: 0, rtol: 0 });
});

test('attention: bool masks (true = attend), additional tokens, MemoryEfficient rejects masks', async () => {
  const attn = nn.withInitMode('eager', () => new CrossAttention({ query_dim: 8, context_dim: 6, heads: 2, dim_head: 4 }));
  const x = T.tensor(Float32Array.from({ length: 1 * 3 * 8 }, (_, i) => Math.sin(i)), [1, 3, 8]);
  const ctx = T.tensor(Float32Array.from({ length: 1 * 4 * 6 }, (_, i) => Math.cos(i)), [1, 4, 6]);
  // Only the first context token visible: the output is to_out(to_v(ctx[0])) for every query.
  const mask = T.tensor([1, 0, 0, 0], [1, 1, 1, 4], 'bool');
  const masked = await values(attn.forward(x, ctx, mask));
  const first = T.slice(ctx, 1, 0, 1);
  const expected = await values(T.expand(attn.to_out.forward(attn.to_v.forward(first)), [1, 3, 8]));
  assertClose(masked, expected, { atol: 1e-6, rtol: 1e-5 });
  // Additional tokens are attended to (self-attention over 2 + 3 tokens) and stripped from the output.
  const me = nn.withInitMode('eager', () => new MemoryEfficientCrossAttention({ query_dim: 8, heads: 2, dim_head: 4 }));
  const extra = T.tensor(Float32Array.from({ length: 2 * 8 }, (_, i) => i / 16), [1, 2, 8]);
  const withExtra = me.forward(x, null, null, extra);
  assert.deepEqual([...withExtra.shape], [1, 3, 8]);
  const full = T.slice(me.forward(T.concat([extra, x], 1)), 1, 2);
  assertClose(await values(withExtra), await values(full), { atol: 0, rtol: 0 });
  assert.throws(() => me.forward(x, null, mask), /not implemented/);
});

test('ResBlock: dims 3 with exchange_temb_dims (the video time stack)', () => {
  const rb = nn.withInitMode('none', () =>
    new ResBlock({ channels: 32, emb_channels: 16, dropout: 0, dims: 3, kernel_size: [3, 1, 1], exchange_temb_dims: true }),
  );
  assert.deepEqual([...rb.stateDict().get('in_layers.2.weight')!.shape], [32, 32, 3, 1, 1]);
  // x (b, c, t, h, w); emb (b, t, emb) -> emb_layers (b, t, c) -> (b, c, t, 1, 1)
  const out = rb.forward(T.zeros([2, 32, 3, 4, 4]), T.zeros([2, 3, 16]));
  assert.deepEqual([...out.shape], [2, 32, 3, 4, 4]);
});
