// Unit tests of sgm.modules.encoders.modules: the reference configs' conditioners at full size
// (structure and state-dict layout only, no weights), GeneralConditioner routing / ucg / zeroing on
// small hand-checked inputs, and config errors. Numerics against the reference live in
// test/parity/encoders.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as T from '../../src/tensor/index.js';
import * as nn from '../../src/nn/index.js';
import { ConfigError, instantiateFromConfig, loadConfigFile, resolveInterpolations } from '../../src/config/index.js';
import '../../src/registry.js';
import {
  ClassEmbedder,
  ConcatTimestepEmbedderND,
  FrozenCLIPEmbedder,
  FrozenOpenCLIPEmbedder,
  FrozenOpenCLIPEmbedder2,
  FrozenOpenCLIPImagePredictionEmbedder,
  GeneralConditioner,
  IdentityEncoder,
  VideoPredictionEmbedderWithEncoder,
  numpyChoice2,
  registerOpenCLIPModelConfig,
  torchBernoulli,
} from '../../src/modules/encoders/modules.js';
import { fixtureRoot } from '../helpers/fixtures.js';

const CONFIGS = process.env.SGM_REFERENCE_CONFIGS ? resolve(process.env.SGM_REFERENCE_CONFIGS) : resolve(fixtureRoot(), '..', 'reference-configs');

function conditionerOf(file: string): GeneralConditioner {
  const cfg = loadConfigFile(join(CONFIGS, file)) as Record<string, any>;
  return nn.withInitMode('none', () => instantiateFromConfig<GeneralConditioner>(cfg.model.params.conditioner_config, { path: 'model.params.conditioner_config' }));
}

function keyShapes(m: nn.Module, prefix: string): Map<string, string> {
  return new Map([...m.stateDict(prefix)].map(([k, v]) => [k, v.shape.join('x')]));
}

/** Keys of an open_clip text tower (independently from the open_clip layout): W width, L layers, D embed. */
function openClipKeys(prefix: string, w: number, layers: number, d: number): Map<string, string> {
  const m = new Map<string, string>([
    [`${prefix}positional_embedding`, `77x${w}`],
    [`${prefix}text_projection`, `${w}x${d}`],
    [`${prefix}logit_scale`, ''],
    [`${prefix}token_embedding.weight`, `49408x${w}`],
    [`${prefix}ln_final.weight`, `${w}`],
    [`${prefix}ln_final.bias`, `${w}`],
  ]);
  for (let i = 0; i < layers; i++) {
    const b = `${prefix}transformer.resblocks.${i}.`;
    m.set(`${b}ln_1.weight`, `${w}`).set(`${b}ln_1.bias`, `${w}`).set(`${b}ln_2.weight`, `${w}`).set(`${b}ln_2.bias`, `${w}`);
    m.set(`${b}attn.in_proj_weight`, `${3 * w}x${w}`).set(`${b}attn.in_proj_bias`, `${3 * w}`);
    m.set(`${b}attn.out_proj.weight`, `${w}x${w}`).set(`${b}attn.out_proj.bias`, `${w}`);
    m.set(`${b}mlp.c_fc.weight`, `${4 * w}x${w}`).set(`${b}mlp.c_fc.bias`, `${4 * w}`);
    m.set(`${b}mlp.c_proj.weight`, `${w}x${4 * w}`).set(`${b}mlp.c_proj.bias`, `${w}`);
  }
  return m;
}

/** Keys of transformers' CLIPTextModel (4.19-4.30, position_ids persistent). */
function hfClipKeys(prefix: string, w: number, layers: number, inter: number): Map<string, string> {
  const p = `${prefix}transformer.text_model.`;
  const m = new Map<string, string>([
    [`${p}embeddings.token_embedding.weight`, `49408x${w}`],
    [`${p}embeddings.position_embedding.weight`, `77x${w}`],
    [`${p}embeddings.position_ids`, '1x77'],
    [`${p}final_layer_norm.weight`, `${w}`],
    [`${p}final_layer_norm.bias`, `${w}`],
  ]);
  for (let i = 0; i < layers; i++) {
    const b = `${p}encoder.layers.${i}.`;
    for (const n of ['k_proj', 'v_proj', 'q_proj', 'out_proj']) m.set(`${b}self_attn.${n}.weight`, `${w}x${w}`).set(`${b}self_attn.${n}.bias`, `${w}`);
    for (const n of ['layer_norm1', 'layer_norm2']) m.set(`${b}${n}.weight`, `${w}`).set(`${b}${n}.bias`, `${w}`);
    m.set(`${b}mlp.fc1.weight`, `${inter}x${w}`).set(`${b}mlp.fc1.bias`, `${inter}`).set(`${b}mlp.fc2.weight`, `${w}x${inter}`).set(`${b}mlp.fc2.bias`, `${w}`);
  }
  return m;
}

