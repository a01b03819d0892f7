// Parity: every case in fixtures/encoders, dispatched on its kind.
//   embedder:    build target(params) (and each variant's params) from the registry, load the
//                weights strictly, call forward (or the variant's call) and compare each return;
//   conditioner: build the GeneralConditioner, run forward / get_unconditional_conditioning with
//                the recorded ucg draws injected, compare per output; draws are also checked
//                against torch's CPU bernoulli on the seeded default generator.
// Text cases give the token ids (in.tokens / in.input_ids), so embedders run on ids; conditioner
// cases give strings and need a CLIP tokenizer (todo while none is available).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import * as T from '../../src/tensor/index.js';
import * as nn from '../../src/nn/index.js';
import { SafetensorsFile, type SafetensorsDType } from '../../src/io/safetensors.js';
import { stateSourceFromSafetensors } from '../../src/io/checkpoint.js';
import { instantiateFromConfig, NotImplementedTargetError } from '../../src/config/index.js';
import '../../src/registry.js';
import {
  FrozenCLIPEmbedder,
  FrozenOpenCLIPEmbedder2,
  GeneralConditioner,
  numpyChoice2,
  registerHFTextConfig,
  registerOpenCLIPModelConfig,
  torchBernoulli,
  useClipTokenizer,
  type AbstractEmbModel,
  type HFCLIPTextConfig,
  type OpenCLIPModelConfig,
} from '../../src/modules/encoders/modules.js';
import { ClipTokenizer } from '../../src/tokenizers/clip.js';
import { loadIo, parityArea, type IoTensor, type ParityCase } from '../helpers/fixtures.js';
import { assertClose, type Tolerance } from '../helpers/close.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const IO_DTYPE: Partial<Record<SafetensorsDType, T.DType>> = { F32: 'float32', F64: 'float64', I64: 'int64', I32: 'int32', U8: 'uint8', BOOL: 'bool' };

function toTensor(io: IoTensor, name: string): T.Tensor {
  const dtype = IO_DTYPE[io.dtype];
  if (!dtype) throw new Error(`io tensor ${name} has unsupported dtype ${io.dtype}`);
  return T.constant(io.data as T.TypedArray, io.shape, dtype);
}

function tolFor(c: ParityCase, name: string): Tolerance {
  const tol = c.spec.tolerance ?? {};
  const per = tol.per_output?.[name];
  return { atol: per?.atol ?? tol.atol ?? 0, rtol: per?.rtol ?? tol.rtol ?? 0 };
}

function registerArchs(spec: Record<string, any>): void {
  for (const [name, cfg] of Object.entries((spec.open_clip_model_configs ?? {}) as Record<string, OpenCLIPModelConfig>)) registerOpenCLIPModelConfig(name, cfg);
  for (const [name, cfg] of Object.entries((spec.hf_text_configs ?? {}) as Record<string, HFCLIPTextConfig>)) registerHFTextConfig(name, cfg);
}

/** Builds target(params); null (and a todo) when the target is not implemented yet. */
function build<M>(c: ParityCase, t: TestContext, cfg: Record<string, unknown>): M | null {
  try {
    return instantiateFromConfig<M>(cfg, { path: c.name });
  } catch (e) {
    if (e instanceof NotImplementedTargetError) {
      t.todo(e.message);
      return null;
    }
    throw e;
  }
}

function loadWeights(c: ParityCase, m: nn.Module): void {
  if (!c.weightsPath) return;
  m.loadStateDict(stateSourceFromSafetensors(SafetensorsFile.open(c.weightsPath)), { where: c.weightsPath });
  m.eval();
}

async function compare(c: ParityCase, io: Map<string, IoTensor>, got: Map<string, T.Tensor>): Promise<void> {
  const names = [...got.keys()];
  const values = await T.evaluate(names.map((n) => got.get(n)!));
  names.forEach((n, i) => {
    const ref = io.get(n);
    assert.ok(ref, `${c.name}: fixture has no ${n}`);
    const g = got.get(n)!;
    assert.deepEqual([...g.shape], ref.shape, `${c.name}: ${n} has shape [${g.shape}], expected [${ref.shape}]`);
    assertClose(values[i] as ArrayLike<number>, ref.data as ArrayLike<number>, tolFor(c, n), `${c.name}: ${n}`);
  });
}

/** The positional inputs of a forward call: tokens for text, io tensors by name otherwise. */
function callInputs(c: ParityCase, io: Map<string, IoTensor>, inputs: Record<string, unknown>): unknown[][] {
  const entries = Object.entries(inputs);
  if (entries.length === 1 && entries[0]![0] === 'text') {
    const ids = io.has('in.tokens') ? 'in.tokens' : 'in.input_ids';
    assert.ok(io.has(ids), `${c.name}: text case without in.tokens / in.input_ids`);
    return [[toTensor(io.get(ids)!, ids)]];
  }
  // "in.x2 / in.x4": one call per alternative.
  const alts = entries.map(([, v]) => String(v).split(' / ').map((s) => s.trim()));
  const n = Math.max(...alts.map((a) => a.length));
  return Array.from({ length: n }, (_, i) => alts.map((a) => {
    const key = a[Math.min(i, a.length - 1)]!;
    assert.ok(io.has(key), `${c.name}: fixture has no ${key}`);
    return toTensor(io.get(key)!, key);
  }));
}

async function runEmbedderCase(c: ParityCase, t: TestContext): Promise<void> {
  registerArchs(c.spec);
  const io = loadIo(c);
  const main = { name: '', target: c.spec.target as string, params: c.spec.params ?? {}, call: c.spec.call, inputs: c.spec.call.inputs, returns: c.spec.call.returns as string[], seed: undefined as number | undefined, prefix: '' };
  const variants = [
    main,
    ...((c.spec.variants ?? []) as Array<Record<string, any>>).map((v) => ({
      name: v.name as string,
      target: (v.target ?? c.spec.target) as string,
      params: v.params ?? c.spec.params ?? {},
      call: v.call ?? c.spec.call,
      inputs: v.inputs ?? c.spec.call.inputs,
      returns: v.returns as string[],
      seed: v.torch_manual_seed as number | undefined,
      prefix: (v.weights_key_prefix ?? '') as string,
    })),
  ];
  const got = new Map<string, T.Tensor>();
  for (const v of variants) {
    const m = build<AbstractEmbModel>(c, t, { target: v.target, params: v.params });
    if (!m) return;
    if (v.prefix) {
      // The variant wraps the case's module: its weights load into the sub-module at the prefix.
      const sub = new Map(m.namedModules()).get(v.prefix.replace(/\.$/, ''));
      assert.ok(sub, `${c.name}/${v.name}: no sub-module ${v.prefix}`);
      loadWeights(c, sub);
      m.eval();
    } else {
      loadWeights(c, m);
    }
    if (typeof v.call === 'string') {
      // e.g. "get_unconditional_conditioning(bs=3, device='cpu') after setting embedder.key = 'cls'"
      const bs = /bs=(\d+)/.exec(v.call);
      const key = /key = '([^']+)'/.exec(v.call);
      assert.ok(v.call.startsWith('get_unconditional_conditioning') && bs && key, `${c.name}: cannot interpret call "${v.call}"`);
      const obj = m as unknown as { key?: string; get_unconditional_conditioning(bs: number): Record<string, T.Tensor> };
      assert.throws(() => obj.get_unconditional_conditioning(Number(bs[1])), /key/, 'without key the reference raises');
      obj.key = key[1]!;
      const uc = obj.get_unconditional_conditioning(Number(bs[1]));
      v.returns.forEach((r) => {
        const k = r.split('.').pop()!;
        got.set(r, uc[k]!);
      });
      continue;
    }
    const calls = callInputs(c, io, v.inputs);
    const outs: T.Tensor[] = [];
    if (v.seed !== undefined) T.manualSeed(v.seed);
    for (const args of calls) {
      const r = (m.forward as (...a: unknown[]) => T.Tensor | T.Tensor[])(...args);
      outs.push(...(Array.isArray(r) ? r : [r]));
    }
    assert.equal(outs.length, v.returns.length, `${c.name}${v.name ? `/${v.name}` : ''}: ${outs.length} outputs, fixture lists ${v.returns.length}`);
    v.returns.forEach((r, i) => got.set(r, outs[i]!));
  }
  await compare(c, io, got);
}