function assertSameKeys(got: Map<string, string>, want: Map<string, string>, label: string): void {
  const missing = [...want.keys()].filter((k) => !got.has(k));
  const extra = [...got.keys()].filter((k) => !want.has(k));
  const misshaped = [...want.keys()].filter((k) => got.has(k) && got.get(k) !== want.get(k)).map((k) => `${k}: ${got.get(k)} vs ${want.get(k)}`);
  assert.deepEqual({ missing: missing.slice(0, 5), extra: extra.slice(0, 5), misshaped: misshaped.slice(0, 5) }, { missing: [], extra: [], misshaped: [] }, label);
}

const haveConfigs = existsSync(join(CONFIGS, 'inference', 'sd_xl_base.yaml'));

test('SDXL base conditioner at full size: CLIP-L hidden 11 + bigG penultimate, real key layout', { skip: !haveConfigs && 'reference configs absent' }, () => {
  const cond = conditionerOf('inference/sd_xl_base.yaml');
  assert.equal(cond.embedders.length, 5);
  const [clip, bigG, ...sizes] = cond.embedders.items;
  assert.ok(clip instanceof FrozenCLIPEmbedder && clip.layer === 'hidden' && clip.layer_idx === 11);
  assert.ok(bigG instanceof FrozenOpenCLIPEmbedder2 && bigG.layer === 'penultimate' && !bigG.legacy && bigG.return_pooled);
  assert.ok(sizes.every((s) => s instanceof ConcatTimestepEmbedderND && s.outdim === 256));
  assert.deepEqual(cond.embedders.items.map((e) => e.input_key), ['txt', 'txt', 'original_size_as_tuple', 'crop_coords_top_left', 'target_size_as_tuple']);
  const want = new Map([...hfClipKeys('conditioner.embedders.0.', 768, 12, 3072), ...openClipKeys('conditioner.embedders.1.model.', 1280, 32, 1280)]);
  assertSameKeys(keyShapes(cond, 'conditioner.'), want, 'sd_xl_base conditioner keys');
  assert.equal(want.size, 197 + 390);
  // Parameters: CLIP-L text 123.06M + position_ids, bigG text 694.66M (open_clip's published sizes).
  assert.equal(cond.embedders.at(0).numParameters(), 123060480);
  assert.equal(cond.embedders.at(1).numParameters(), 694659841);
});

test('SDXL refiner conditioner: bigG at embedders.0, aesthetic score; vector width 1280 + (2 + 2 + 1) x 256 = 2560', { skip: !haveConfigs && 'reference configs absent' }, () => {
  const cond = conditionerOf('inference/sd_xl_refiner.yaml');
  assert.equal(cond.embedders.length, 4);
  assert.ok(cond.embedders.at(0) instanceof FrozenOpenCLIPEmbedder2);
  assert.deepEqual(cond.embedders.items.map((e) => e.input_key), ['txt', 'original_size_as_tuple', 'crop_coords_top_left', 'aesthetic_score']);
  assertSameKeys(keyShapes(cond, 'conditioner.'), openClipKeys('conditioner.embedders.0.model.', 1280, 32, 1280), 'sd_xl_refiner conditioner keys');
  const cfg = loadConfigFile(join(CONFIGS, 'inference', 'sd_xl_refiner.yaml')) as Record<string, any>;
  assert.equal(cfg.model.params.network_config.params.adm_in_channels, 1280 + (2 + 2 + 1) * 256);
});

test('SD 2.1 conditioner: OpenCLIP ViT-H/14 penultimate, model.* keys (cond_stage_model.model.* in original checkpoints)', { skip: !haveConfigs && 'reference configs absent' }, () => {
  const cond = conditionerOf('inference/sd_2_1.yaml');
  assert.equal(cond.embedders.length, 1);
  const e = cond.embedders.at(0);
  assert.ok(e instanceof FrozenOpenCLIPEmbedder && e.layer === 'penultimate' && e.layer_idx === 1);
  assertSameKeys(keyShapes(e, 'cond_stage_model.'), openClipKeys('cond_stage_model.model.', 1024, 24, 1024), 'sd_2_1 embedder keys');
});