// ------------------------------------------------------------------------------ conditioner

/** The CLIP BPE tokenizer from $SGM_VOCAB_DIR or ../shared/vocab; null when no vocabulary is there. */
function clipTokenizer(): ClipTokenizer | null {
  const dir = process.env.SGM_VOCAB_DIR ? resolve(process.env.SGM_VOCAB_DIR) : resolve(repoRoot, '..', 'shared', 'vocab');
  if (!existsSync(dir)) return null;
  return ClipTokenizer.fromFiles(dir);
}

function batchFrom(spec: Record<string, unknown>, io: Map<string, IoTensor>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec)) {
    if (typeof v === 'string' && /^in\./.test(v)) out[k] = toTensor(io.get(v)!, v);
    else if (Array.isArray(v)) out[k] = [...v];
    else out[k] = v;
  }
  return out;
}

/** Recorded draws in order: noise.k, bernoulli as float masks, numpy choices as ints. */
function recordedDraws(c: ParityCase, io: Map<string, IoTensor>) {
  const draws = (c.spec.draws ?? []) as Array<{ key: string; kind: string }>;
  const bern = draws.filter((d) => d.kind.startsWith('torch.bernoulli')).map((d) => Float32Array.from(io.get(d.key)!.data as Float32Array));
  const choice = draws.filter((d) => d.kind.includes('RandomState')).flatMap((d) => Array.from(io.get(d.key)!.data as BigInt64Array, Number));
  return { bern, choice, draws };
}