test('SVD conditioner at full size: ViT-H/14 image tower (text blocks deleted), VAE encoder, sizes', { skip: !haveConfigs && 'reference configs absent' }, () => {
  const cond = conditionerOf('inference/svd.yaml');
  assert.equal(cond.embedders.length, 5);
  const [img, fps, motion, frames, aug] = cond.embedders.items;
  assert.ok(img instanceof FrozenOpenCLIPImagePredictionEmbedder && img.n_cond_frames === 1 && img.n_copies === 1);
  assert.ok(frames instanceof VideoPredictionEmbedderWithEncoder && frames.is_ae && frames.scale_factor === 1 && frames.sigma_sampler === null);
  assert.ok([fps, motion, aug].every((e) => e instanceof ConcatTimestepEmbedderND && e.outdim === 256));
  assert.deepEqual(cond.embedders.items.map((e) => e.input_key), ['cond_frames_without_noise', 'fps_id', 'motion_bucket_id', 'cond_frames', 'cond_aug']);
  const keys = keyShapes(cond, 'conditioner.');
  const p = 'conditioner.embedders.0.open_clip.model.';
  // open_clip ViT-H-14: patch 14 at 224 -> 16 x 16 + 1 positions, width 1280, 32 blocks, proj to 1024.
  assert.equal(keys.get(`${p}visual.conv1.weight`), '1280x3x14x14');
  assert.equal(keys.get(`${p}visual.positional_embedding`), '257x1280');
  assert.equal(keys.get(`${p}visual.class_embedding`), '1280');
  assert.equal(keys.get(`${p}visual.proj`), '1280x1024');
  assert.equal(keys.get(`${p}visual.transformer.resblocks.31.attn.in_proj_weight`), '3840x1280');
  assert.ok(!keys.has(`${p}visual.transformer.resblocks.32.ln_1.weight`));
  // The text blocks are deleted; the other text parameters stay (quirk 14).
  assert.ok(![...keys.keys()].some((k) => k.startsWith(`${p}transformer.`)));
  for (const k of ['token_embedding.weight', 'positional_embedding', 'ln_final.weight', 'text_projection', 'logit_scale']) assert.ok(keys.has(p + k), k);
  assert.equal(keys.get(`${p}text_projection`), '1024x1024');
  assert.equal((img as FrozenOpenCLIPImagePredictionEmbedder).open_clip.model.visual.numParameters(), 632076800);
  assert.equal(keys.get('conditioner.embedders.3.encoder.encoder.conv_in.weight'), '128x3x3x3');
  assert.equal(keys.get('conditioner.embedders.3.encoder.quant_conv.weight'), '8x8x1x1');
});

test('every reference config conditioner_config instantiates at full size', { skip: !haveConfigs && 'reference configs absent' }, () => {
  const walk = (d: string): string[] => readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : f.endsWith('.yaml') ? [join(d, f)] : []));
  let n = 0;
  for (const file of walk(CONFIGS)) {
    const cfg = resolveInterpolations(loadConfigFile(file)) as Record<string, any>;
    const cc = cfg.model?.params?.conditioner_config;
    if (!cc) continue;
    const cond = nn.withInitMode('none', () => instantiateFromConfig<GeneralConditioner>(cc, { path: `${file}: model.params.conditioner_config` }));
    assert.ok(cond instanceof GeneralConditioner && cond.embedders.length > 0, file);
    n++;
  }
  assert.ok(n >= 15, `${n} conditioners`);
});

test('GeneralConditioner routes outputs by dims and concatenates in embedder order', async () => {
  const mk = (key: string, e = new IdentityEncoder()) => ({ embedder: e, settings: { input_key: key } });
  const cond = new GeneralConditioner([mk('a'), mk('b'), mk('c'), mk('d'), mk('e')]);
  const a = T.tensor([1, 2, 3, 4], [2, 2]);
  const b = T.tensor([5, 6], [2, 1]);
  const c = T.tensor([1, 2, 3, 4], [2, 1, 2]);
  const d = T.tensor([7, 8, 9, 10], [2, 1, 2]);
  const e = T.tensor([1, 2, 3, 4], [2, 2, 1, 1]);
  const out = cond.forward({ a, b, c, d, e });
  assert.deepEqual(Object.keys(out).sort(), ['concat', 'crossattn', 'vector']);
  assert.deepEqual(Array.from((await out.vector!.data()) as Float32Array), [1, 2, 5, 3, 4, 6]);
  assert.deepEqual([...out.crossattn!.shape], [2, 1, 4]);
  assert.deepEqual(Array.from((await out.crossattn!.data()) as Float32Array), [1, 2, 7, 8, 3, 4, 9, 10]);
  assert.deepEqual([...out.concat!.shape], [2, 2, 1, 1]);
  const zeroed = cond.forward({ a, b, c, d, e }, ['b', 'd']);
  assert.deepEqual(Array.from((await zeroed.vector!.data()) as Float32Array), [1, 2, 0, 3, 4, 0]);
  assert.deepEqual(Array.from((await zeroed.crossattn!.data()) as Float32Array), [1, 2, 0, 0, 3, 4, 0, 0]);
  assert.throws(() => cond.forward({ a, b, c, d, e: T.zeros([2]) }), /1-d output/);
});

test('ucg dropout: one bernoulli mask per output, -0.0 for dropped negatives; get_unconditional_conditioning disables it', async () => {
  const cond = new GeneralConditioner([{ embedder: new IdentityEncoder(), settings: { input_key: 'x', ucg_rate: 0.5 } }]);
  const masks: number[][] = [];
  cond.draws = { bernoulli: (p, n) => (assert.equal(p, 0.5), masks.push([0, 1, 0].slice(0, n)), Float32Array.from([0, 1, 0].slice(0, n))) };
  const x = T.tensor([-1, 2, 3, -4, 5, -6], [3, 2]);
  const v = Array.from((await cond.forward({ x }).vector!.data()) as Float32Array);
  assert.deepEqual(v, [-0, 0, 3, -4, 0, -0]);
  assert.ok(Object.is(v[0], -0) && Object.is(v[1], 0));
  assert.equal(masks.length, 1);
  const [c, uc] = cond.get_unconditional_conditioning({ x }, null, ['x']);
  assert.equal(masks.length, 1, 'no draws with ucg_rate 0');
  assert.deepEqual(Array.from((await c.vector!.data()) as Float32Array), [-1, 2, 3, -4, 5, -6]);
  assert.deepEqual(Array.from((await uc.vector!.data()) as Float32Array), [0, 0, 0, 0, 0, 0]);
  assert.equal(cond.embedders.at(0).ucg_rate, 0.5, 'rate restored');
});

test('torch CPU bernoulli and numpy choice reproduce the reference draws', () => {
  // torch.manual_seed(1504); torch.bernoulli(0.5 * ones(6)) twice, then 0.7 (fixture conditioner_ucg_dropout).
  const g = new T.Generator(1504);
  assert.deepEqual(Array.from(torchBernoulli(g, 0.5, 6)), [0, 1, 0, 1, 0, 1]);
  assert.deepEqual(Array.from(torchBernoulli(g, 0.5, 6)), [0, 1, 1, 0, 0, 0]);
  assert.deepEqual(Array.from(torchBernoulli(g, 1 - 0.3, 6)), [1, 1, 0, 1, 1, 0]);
  // numpy.random.RandomState(1503).choice(2, p=[0.5, 0.5]) x 6.
  const rs = new T.RandomState(1503);
  assert.deepEqual(Array.from({ length: 6 }, () => numpyChoice2(rs, 0.5)), [0, 1, 1, 1, 0, 1]);
  assert.equal(numpyChoice2(new T.RandomState(1), 0), 0);
});

test('legacy_ucg_value replaces inputs per sample and mutates the batch', async () => {
  const emb = nn.withInitMode('eager', () => new ClassEmbedder(2, 10));
  const cond = new GeneralConditioner([{ embedder: emb, settings: { input_key: 'cls', ucg_rate: 0.5, legacy_ucg_value: 9 } }]);
  const hits = [1, 0, 1];
  cond.draws = { bernoulli: () => assert.fail('no bernoulli with legacy_ucg_value'), choice: () => hits.shift()! };
  const batch: Record<string, unknown> = { cls: T.tensor([1, 2, 3], [3], 'int64') };
  const out = cond.forward(batch);
  assert.deepEqual(Array.from((await (batch.cls as T.Tensor).data()) as BigInt64Array, Number), [9, 2, 9]);
  assert.deepEqual([...out.vector!.shape], [3, 2]);
  const list: Record<string, unknown> = { cls: [1, 2, 3] };
  hits.push(0, 1, 0);
  cond.forward(list);
  assert.deepEqual(list.cls, [1, 9, 3]);
});