async function runConditionerCase(c: ParityCase, t: TestContext): Promise<void> {
  registerArchs(c.spec);
  const io = loadIo(c);
  const call = c.spec.call as Record<string, any>;
  const fwd = (call.forward ?? null) as Record<string, any> | null;
  const fwdBatch = (fwd?.batch ?? call.get_unconditional_conditioning?.batch_c) as Record<string, unknown>;
  assert.ok(fwdBatch, `${c.name}: call has neither forward.batch nor get_unconditional_conditioning.batch_c`);
  const needsText = Object.values(fwdBatch).some((v) => Array.isArray(v) && typeof v[0] === 'string');
  if (needsText) {
    const tok = clipTokenizer();
    if (!tok) {
      t.todo('string prompts need the CLIP BPE vocabulary ($SGM_VOCAB_DIR or ../shared/vocab)');
      return;
    }
    useClipTokenizer(tok);
  }
  const cond = build<GeneralConditioner>(c, t, { target: c.spec.target, params: c.spec.params });
  if (!cond) return;
  assert.ok(cond instanceof GeneralConditioner);
  loadWeights(c, cond);
  const got = new Map<string, T.Tensor>();
  const { bern, choice, draws } = recordedDraws(c, io);
  // The recorded Bernoulli masks are what torch's CPU bernoulli gives on the seeded generator.
  if (fwd?.torch_manual_seed !== undefined && bern.length > 0) {
    const g = new T.Generator(fwd.torch_manual_seed as number);
    const rates = draws.filter((d) => d.kind.startsWith('torch.bernoulli')).map((d) => Number(/\(1-([\d.]+)\)/.exec(d.kind)![1]));
    bern.forEach((m, i) => assert.deepEqual(Array.from(torchBernoulli(g, 1 - rates[i]!, m.length)), Array.from(m), `${c.name}: bernoulli draw ${i}`));
  }
  if (fwd?.numpy_randomstate_seed !== undefined && choice.length > 0) {
    const rs = new T.RandomState(fwd.numpy_randomstate_seed as number);
    const rate = cond.embedders.items.find((e) => e.legacy_ucg_val !== null)!.ucg_rate;
    assert.deepEqual(choice.map(() => numpyChoice2(rs, rate)), choice, `${c.name}: numpy choice draws`);
  }
  let bi = 0;
  let ci = 0;
  cond.draws = {
    bernoulli: (_p, n) => {
      const m = bern[bi++];
      assert.ok(m && m.length === n, `${c.name}: no recorded bernoulli draw #${bi - 1} of size ${n}`);
      return m;
    },
    // During get_unconditional_conditioning (rate 0) numpy's choice is always 0.
    choice: (_e, rate) => (rate === 0 ? 0 : choice[ci++]!),
  };
  if (fwd) {
    const batch = batchFrom(fwdBatch, io);
    const c0 = cond.forward(batch);
    for (const [k, name] of Object.entries(fwd.returns as Record<string, string>)) got.set(name, c0[k]!);
    if (io.has('aux.cls_after_legacy_ucg')) got.set('aux.cls_after_legacy_ucg', batch.cls as T.Tensor);
    assert.equal(bi, bern.length, `${c.name}: ${bi} bernoulli draws used, ${bern.length} recorded`);
  }

  for (const [label, spec] of Object.entries(call)) {
    if (!label.startsWith('get_unconditional_conditioning')) continue;
    const s = spec as Record<string, any>;
    const force: string[] = s.force_uc_zero_embeddings ?? (/force_uc_zero_embeddings=\[(.*?)\]/.exec(label)?.[1] ?? '').split(',').map((x) => x.trim().replace(/'/g, '')).filter((x) => x);
    const batchC = batchFrom(fwdBatch, io);
    let batchUc: Record<string, unknown> | null = null;
    const ucSpec = s.batch_uc ?? call.get_unconditional_conditioning?.batch_uc;
    if (ucSpec && typeof ucSpec === 'object') {
      batchUc = { ...batchFrom(fwdBatch, io) };
      for (const [k, v] of Object.entries(ucSpec as Record<string, unknown>)) if (!k.startsWith('(')) batchUc[k] = Array.isArray(v) ? [...v] : v;
    }
    const [cc, uc] = cond.get_unconditional_conditioning(batchC, batchUc, force);
    for (const [k, name] of Object.entries(s.returns as Record<string, string>)) {
      if (!name.startsWith('out.')) continue;
      const m = /^(c|uc)(?:\.(\w+)|\[(\w+)\])$/.exec(k);
      assert.ok(m, `${c.name}: cannot interpret return key ${k}`);
      got.set(name, (m[1] === 'c' ? cc : uc)[m[2] ?? m[3]!]!);
    }
  }
  const listed = [...io.keys()].filter((k) => k.startsWith('out.'));
  const missing = listed.filter((k) => !got.has(k));
  assert.deepEqual(missing, [], `${c.name}: outputs never produced`);
  await compare(c, io, got);
}

// ------------------------------------------------------------------------------ report

/**
 * hf_vs_openclip_crosscheck: the reference checked its HF CLIPTextModel against open_clip's text
 * transformer with shared weights. The same check on our two towers: identical ids give identical
 * hidden states and pooled outputs; the two tokenizers' padding (0 vs 49407) changes only the
 * positions after the eot.
 */
async function runReportCase(c: ParityCase, t: TestContext): Promise<void> {
  const r = c.spec.results as Record<string, any> | undefined;
  if (!r?.sgm_embedders_own_tokenizers) {
    t.todo(`report ${c.name}: no check known for it`);
    return;
  }
  const { layers, width, heads } = r as { layers: number; width: number; heads: number };
  registerOpenCLIPModelConfig('crosscheck-oc', { embed_dim: width, quick_gelu: true, text_cfg: { context_length: 77, vocab_size: 49408, width, heads, layers } });
  registerHFTextConfig('crosscheck-hf', { vocab_size: 49408, hidden_size: width, intermediate_size: 4 * width, num_hidden_layers: layers, num_attention_heads: heads, max_position_embeddings: 77, hidden_act: 'quick_gelu' });
  T.manualSeed(20231130);
  const oc = nn.withInitMode('eager', () => new FrozenOpenCLIPEmbedder2('crosscheck-oc', null, 'cpu', 77, true, 'penultimate', true, false));
  const hf = nn.withInitMode('eager', () => new FrozenCLIPEmbedder('crosscheck-hf', 'cpu', 77, true, 'hidden', layers - 1, true));
  // Non-trivial LayerNorm affines and biases, so the copy is checked too.
  for (const p of oc.parameters()) if (p.shape.length === 1) p.assign(T.defaultGenerator.randnData(p.shape, 'float32'));
  const host = (v: T.Variable) => (v.storage as { data: Float32Array }).data;
  const copy = (to: T.Variable, from: T.Variable | Float32Array) => to.assign(Float32Array.from(from instanceof Float32Array ? from : host(from)));
  const tm = hf.transformer.text_model;
  copy(tm.embeddings.token_embedding.weight, oc.model.token_embedding.weight);
  copy(tm.embeddings.position_embedding.weight, oc.model.positional_embedding);
  oc.model.transformer.resblocks.items.forEach((b, i) => {
    const l = tm.encoder.layers.at(i);
    const w = host(b.attn.in_proj_weight);
    const bias = host(b.attn.in_proj_bias!);
    const n = width * width;
    copy(l.self_attn.q_proj.weight, w.slice(0, n));
    copy(l.self_attn.k_proj.weight, w.slice(n, 2 * n));
    copy(l.self_attn.v_proj.weight, w.slice(2 * n));
    copy(l.self_attn.q_proj.bias!, bias.slice(0, width));
    copy(l.self_attn.k_proj.bias!, bias.slice(width, 2 * width));
    copy(l.self_attn.v_proj.bias!, bias.slice(2 * width));
    copy(l.self_attn.out_proj.weight, b.attn.out_proj.weight);
    copy(l.self_attn.out_proj.bias!, b.attn.out_proj.bias!);
    copy(l.layer_norm1.weight!, b.ln_1.weight!);
    copy(l.layer_norm1.bias!, b.ln_1.bias!);
    copy(l.layer_norm2.weight!, b.ln_2.weight!);
    copy(l.layer_norm2.bias!, b.ln_2.bias!);
    copy(l.mlp.fc1.weight, b.mlp.c_fc.weight);
    copy(l.mlp.fc1.bias!, b.mlp.c_fc.bias!);
    copy(l.mlp.fc2.weight, b.mlp.c_proj.weight);
    copy(l.mlp.fc2.bias!, b.mlp.c_proj.bias!);
  });
  copy(tm.final_layer_norm.weight!, oc.model.ln_final.weight!);
  copy(tm.final_layer_norm.bias!, oc.model.ln_final.bias!);
  const row = (pad: number, body: number[]) => [49406, ...body, 49407, ...new Array<number>(77 - body.length - 2).fill(pad)];
  const bodies = [[320, 1125, 539, 320, 2368], [], [1929, 268, 4558, 267, 539]];
  const ocIds = bodies.map((b) => row(0, b));
  const hfIds = bodies.map((b) => row(49407, b));
  const tol = { atol: 1e-5, rtol: 1e-5 };
  for (const ids of [ocIds, hfIds]) {
    const [zo, po] = oc.forward(ids) as T.Tensor[];
    const [zh, ph] = hf.forward(ids) as T.Tensor[];
    const [a, b, pa, pb] = (await T.evaluate([zo!, zh!, po!, T.matmul(ph!, oc.model.text_projection)])) as Float32Array[];
    assertClose(b!, a!, tol, `${c.name}: hidden[${layers - 1}] vs penultimate, same ids`);
    assertClose(pb!, pa!, tol, `${c.name}: pooler @ text_projection vs pooled, same ids`);
  }
  const [zo] = oc.forward(ocIds) as T.Tensor[];
  const [zh] = hf.forward(hfIds) as T.Tensor[];
  const [a, b] = (await T.evaluate([zo!, zh!])) as Float32Array[];
  let maxAfter = 0;
  bodies.forEach((body, i) => {
    const eot = body.length + 1;
    const base = i * 77 * width;
    assertClose(b!.subarray(base, base + (eot + 1) * width), a!.subarray(base, base + (eot + 1) * width), tol, `${c.name}: row ${i} up to the eot`);
    for (let j = base + (eot + 1) * width; j < base + 77 * width; j++) maxAfter = Math.max(maxAfter, Math.abs(a![j]! - b![j]!));
  });
  assert.ok(maxAfter > 1e-3, `${c.name}: padding 0 vs 49407 should change the positions after the eot (max diff ${maxAfter})`);
}

parityArea('encoders', {
  embedder: runEmbedderCase,
  conditioner: runConditionerCase,
  report: runReportCase,
});