test('ClassEmbedder: unconditional class is n_classes - 1; needs key like the reference', async () => {
  const e = new ClassEmbedder(4, 7);
  assert.throws(() => e.get_unconditional_conditioning(2), /key/);
  e.key = 'cls';
  assert.deepEqual(Array.from((await e.get_unconditional_conditioning(3).cls!.data()) as BigInt64Array, Number), [6, 6, 6]);
});

test('ConcatTimestepEmbedderND: (B, D) -> (B, D * outdim), cos first', async () => {
  const e = new ConcatTimestepEmbedderND(4);
  const out = e.forward(T.tensor([0, 1], [1, 2], 'int64'));
  assert.deepEqual([...out.shape], [1, 8]);
  const v = Array.from((await out.data()) as Float32Array);
  const f = Math.exp(-Math.log(10000) / 2);
  const want = [1, 1, 0, 0, Math.cos(1), Math.cos(f), Math.sin(1), Math.sin(f)];
  v.forEach((x, i) => assert.ok(Math.abs(x - want[i]!) < 1e-6, `${i}: ${x} vs ${want[i]}`));
});

test('text embedders: string prompts without a tokenizer say how to provide one; token ids work', async () => {
  registerOpenCLIPModelConfig('unit-tiny', { embed_dim: 3, text_cfg: { context_length: 5, vocab_size: 10, width: 4, heads: 2, layers: 2 } });
  const e = nn.withInitMode('eager', () => new FrozenOpenCLIPEmbedder2('unit-tiny', null, 'cpu', 77, true, 'penultimate', true, false));
  assert.throws(() => e.forward(['a cat']), /tokenizer/);
  const [z, pooled] = e.forward([[1, 2, 9, 0, 0]]) as T.Tensor[];
  assert.deepEqual([...z!.shape], [1, 5, 4]);
  assert.deepEqual([...pooled!.shape], [1, 3]);
  const fed: string[][] = [];
  const withTok = nn.withInitMode('eager', () => new FrozenOpenCLIPEmbedder('unit-tiny', null, 'cpu', 77, true, 'last', { tokenizer: (t, n) => (fed.push([...t]), t.map(() => Array.from({ length: n }, (_, i) => (i === 1 ? 9 : 0)))) }));
  assert.deepEqual([...withTok.forward(['x', 'y']).shape], [2, 5, 4]);
  assert.deepEqual(fed, [['x', 'y']]);
});

test('config errors name the path and what is wrong', () => {
  const base = { target: 'sgm.modules.GeneralConditioner', params: { emb_models: [{ target: 'sgm.modules.encoders.modules.IdentityEncoder' }] } };
  assert.throws(() => instantiateFromConfig(base, { path: 'model.params.conditioner_config' }), (e: unknown) => e instanceof ConfigError && /emb_models\.0.*input_key/.test(e.message));
  const badLayer = { target: 'sgm.modules.encoders.modules.FrozenOpenCLIPEmbedder2', params: { arch: 'ViT-bigG-14', layer: 'second' } };
  assert.throws(() => nn.withInitMode('none', () => instantiateFromConfig(badLayer, { path: 'x' })), (e: unknown) => e instanceof ConfigError && /layer/.test(e.message));
  const pooledLegacy = { target: 'sgm.modules.encoders.modules.FrozenOpenCLIPEmbedder2', params: { arch: 'ViT-bigG-14', always_return_pooled: true } };
  assert.throws(() => nn.withInitMode('none', () => instantiateFromConfig(pooledLegacy, { path: 'x' })), /legacy/);
  const unknownArch = { target: 'sgm.modules.encoders.modules.FrozenOpenCLIPEmbedder', params: { arch: 'ViT-Q-99' } };
  assert.throws(() => instantiateFromConfig(unknownArch, { path: 'x' }), /unknown open_clip arch 'ViT-Q-99'/);
  const hidden = { target: 'sgm.modules.encoders.modules.FrozenCLIPEmbedder', params: { layer: 'hidden' } };
  assert.throws(() => nn.withInitMode('none', () => instantiateFromConfig(hidden, { path: 'x' })), /layer_idx/);
  const notEmb = { target: 'sgm.modules.GeneralConditioner', params: { emb_models: [{ target: 'torch.nn.Identity', input_key: 'x' }] } };
  assert.throws(() => instantiateFromConfig(notEmb, { path: 'c' }), /AbstractEmbModel/);
});
