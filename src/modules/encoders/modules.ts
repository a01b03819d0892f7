// sgm.modules.encoders.modules: the conditioning embedders and GeneralConditioner.
//
// Text towers are built from architecture tables (open_clip model configs by name, Hugging Face
// CLIPTextConfig by version name) rather than downloaded: weights come from the single-file
// checkpoint (`conditioner.embedders.N.*`, `cond_stage_model.*`). Tokenizers are injected (a
// constructor option or a process-wide default per tokenizer kind), never fetched from a hub; the
// embedders also accept token ids directly (an int64 (B, L) tensor or number[][]).
import * as T from '../../tensor/index.js';
import * as nn from '../../nn/index.js';
import { initStorage, normal, constantInit } from '../../nn/init.js';
import { timestep_embedding } from '../diffusionmodules/util.js';

// ------------------------------------------------------------------------------------ tokenizers

/** Tokenizer kinds: open_clip pads with 0; the HF CLIP-L tokenizer pads with 49407 (quirk 4). */
export type TokenizerKind = 'open_clip' | 'hf_clip';

/** int64 rows, row-major (src/tokenizers' TokenRows). */
export interface TokenIdRows {
  data: BigInt64Array;
  shape: readonly [number, number] | readonly number[];
}

/** Tokenizes a batch of prompts to exactly `contextLength` ids each (sot ... eot, padded, truncated). */
export type TextTokenizer = (texts: readonly string[], contextLength: number) => ArrayLike<number>[] | TokenIdRows;

/** The methods of src/tokenizers' ClipTokenizer the embedders use. */
export interface ClipTokenizerLike {
  openClipTokenize(texts: string[], contextLength?: number): { data: BigInt64Array; shape: [number, number] };
  hfTokenize(texts: string[], options?: { maxLength?: number }): { inputIds: BigInt64Array; shape: [number, number] };
}

/**
 * The two tokenizer kinds from one CLIP BPE tokenizer: open_clip.tokenize (pad 0) for the OpenCLIP
 * embedders, the HF CLIPTokenizer call of FrozenCLIPEmbedder (truncation, padding max_length, pad
 * 49407) for CLIP-L.
 */
export function clipTextTokenizers(tok: ClipTokenizerLike): Record<TokenizerKind, TextTokenizer> {
  return {
    open_clip: (texts, ctx) => tok.openClipTokenize([...texts], ctx),
    hf_clip: (texts, ctx) => {
      const e = tok.hfTokenize([...texts], { maxLength: ctx });
      return { data: e.inputIds, shape: e.shape };
    },
  };
}

/** Makes `tok` the default tokenizer of every text embedder that has none of its own. */
export function useClipTokenizer(tok: ClipTokenizerLike): void {
  const t = clipTextTokenizers(tok);
  setDefaultTokenizer('open_clip', t.open_clip);
  setDefaultTokenizer('hf_clip', t.hf_clip);
}

const defaultTokenizers: Partial<Record<TokenizerKind, TextTokenizer>> = {};

/** Sets (or clears, with null) the tokenizer text embedders of `kind` use when given none. */
export function setDefaultTokenizer(kind: TokenizerKind, tokenize: TextTokenizer | null): void {
  if (tokenize) defaultTokenizers[kind] = tokenize;
  else delete defaultTokenizers[kind];
}

/** Text input of a text embedder: prompts, or token ids (int64 tensor (B, L) or rows of ids). */
export type TextInput = readonly string[] | string | T.Tensor | ReadonlyArray<ArrayLike<number>>;

function idsTensor(rows: ReadonlyArray<ArrayLike<number>>, where: string): T.Tensor {
  const b = rows.length;
  if (b === 0) throw new Error(`${where}: empty batch`);
  const l = rows[0]!.length;
  const data = new BigInt64Array(b * l);
  rows.forEach((r, i) => {
    if (r.length !== l) throw new Error(`${where}: token rows differ in length (${l} and ${r.length})`);
    for (let j = 0; j < l; j++) data[i * l + j] = BigInt(r[j]!);
  });
  return T.constant(data, [b, l], 'int64');
}

function textToIds(input: TextInput, kind: TokenizerKind, tokenizer: TextTokenizer | null, contextLength: number, where: string): T.Tensor {
  if (input instanceof T.Tensor) {
    if (input.ndim !== 2) throw new T.ShapeError(where, `token ids must be (B, L), got ${T.fmtShape(input.shape)}`);
    return T.cast(input, 'int64');
  }
  const arr = typeof input === 'string' ? [input] : input;
  if (arr.length > 0 && typeof arr[0] !== 'string') return idsTensor(arr as ReadonlyArray<ArrayLike<number>>, where);
  const tok = tokenizer ?? defaultTokenizers[kind];
  if (!tok) {
    throw new Error(
      `${where}: string prompts need a tokenizer: pass { tokenizer } to the embedder, call setDefaultTokenizer('${kind}', ...), or pass token ids`,
    );
  }
  const rows = tok(arr as readonly string[], contextLength);
  if (!Array.isArray(rows)) {
    const r = rows as TokenIdRows;
    if (r.shape.length !== 2 || r.shape[0] !== arr.length) throw new Error(`${where}: tokenizer returned shape [${r.shape}] for ${arr.length} prompts`);
    return T.constant(r.data, [r.shape[0]!, r.shape[1]!], 'int64');
  }
  return idsTensor(rows, where);
}

// ------------------------------------------------------------------------------ architectures

/** The text part of an open_clip model config (`text_cfg`) plus `embed_dim`. */
export interface OpenCLIPTextConfig {
  embed_dim: number;
  context_length: number;
  vocab_size: number;
  width: number;
  heads: number;
  layers: number;
  mlp_ratio?: number;
  /** open_clip's `quick_gelu` (OpenAI-trained towers); exact GELU otherwise. */
  quick_gelu?: boolean;
}

/** open_clip model configs (json as in open_clip/model_configs). */
export interface OpenCLIPModelConfig {
  embed_dim: number;
  quick_gelu?: boolean;
  text_cfg: { context_length?: number; vocab_size?: number; width: number; heads: number; layers: number; mlp_ratio?: number };
  vision_cfg?: { image_size: number; layers: number; width: number; head_width?: number; patch_size: number; mlp_ratio?: number };
}

const OPEN_CLIP_CONFIGS = new Map<string, OpenCLIPModelConfig>([
  ['ViT-L-14', { embed_dim: 768, text_cfg: { context_length: 77, vocab_size: 49408, width: 768, heads: 12, layers: 12 } }],
  ['ViT-H-14', { embed_dim: 1024, vision_cfg: { image_size: 224, layers: 32, width: 1280, head_width: 80, patch_size: 14 }, text_cfg: { context_length: 77, vocab_size: 49408, width: 1024, heads: 16, layers: 24 } }],
  ['ViT-bigG-14', { embed_dim: 1280, text_cfg: { context_length: 77, vocab_size: 49408, width: 1280, heads: 20, layers: 32 } }],
]);

/** Adds an open_clip model config by name (the `arch` param of the OpenCLIP embedders). */
export function registerOpenCLIPModelConfig(name: string, cfg: OpenCLIPModelConfig): void {
  OPEN_CLIP_CONFIGS.set(name, cfg);
}

export function openCLIPTextConfig(arch: string): OpenCLIPTextConfig {
  const cfg = OPEN_CLIP_CONFIGS.get(arch);
  if (!cfg) throw new Error(`unknown open_clip arch '${arch}'; known: ${[...OPEN_CLIP_CONFIGS.keys()].join(', ')} (add one with registerOpenCLIPModelConfig)`);
  const t = cfg.text_cfg;
  return { embed_dim: cfg.embed_dim, context_length: t.context_length ?? 77, vocab_size: t.vocab_size ?? 49408, width: t.width, heads: t.heads, layers: t.layers, mlp_ratio: t.mlp_ratio ?? 4, quick_gelu: cfg.quick_gelu ?? false };
}

/** The vision tower of an open_clip model config (ViT, class-token pooling). */
export interface OpenCLIPVisionConfig {
  embed_dim: number;
  image_size: number;
  layers: number;
  width: number;
  head_width: number;
  patch_size: number;
  mlp_ratio: number;
  quick_gelu?: boolean;
}

export function openCLIPVisionConfig(arch: string): OpenCLIPVisionConfig {
  const cfg = OPEN_CLIP_CONFIGS.get(arch);
  if (!cfg) throw new Error(`unknown open_clip arch '${arch}'; known: ${[...OPEN_CLIP_CONFIGS.keys()].join(', ')} (add one with registerOpenCLIPModelConfig)`);
  const v = cfg.vision_cfg;
  if (!v) throw new Error(`open_clip arch '${arch}' has no vision_cfg in this table (add one with registerOpenCLIPModelConfig)`);
  return { embed_dim: cfg.embed_dim, image_size: v.image_size, layers: v.layers, width: v.width, head_width: v.head_width ?? 64, patch_size: v.patch_size, mlp_ratio: v.mlp_ratio ?? 4, quick_gelu: cfg.quick_gelu ?? false };
}

/** The fields of a Hugging Face CLIPTextConfig that shape the network. */
export interface HFCLIPTextConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  max_position_embeddings: number;
  hidden_act?: 'quick_gelu' | 'gelu';
  layer_norm_eps?: number;
}

const HF_TEXT_CONFIGS = new Map<string, HFCLIPTextConfig>([
  ['openai/clip-vit-large-patch14', { vocab_size: 49408, hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12, max_position_embeddings: 77, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 }],
  ['openai/clip-vit-base-patch32', { vocab_size: 49408, hidden_size: 512, intermediate_size: 2048, num_hidden_layers: 12, num_attention_heads: 8, max_position_embeddings: 77, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 }],
]);

/** Adds a CLIPTextConfig by version name (the `version` param of FrozenCLIPEmbedder). */
export function registerHFTextConfig(version: string, cfg: HFCLIPTextConfig): void {
  HF_TEXT_CONFIGS.set(version, cfg);
}

export function hfTextConfig(version: string): HFCLIPTextConfig {
  const cfg = HF_TEXT_CONFIGS.get(version);
  if (!cfg) throw new Error(`unknown CLIP text version '${version}'; known: ${[...HF_TEXT_CONFIGS.keys()].join(', ')} (add one with registerHFTextConfig)`);
  return cfg;
}

function param(shape: number[], draw: () => Float32Array): nn.Parameter {
  return new nn.Parameter(shape, 'float32', initStorage(shape, 'float32', draw));
}

/** Bool (L, L) mask, true where attention is allowed (j <= i). */
function causalAllowed(l: number): T.Tensor {
  const data = new Uint8Array(l * l);
  for (let i = 0; i < l; i++) for (let j = 0; j <= i; j++) data[i * l + j] = 1;
  return T.constant(data, [l, l], 'bool');
}

/** x[b, idx[b]] for x (B, L, W), idx int64 (B) -> (B, W). */
function takeRows(x: T.Tensor, idx: T.Tensor): T.Tensor {
  const [b, l, w] = x.shape as [number, number, number];
  const offs = new BigInt64Array(b);
  for (let i = 0; i < b; i++) offs[i] = BigInt(i * l);
  const flat = T.reshape(x, [b * l, w]);
  return T.gather(flat, 0, T.add(idx, T.constant(offs, [b], 'int64')));
}

/** argmax of the ids along the last axis: the first eot (49407 is the largest id). */
function eotIndex(ids: T.Tensor): T.Tensor {
  return T.argmax(T.cast(ids, 'float32'), -1);
}

// ---- open_clip text tower

function quickGelu(x: T.Tensor): T.Tensor {
  return T.mul(x, T.sigmoid(T.mul(x, 1.702)));
}

class OpenCLIPMLP extends nn.Module {
  c_fc: nn.Linear;
  c_proj: nn.Linear;
  constructor(width: number, hidden: number, readonly quick_gelu = false) {
    super();
    this.c_fc = new nn.Linear(width, hidden);
    this.c_proj = new nn.Linear(hidden, width);
  }
  forward(x: T.Tensor): T.Tensor {
    const h = this.c_fc.forward(x);
    return this.c_proj.forward(this.quick_gelu ? quickGelu(h) : T.gelu(h));
  }
}

/** open_clip ResidualAttentionBlock (pre-LN, nn.MultiheadAttention, exact GELU). */
export class ResidualAttentionBlock extends nn.Module {
  ln_1: nn.LayerNorm;
  attn: nn.MultiheadAttention;
  ln_2: nn.LayerNorm;
  mlp: OpenCLIPMLP;
  constructor(width: number, heads: number, mlpRatio = 4, quick_gelu = false) {
    super();
    this.ln_1 = new nn.LayerNorm(width);
    this.attn = new nn.MultiheadAttention(width, heads, { batch_first: true });
    this.ln_2 = new nn.LayerNorm(width);
    this.mlp = new OpenCLIPMLP(width, Math.round(width * mlpRatio), quick_gelu);
  }
  /** x (B, L, W); `mask` bool, true where masked (torch's convention). */
  forward(x: T.Tensor, mask: T.Tensor | null = null): T.Tensor {
    const h = this.ln_1.forward(x);
    x = T.add(x, this.attn.forward(h, h, h, { attnMask: mask }));
    return T.add(x, this.mlp.forward(this.ln_2.forward(x)));
  }
}

class OpenCLIPTransformer extends nn.Module {
  resblocks: nn.ModuleList<ResidualAttentionBlock>;
  constructor(width: number, layers: number, heads: number, mlpRatio: number, quick_gelu = false) {
    super();
    this.resblocks = new nn.ModuleList(Array.from({ length: layers }, () => new ResidualAttentionBlock(width, heads, mlpRatio, quick_gelu)));
  }
}

/** open_clip CLIP with `visual` deleted: the text tower under open_clip's names. */
export class OpenCLIPTextTower extends nn.Module {
  token_embedding: nn.Embedding;
  positional_embedding: nn.Parameter;
  transformer: OpenCLIPTransformer;
  ln_final: nn.LayerNorm;
  text_projection: nn.Parameter;
  logit_scale: nn.Parameter;
  constructor(readonly cfg: OpenCLIPTextConfig) {
    super();
    const { width, context_length: ctx, vocab_size: vocab, embed_dim: d } = cfg;
    this.token_embedding = new nn.Embedding(vocab, width);
    this.positional_embedding = param([ctx, width], normal([ctx, width], 0.01));
    this.transformer = new OpenCLIPTransformer(width, cfg.layers, cfg.heads, cfg.mlp_ratio ?? 4, cfg.quick_gelu ?? false);
    this.ln_final = new nn.LayerNorm(width);
    this.text_projection = param([width, d], normal([width, d], width ** -0.5));
    this.logit_scale = param([], constantInit([], Math.log(1 / 0.07)));
  }

  /** Token embedding + positions (B, L, W). */
  embed(ids: T.Tensor): T.Tensor {
    const l = ids.shape[1]!;
    const pos = l === this.cfg.context_length ? this.positional_embedding : T.slice(this.positional_embedding, 0, 0, l);
    return T.add(this.token_embedding.forward(ids), pos);
  }

  /** torch's causal mask convention: true = masked (j > i). */
  causalMask(l: number): T.Tensor {
    return T.logicalNot(causalAllowed(l));
  }

  /** Pooled: x[b, argmax(ids[b])] @ text_projection. */
  pool(x: T.Tensor, ids: T.Tensor): T.Tensor {
    return T.matmul(takeRows(x, eotIndex(ids)), this.text_projection);
  }
}

// ---- Hugging Face CLIPTextModel

class CLIPAttention extends nn.Module {
  k_proj: nn.Linear;
  v_proj: nn.Linear;
  q_proj: nn.Linear;
  out_proj: nn.Linear;
  constructor(readonly width: number, readonly heads: number) {
    super();
    this.k_proj = new nn.Linear(width, width);
    this.v_proj = new nn.Linear(width, width);
    this.q_proj = new nn.Linear(width, width);
    this.out_proj = new nn.Linear(width, width);
  }
  forward(x: T.Tensor, allowed: T.Tensor): T.Tensor {
    const [b, l] = x.shape as [number, number];
    const hd = this.width / this.heads;
    const split = (t: T.Tensor) => T.transpose(T.reshape(t, [b, l, this.heads, hd]), 1, 2);
    const o = T.scaledDotProductAttention(split(this.q_proj.forward(x)), split(this.k_proj.forward(x)), split(this.v_proj.forward(x)), { mask: allowed });
    return this.out_proj.forward(T.reshape(T.transpose(o, 1, 2), [b, l, this.width]));
  }
}

class CLIPMLP extends nn.Module {
  fc1: nn.Linear;
  fc2: nn.Linear;
  constructor(width: number, inter: number, readonly act: 'quick_gelu' | 'gelu') {
    super();
    this.fc1 = new nn.Linear(width, inter);
    this.fc2 = new nn.Linear(inter, width);
  }
  forward(x: T.Tensor): T.Tensor {
    const h = this.fc1.forward(x);
    const a = this.act === 'quick_gelu' ? quickGelu(h) : T.gelu(h);
    return this.fc2.forward(a);
  }
}

class CLIPEncoderLayer extends nn.Module {
  self_attn: CLIPAttention;
  layer_norm1: nn.LayerNorm;
  mlp: CLIPMLP;
  layer_norm2: nn.LayerNorm;
  constructor(cfg: HFCLIPTextConfig) {
    super();
    const eps = cfg.layer_norm_eps ?? 1e-5;
    this.self_attn = new CLIPAttention(cfg.hidden_size, cfg.num_attention_heads);
    this.layer_norm1 = new nn.LayerNorm(cfg.hidden_size, { eps });
    this.mlp = new CLIPMLP(cfg.hidden_size, cfg.intermediate_size, cfg.hidden_act ?? 'quick_gelu');
    this.layer_norm2 = new nn.LayerNorm(cfg.hidden_size, { eps });
  }
  forward(x: T.Tensor, allowed: T.Tensor): T.Tensor {
    x = T.add(x, this.self_attn.forward(this.layer_norm1.forward(x), allowed));
    return T.add(x, this.mlp.forward(this.layer_norm2.forward(x)));
  }
}

class CLIPTextEmbeddings extends nn.Module {
  token_embedding: nn.Embedding;
  position_embedding: nn.Embedding;
  position_ids: nn.Buffer;
  constructor(cfg: HFCLIPTextConfig) {
    super();
    this.token_embedding = new nn.Embedding(cfg.vocab_size, cfg.hidden_size);
    this.position_embedding = new nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size);
    const n = cfg.max_position_embeddings;
    const ids = new BigInt64Array(n);
    for (let i = 0; i < n; i++) ids[i] = BigInt(i);
    // Persistent in transformers 4.19-4.30 (so in SD/SDXL checkpoints); never read: arange is used.
    this.position_ids = new nn.Buffer([1, n], 'int64', { kind: 'host', dtype: 'int64', data: ids });
  }
  forward(ids: T.Tensor): T.Tensor {
    const l = ids.shape[1]!;
    return T.add(this.token_embedding.forward(ids), this.position_embedding.forward(T.arange(0, l, 1, 'int64')));
  }
}

class CLIPEncoder extends nn.Module {
  layers: nn.ModuleList<CLIPEncoderLayer>;
  constructor(cfg: HFCLIPTextConfig) {
    super();
    this.layers = new nn.ModuleList(Array.from({ length: cfg.num_hidden_layers }, () => new CLIPEncoderLayer(cfg)));
  }
}

export class CLIPTextTransformer extends nn.Module {
  embeddings: CLIPTextEmbeddings;
  encoder: CLIPEncoder;
  final_layer_norm: nn.LayerNorm;
  constructor(readonly cfg: HFCLIPTextConfig) {
    super();
    this.embeddings = new CLIPTextEmbeddings(cfg);
    this.encoder = new CLIPEncoder(cfg);
    this.final_layer_norm = new nn.LayerNorm(cfg.hidden_size, { eps: cfg.layer_norm_eps ?? 1e-5 });
  }
  /**
   * hidden_states (embeddings, layer 1..N outputs; up to `upTo` layers), last_hidden_state and
   * pooler_output (computed only when all layers run).
   */
  forward(ids: T.Tensor, upTo = this.cfg.num_hidden_layers): { hidden_states: T.Tensor[]; last_hidden_state: T.Tensor | null; pooler_output: T.Tensor | null } {
    const allowed = causalAllowed(ids.shape[1]!);
    let x = this.embeddings.forward(ids);
    const hidden_states = [x];
    const layers = this.encoder.layers.items;
    for (let i = 0; i < upTo; i++) {
      x = layers[i]!.forward(x, allowed);
      hidden_states.push(x);
    }
    if (upTo < this.cfg.num_hidden_layers) return { hidden_states, last_hidden_state: null, pooler_output: null };
    const last = this.final_layer_norm.forward(x);
    return { hidden_states, last_hidden_state: last, pooler_output: takeRows(last, eotIndex(ids)) };
  }
}

/** transformers' CLIPTextModel: only `text_model`. */
export class CLIPTextModel extends nn.Module {
  text_model: CLIPTextTransformer;
  constructor(cfg: HFCLIPTextConfig) {
    super();
    this.text_model = new CLIPTextTransformer(cfg);
  }
}

// ------------------------------------------------------------------------------- embedders

/** Output of an embedder: one tensor or several (each routed by its number of dims). */
export type EmbOutput = T.Tensor | T.Tensor[];

/** sgm's AbstractEmbModel: the attributes GeneralConditioner sets from the embedder config. */
export abstract class AbstractEmbModel extends nn.Module {
  is_trainable = false;
  ucg_rate = 0;
  input_key: string | null = null;
  input_keys: string[] | null = null;
  legacy_ucg_val: unknown = null;
  /** numpy RandomState for legacy_ucg_value (the reference's is unseeded). */
  ucg_prng: T.RandomState | null = null;

  abstract forward(...args: any[]): EmbOutput;
}

export class IdentityEncoder extends AbstractEmbModel {
  forward(x: T.Tensor): T.Tensor {
    return x;
  }
}

function asTensor(x: unknown, dtype: T.DType, where: string): T.Tensor {
  if (x instanceof T.Tensor) return x;
  if (typeof x === 'number') return T.tensor([x], [1], dtype);
  if (Array.isArray(x)) {
    if (x.length > 0 && Array.isArray(x[0])) {
      const rows = x as number[][];
      return T.tensor(rows.flat(), [rows.length, rows[0]!.length], dtype);
    }
    return T.tensor(x as number[], [x.length], dtype);
  }
  throw new Error(`${where}: expected a tensor or numbers, got ${typeof x}`);
}

export class ClassEmbedder extends AbstractEmbModel {
  static ARGS = { forward: ['c'], get_unconditional_conditioning: ['bs', 'device'] };
  embedding: nn.Embedding;
  /** The batch key of get_unconditional_conditioning (sgm never sets it; quirk 13). */
  key: string | undefined = undefined;
  constructor(readonly embed_dim: number, readonly n_classes = 1000, readonly add_sequence_dim = false) {
    super();
    this.embedding = new nn.Embedding(n_classes, embed_dim);
  }
  forward(c: T.Tensor | number[]): T.Tensor {
    let e = this.embedding.forward(asTensor(c, 'int64', 'ClassEmbedder'));
    if (this.add_sequence_dim) e = T.unsqueeze(e, 1);
    return e;
  }
  /** {key: (n_classes - 1) * ones(bs)} int64. Throws like the reference when `key` is unset. */
  get_unconditional_conditioning(bs: number, _device?: string): Record<string, T.Tensor> {
    if (this.key === undefined) throw new Error("ClassEmbedder.get_unconditional_conditioning: 'key' is not set (the reference raises AttributeError); set embedder.key first");
    return { [this.key]: T.full([bs], this.n_classes - 1, 'int64') };
  }
}

export class ConcatTimestepEmbedderND extends AbstractEmbModel {
  constructor(readonly outdim: number) {
    super();
  }
  forward(x: T.Tensor | number[] | number[][]): T.Tensor {
    let t = asTensor(x, 'float32', 'ConcatTimestepEmbedderND');
    if (t.ndim === 1) t = T.unsqueeze(t, 1);
    if (t.ndim !== 2) throw new T.ShapeError('ConcatTimestepEmbedderND', `input must be 1-d or 2-d, got ${T.fmtShape(t.shape)}`);
    const [b, d] = t.shape as [number, number];
    const emb = timestep_embedding(T.reshape(t, [b * d]), this.outdim);
    return T.reshape(emb, [b, d * this.outdim]);
  }
}

const CLIP_LAYERS = ['last', 'pooled', 'hidden'] as const;

export interface TextEmbedderOptions {
  /** Tokenizer for string prompts (else the process default of the embedder's kind). */
  tokenizer?: TextTokenizer | null;
}

/** HF CLIPTextModel embedder (CLIP ViT-L/14 of SD 1.x / SDXL): `transformer.text_model.*`. */
export class FrozenCLIPEmbedder extends AbstractEmbModel {
  static ARGS = { forward: ['text'] };
  transformer: CLIPTextModel;
  tokenizer: TextTokenizer | null;
  readonly return_pooled: boolean;
  constructor(
    readonly version = 'openai/clip-vit-large-patch14',
    readonly device = 'cuda',
    readonly max_length = 77,
    readonly freeze = true,
    readonly layer: 'last' | 'pooled' | 'hidden' = 'last',
    readonly layer_idx: number | null = null,
    always_return_pooled = false,
    opts: TextEmbedderOptions = {},
  ) {
    super();
    if (!CLIP_LAYERS.includes(layer)) throw new Error(`FrozenCLIPEmbedder: layer must be one of ${CLIP_LAYERS.join(', ')}, got '${layer}'`);
    const cfg = hfTextConfig(version);
    if (layer === 'hidden') {
      if (layer_idx === null || layer_idx === undefined) throw new Error("FrozenCLIPEmbedder: layer 'hidden' needs layer_idx");
      if (!(Math.abs(layer_idx) <= cfg.num_hidden_layers)) throw new Error(`FrozenCLIPEmbedder: layer_idx ${layer_idx} out of range for ${cfg.num_hidden_layers} layers`);
    }
    this.transformer = new CLIPTextModel(cfg);
    this.tokenizer = opts.tokenizer ?? null;
    this.return_pooled = always_return_pooled;
  }

  /** The token ids forward() embeds (HF CLIP tokenizer: padded with 49407). */
  tokenIds(text: TextInput): T.Tensor {
    return textToIds(text, 'hf_clip', this.tokenizer, this.max_length, 'FrozenCLIPEmbedder');
  }

  forward(text: TextInput): EmbOutput {
    const tm = this.transformer.text_model;
    const ids = this.tokenIds(text);
    const n = tm.cfg.num_hidden_layers;
    let upTo = n;
    if (this.layer === 'hidden' && !this.return_pooled) upTo = ((this.layer_idx! % (n + 1)) + n + 1) % (n + 1);
    const out = tm.forward(ids, upTo);
    let z: T.Tensor;
    if (this.layer === 'last') z = out.last_hidden_state!;
    else if (this.layer === 'pooled') z = T.unsqueeze(out.pooler_output!, 1);
    else {
      const i = this.layer_idx! < 0 ? n + 1 + this.layer_idx! : this.layer_idx!;
      z = out.hidden_states[i]!;
    }
    return this.return_pooled ? [z, out.pooler_output!] : z;
  }

  encode(text: TextInput): EmbOutput {
    return this.forward(text);
  }
}

const OC_LAYERS = ['last', 'penultimate'] as const;

/** Shared open_clip text-tower embedder state. */
abstract class OpenCLIPTextEmbedderBase extends AbstractEmbModel {
  static ARGS = { forward: ['text'] };
  model: OpenCLIPTextTower;
  tokenizer: TextTokenizer | null;
  readonly layer_idx: number;
  constructor(readonly arch: string, readonly version: string | null, readonly device: string, readonly max_length: number, readonly freeze: boolean, readonly layer: 'last' | 'penultimate', opts: TextEmbedderOptions) {
    super();
    if (!OC_LAYERS.includes(layer)) throw new Error(`${new.target.name}: layer must be 'last' or 'penultimate', got '${layer}'`);
    this.model = new OpenCLIPTextTower(openCLIPTextConfig(arch));
    this.tokenizer = opts.tokenizer ?? null;
    this.layer_idx = layer === 'last' ? 0 : 1;
  }
  /** The token ids forward() embeds (open_clip tokenizer: padded with 0). */
  tokenIds(text: TextInput): T.Tensor {
    return textToIds(text, 'open_clip', this.tokenizer, this.model.cfg.context_length, this.constructor.name);
  }
}

/** SD 2.x OpenCLIP ViT-H/14 embedder: stops layer_idx blocks early, then ln_final (quirk 3). */
export class FrozenOpenCLIPEmbedder extends OpenCLIPTextEmbedderBase {
  constructor(arch = 'ViT-H-14', version: string | null = 'laion2b_s32b_b79k', device = 'cuda', max_length = 77, freeze = true, layer: 'last' | 'penultimate' = 'last', opts: TextEmbedderOptions = {}) {
    super(arch, version, device, max_length, freeze, layer, opts);
  }
  forward(text: TextInput): T.Tensor {
    const ids = this.tokenIds(text);
    const m = this.model;
    let x = m.embed(ids);
    const mask = m.causalMask(ids.shape[1]!);
    const blocks = m.transformer.resblocks.items;
    for (let i = 0; i < blocks.length - this.layer_idx; i++) x = blocks[i]!.forward(x, mask);
    return m.ln_final.forward(x);
  }
  encode(text: TextInput): T.Tensor {
    return this.forward(text);
  }
}

/** SDXL OpenCLIP ViT-bigG/14 embedder (quirk 2): penultimate without ln_final + projected pooled. */
export class FrozenOpenCLIPEmbedder2 extends OpenCLIPTextEmbedderBase {
  readonly return_pooled: boolean;
  constructor(
    arch = 'ViT-H-14',
    version: string | null = 'laion2b_s32b_b79k',
    device = 'cuda',
    max_length = 77,
    freeze = true,
    layer: 'last' | 'penultimate' = 'last',
    always_return_pooled = false,
    readonly legacy = true,
    opts: TextEmbedderOptions = {},
  ) {
    super(arch, version, device, max_length, freeze, layer, opts);
    this.return_pooled = always_return_pooled;
    if (always_return_pooled && legacy) throw new Error('FrozenOpenCLIPEmbedder2: always_return_pooled needs legacy: false (the reference asserts not legacy)');
  }
  forward(text: TextInput): EmbOutput {
    const ids = this.tokenIds(text);
    const m = this.model;
    let x = m.embed(ids);
    const mask = m.causalMask(ids.shape[1]!);
    const blocks = m.transformer.resblocks.items;
    const outs: Record<string, T.Tensor> = {};
    // Legacy without pooling needs only the chosen layer; otherwise all blocks run.
    const stop = this.legacy && this.layer === 'penultimate' ? blocks.length - 1 : blocks.length;
    for (let i = 0; i < stop; i++) {
      if (i === blocks.length - 1) outs.penultimate = x;
      x = blocks[i]!.forward(x, mask);
    }
    if (stop === blocks.length) outs.last = x;
    else outs.penultimate = x;
    if (this.legacy) return m.ln_final.forward(outs[this.layer]!);
    const z = outs[this.layer]!;
    if (this.return_pooled) return [z, m.pool(m.ln_final.forward(outs.last!), ids)];
    return z;
  }
  encode(text: TextInput): EmbOutput {
    return this.forward(text);
  }
}

// ---- open_clip vision tower and the image / video embedders (SVD)

/** open_clip VisionTransformer (pool_type 'tok', no attentional pooler). */
export class OpenCLIPVisionTransformer extends nn.Module {
  conv1: nn.Conv2d;
  class_embedding: nn.Parameter;
  positional_embedding: nn.Parameter;
  ln_pre: nn.LayerNorm;
  transformer: OpenCLIPTransformer;
  ln_post: nn.LayerNorm;
  proj: nn.Parameter;
  output_tokens = false;
  constructor(readonly cfg: OpenCLIPVisionConfig) {
    super();
    const { width, patch_size: p, image_size: size, embed_dim: d } = cfg;
    if (size % p !== 0) throw new Error(`open_clip vision: image_size ${size} is not a multiple of patch_size ${p}`);
    if (width % cfg.head_width !== 0) throw new Error(`open_clip vision: width ${width} is not a multiple of head_width ${cfg.head_width}`);
    const grid = size / p;
    const scale = width ** -0.5;
    this.conv1 = new nn.Conv2d(3, width, p, { stride: p, bias: false });
    this.class_embedding = param([width], normal([width], scale));
    this.positional_embedding = param([grid * grid + 1, width], normal([grid * grid + 1, width], scale));
    this.ln_pre = new nn.LayerNorm(width);
    this.transformer = new OpenCLIPTransformer(width, cfg.layers, width / cfg.head_width, cfg.mlp_ratio, cfg.quick_gelu ?? false);
    this.ln_post = new nn.LayerNorm(width);
    this.proj = param([width, d], normal([width, d], scale));
  }
  /** Pooled (B, D) projection of the class token; with output_tokens also ln_post tokens (B, N, W). */
  forward(x: T.Tensor): T.Tensor | [T.Tensor, T.Tensor] {
    let h = this.conv1.forward(x);
    const [b, w] = h.shape as [number, number];
    h = T.transpose(T.reshape(h, [b, w, -1]), 1, 2);
    const cls = T.expand(T.reshape(this.class_embedding, [1, 1, w]), [b, 1, w]);
    h = T.add(T.concat([cls, h], 1), this.positional_embedding);
    h = this.ln_pre.forward(h);
    for (const blk of this.transformer.resblocks.items) h = blk.forward(h, null);
    h = this.ln_post.forward(h);
    const pooled = T.matmul(T.squeeze(T.slice(h, 1, 0, 1), 1), this.proj);
    if (this.output_tokens) return [pooled, T.slice(h, 1, 1)];
    return pooled;
  }
}

/** open_clip CLIP with `transformer` (the text blocks) deleted: visual + the other text parameters. */
export class OpenCLIPImageModel extends nn.Module {
  token_embedding: nn.Embedding;
  positional_embedding: nn.Parameter;
  ln_final: nn.LayerNorm;
  text_projection: nn.Parameter;
  logit_scale: nn.Parameter;
  visual: OpenCLIPVisionTransformer;
  constructor(text: OpenCLIPTextConfig, vision: OpenCLIPVisionConfig) {
    super();
    const { width, context_length: ctx, vocab_size: vocab, embed_dim: d } = text;
    this.token_embedding = new nn.Embedding(vocab, width);
    this.positional_embedding = param([ctx, width], normal([ctx, width], 0.01));
    this.ln_final = new nn.LayerNorm(width);
    this.text_projection = param([width, d], normal([width, d], width ** -0.5));
    this.logit_scale = param([], constantInit([], Math.log(1 / 0.07)));
    this.visual = new OpenCLIPVisionTransformer(vision);
  }
}

const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

/** SVD's image encoder: kornia resize to 224, (x + 1) / 2, CLIP normalisation, open_clip ViT. */
export class FrozenOpenCLIPImageEmbedder extends AbstractEmbModel {
  static ARGS = { forward: ['image', 'no_dropout'] };
  model: OpenCLIPImageModel;
  readonly max_crops: number;
  readonly pad_to_max_len: boolean;
  readonly repeat_to_max_len: boolean;
  /** The Bernoulli draws of the embedder's own ucg dropout (default torch's CPU bernoulli). */
  bernoulli: (keepProb: number, n: number) => Float32Array = (p, n) => torchBernoulli(T.defaultGenerator, p, n);
  constructor(
    readonly arch = 'ViT-H-14',
    readonly version: string | null = 'laion2b_s32b_b79k',
    readonly device = 'cuda',
    readonly max_length = 77,
    readonly freeze = true,
    readonly antialias = true,
    ucg_rate = 0.0,
    readonly unsqueeze_dim = false,
    repeat_to_max_len = false,
    num_image_crops = 0,
    readonly output_tokens = false,
  ) {
    super();
    this.model = new OpenCLIPImageModel(openCLIPTextConfig(arch), openCLIPVisionConfig(arch));
    this.max_crops = num_image_crops;
    this.pad_to_max_len = num_image_crops > 0;
    this.repeat_to_max_len = repeat_to_max_len && !this.pad_to_max_len;
    if (this.pad_to_max_len) throw new Error('FrozenOpenCLIPImageEmbedder: num_image_crops > 0 is not supported (no sgm config uses it)');
    this.ucg_rate = ucg_rate;
    this.model.visual.output_tokens = output_tokens;
  }

  preprocess(x: T.Tensor): T.Tensor {
    const size = this.model.visual.cfg.image_size;
    x = T.kresize(x, [224, 224], { interpolation: 'bicubic', alignCorners: true, antialias: this.antialias });
    if (size !== 224) throw new Error(`FrozenOpenCLIPImageEmbedder: the reference resizes to 224, the vision tower expects ${size}`);
    x = T.div(T.add(x, 1), 2);
    const mean = T.tensor(CLIP_MEAN, [1, 3, 1, 1]);
    const std = T.tensor(CLIP_STD, [1, 3, 1, 1]);
    return T.div(T.sub(x, mean), std);
  }

  encode_with_vision_transformer(img: T.Tensor): T.Tensor | [T.Tensor, T.Tensor] {
    if (img.ndim === 5) throw new Error('FrozenOpenCLIPImageEmbedder: 5-d input needs num_image_crops, which is not supported');
    return this.model.visual.forward(this.preprocess(img));
  }

  forward(image: T.Tensor, no_dropout = false): EmbOutput {
    const enc = this.encode_with_vision_transformer(image);
    let z: T.Tensor;
    let tokens: T.Tensor | null = null;
    if (Array.isArray(enc)) [z, tokens] = enc;
    else z = enc;
    if (this.ucg_rate > 0 && !no_dropout && !(this.max_crops > 0)) {
      const b = z.shape[0]!;
      z = T.mul(T.constant(this.bernoulli(1 - this.ucg_rate, b), [b, 1], 'float32'), z);
      if (tokens) tokens = T.mul(T.constant(this.bernoulli(1 - this.ucg_rate, b), [b, 1, 1], 'float32'), tokens);
    }
    if (this.unsqueeze_dim) z = T.unsqueeze(z, 1);
    if (this.output_tokens) {
      if (this.repeat_to_max_len) throw new Error('FrozenOpenCLIPImageEmbedder: output_tokens with repeat_to_max_len');
      return [tokens!, z];
    }
    if (this.repeat_to_max_len) {
      const z3 = z.ndim === 2 ? T.unsqueeze(z, 1) : z;
      if (z3.shape[1] !== 1) throw new T.ShapeError('FrozenOpenCLIPImageEmbedder', `repeat_to_max_len needs a length-1 sequence, got ${T.fmtShape(z3.shape)}`);
      return [T.expand(z3, [z3.shape[0]!, this.max_length, z3.shape[2]!]), z];
    }
    return z;
  }

  encode(image: T.Tensor): EmbOutput {
    return this.forward(image);
  }
}

/** (b t) d -> b t d -> (b s) t d: SVD's crossattn from the conditioning frame(s). */
export class FrozenOpenCLIPImagePredictionEmbedder extends AbstractEmbModel {
  static ARGS = { forward: ['vid'] };
  constructor(readonly open_clip: FrozenOpenCLIPImageEmbedder, readonly n_cond_frames: number, readonly n_copies: number) {
    super();
  }
  forward(vid: T.Tensor): T.Tensor {
    const out = this.open_clip.forward(vid);
    if (Array.isArray(out)) throw new Error('FrozenOpenCLIPImagePredictionEmbedder: the image embedder must return one tensor');
    const [bt, d] = out.shape as [number, number];
    if (out.ndim !== 2 || bt % this.n_cond_frames !== 0) throw new T.ShapeError('FrozenOpenCLIPImagePredictionEmbedder', `embedding ${T.fmtShape(out.shape)} is not (b * ${this.n_cond_frames}, d)`);
    const b = bt / this.n_cond_frames;
    const x = T.reshape(out, [b, 1, this.n_cond_frames, d]);
    return T.reshape(T.expand(x, [b, this.n_copies, this.n_cond_frames, d]), [b * this.n_copies, this.n_cond_frames, d]);
  }
}

/** The first-stage encoder VideoPredictionEmbedderWithEncoder calls (`encode` when is_ae). */
export interface VideoEncoderLike extends nn.Module {
  encode?(x: T.Tensor): unknown;
  forward?(x: T.Tensor): unknown;
}

/** Sigma sampler as in sigma_sampling.ts: a host draw, then sigmas from it. */
export interface SigmaSamplerLike {
  draw(n: number, generator?: T.Generator): Float32Array | BigInt64Array;
  fromRand(rand: Float32Array | BigInt64Array): T.Tensor;
}

/** SVD's concat conditioning: VAE latents of the conditioning frame(s), optionally noise-augmented. */
export class VideoPredictionEmbedderWithEncoder extends AbstractEmbModel {
  static ARGS = { forward: ['vid'] };
  /** Generator of the noise-augmentation draws (sigmas, then randn_like(vid)). */
  generator: T.Generator = T.defaultGenerator;
  constructor(
    readonly n_cond_frames: number,
    readonly n_copies: number,
    readonly encoder: VideoEncoderLike,
    readonly sigma_sampler: SigmaSamplerLike | null = null,
    readonly sigma_cond: ConcatTimestepEmbedderND | null = null,
    readonly is_ae = false,
    readonly scale_factor = 1.0,
    readonly disable_encoder_autocast = false,
    readonly en_and_decode_n_samples_a_time: number | null = null,
  ) {
    super();
  }

  private repeatRows(x: T.Tensor, t: number): T.Tensor {
    // 'b ... -> (b t) ...'
    const [b, ...rest] = x.shape;
    const e = T.expand(T.unsqueeze(x, 1), [b!, t, ...rest]);
    return T.reshape(e, [b! * t, ...rest]);
  }

  forward(vid: T.Tensor): EmbOutput {
    let sigmaCond: T.Tensor | null = null;
    if (this.sigma_sampler) {
      const b = Math.floor(vid.shape[0]! / this.n_cond_frames);
      let sigmas = this.sigma_sampler.fromRand(this.sigma_sampler.draw(b, this.generator));
      if (this.sigma_cond) sigmaCond = this.repeatRows(this.sigma_cond.forward(sigmas), this.n_copies);
      sigmas = this.repeatRows(sigmas, this.n_cond_frames);
      const noise = T.tensor(this.generator.randnData(vid.shape, 'float32'), vid.shape);
      vid = T.add(vid, T.mul(noise, T.reshape(sigmas, [sigmas.shape[0]!, ...vid.shape.slice(1).map(() => 1)])));
    }
    const n = vid.shape[0]!;
    const per = this.en_and_decode_n_samples_a_time ?? n;
    const parts: T.Tensor[] = [];
    for (let i = 0; i < n; i += per) {
      const chunk = T.slice(vid, 0, i, Math.min(i + per, n));
      const out = this.is_ae ? this.encoder.encode!(chunk) : this.encoder.forward!(chunk);
      if (!(out instanceof T.Tensor)) throw new Error('VideoPredictionEmbedderWithEncoder: the encoder must return a tensor');
      parts.push(out);
    }
    let z = parts.length === 1 ? parts[0]! : T.concat(parts, 0);
    if (this.scale_factor !== 1) z = T.mul(z, this.scale_factor);
    const [bt, c, h, w] = z.shape as [number, number, number, number];
    const t = this.n_cond_frames;
    if (bt % t !== 0) throw new T.ShapeError('VideoPredictionEmbedderWithEncoder', `batch ${bt} is not a multiple of n_cond_frames ${t}`);
    z = T.reshape(z, [bt / t, t * c, h, w]);
    z = this.repeatRows(z, this.n_copies);
    return sigmaCond ? [z, sigmaCond] : z;
  }
}

// ------------------------------------------------------------------------------ conditioner

export type Batch = Record<string, unknown>;

/** Where GeneralConditioner's random draws come from (inject recorded draws in tests). */
export interface UcgDrawSource {
  /**
   * torch.bernoulli((1 - rate) * ones(n)): n values 0/1 (a tensor of shape (n,) when a compiled
   * training step takes the mask as an input).
   */
  bernoulli(keepProb: number, n: number): Float32Array | T.Tensor;
  /** numpy RandomState.choice(2, p=[1 - rate, rate]) of one embedder, one sample. */
  choice?(embedder: AbstractEmbModel, rate: number): number;
}

/**
 * torch.bernoulli on a float32 probability tensor on CPU: per element in order, one 32-bit draw,
 * u = (r & (2^24 - 1)) * 2^-24, value = u < p (bit-exact with torch's default generator).
 */
export function torchBernoulli(gen: T.Generator, p: number, n: number): Float32Array {
  const pf = Math.fround(p);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (gen.random() & 0xffffff) * 2 ** -24 < pf ? 1 : 0;
  return out;
}

/** numpy's RandomState.choice(2, p=[1 - rate, rate]) (one random_sample, searchsorted right). */
export function numpyChoice2(rs: T.RandomState, rate: number): number {
  const a = 1 - rate;
  const cdf0 = a / (a + rate);
  return rs.randomDouble() >= cdf0 ? 1 : 0;
}

export const OUTPUT_DIM2KEYS: Readonly<Record<number, string>> = { 2: 'vector', 3: 'crossattn', 4: 'concat', 5: 'concat' };
export const KEY2CATDIM: Readonly<Record<string, number>> = { vector: 1, crossattn: 2, concat: 1 };

/** The per-embedder settings of an emb_models entry (besides target/params). */
export interface EmbedderSettings {
  is_trainable?: boolean;
  ucg_rate?: number;
  input_key?: string;
  input_keys?: string[];
  legacy_ucg_value?: unknown;
}

function seedFromEntropy(): number {
  return Math.floor(Math.random() * 2 ** 32) >>> 0;
}

export class GeneralConditioner extends nn.Module {
  static ARGS = { forward: ['batch', 'force_zero_embeddings'], get_unconditional_conditioning: ['batch_c', 'batch_uc', 'force_uc_zero_embeddings', 'force_cond_zero_embeddings'] };
  embedders: nn.ModuleList<AbstractEmbModel>;
  /** Source of the ucg dropout draws; default torch's CPU bernoulli on T.defaultGenerator. */
  draws: UcgDrawSource;

  constructor(embedders: Array<{ embedder: AbstractEmbModel; settings: EmbedderSettings }>, opts: { draws?: UcgDrawSource } = {}) {
    super();
    const list = embedders.map(({ embedder, settings }, n) => {
      embedder.is_trainable = settings.is_trainable ?? false;
      embedder.ucg_rate = settings.ucg_rate ?? 0;
      if (!embedder.is_trainable) {
        for (const p of embedder.parameters()) p.requiresGrad = false;
        embedder.eval();
      }
      if (settings.input_key !== undefined) embedder.input_key = settings.input_key;
      else if (settings.input_keys !== undefined) embedder.input_keys = [...settings.input_keys];
      else throw new Error(`need either 'input_key' or 'input_keys' for embedder ${embedder.constructor.name} (emb_models[${n}])`);
      embedder.legacy_ucg_val = settings.legacy_ucg_value ?? null;
      if (embedder.legacy_ucg_val !== null) embedder.ucg_prng = new T.RandomState(seedFromEntropy());
      return embedder;
    });
    this.embedders = new nn.ModuleList(list);
    this.draws = opts.draws ?? { bernoulli: (p, n) => torchBernoulli(T.defaultGenerator, p, n) };
  }

  /** Replaces batch[input_key][i] by legacy_ucg_value where the embedder's prng says so (mutates batch). */
  private possiblyGetUcgVal(embedder: AbstractEmbModel, batch: Batch): Batch {
    const key = embedder.input_key!;
    const p = embedder.ucg_rate;
    const val = embedder.legacy_ucg_val;
    const x = batch[key];
    const n = x instanceof T.Tensor ? x.shape[0]! : (x as unknown[]).length;
    const hit: boolean[] = [];
    for (let i = 0; i < n; i++) {
      const c = this.draws.choice ? this.draws.choice(embedder, p) : numpyChoice2(embedder.ucg_prng!, p);
      hit.push(c !== 0);
    }
    if (x instanceof T.Tensor) {
      if (typeof val !== 'number') throw new Error(`legacy_ucg_value for tensor input '${key}' must be a number`);
      if (hit.some((h) => h)) {
        const shape = [n, ...x.shape.slice(1).map(() => 1)];
        const mask = T.constant(Uint8Array.from(hit, (h) => (h ? 1 : 0)), shape, 'bool');
        batch[key] = T.where(mask, val, x);
      }
    } else {
      const arr = x as unknown[];
      hit.forEach((h, i) => {
        if (h) arr[i] = val;
      });
    }
    return batch;
  }

  forward(batch: Batch, force_zero_embeddings: string[] | null = null): Record<string, T.Tensor> {
    const output: Record<string, T.Tensor> = {};
    const zero = force_zero_embeddings ?? [];
    for (const embedder of this.embedders.items) {
      let embOut: EmbOutput;
      if (embedder.input_key !== null) {
        if (embedder.legacy_ucg_val !== null) batch = this.possiblyGetUcgVal(embedder, batch);
        if (!(embedder.input_key in batch)) throw new Error(`GeneralConditioner: batch has no key '${embedder.input_key}' (needed by ${embedder.constructor.name}); batch keys: ${Object.keys(batch).join(', ')}`);
        embOut = embedder.forward(batch[embedder.input_key]);
      } else if (embedder.input_keys !== null) {
        embOut = embedder.forward(...embedder.input_keys.map((k) => batch[k]));
      } else {
        throw new Error(`GeneralConditioner: ${embedder.constructor.name} has neither input_key nor input_keys`);
      }
      const outs = Array.isArray(embOut) ? embOut : [embOut];
      for (let emb of outs) {
        const outKey = OUTPUT_DIM2KEYS[emb.ndim];
        if (!outKey) throw new T.ShapeError('GeneralConditioner', `${embedder.constructor.name} returned a ${emb.ndim}-d output ${T.fmtShape(emb.shape)}; outputs must have 2 to 5 dims`);
        if (embedder.ucg_rate > 0 && embedder.legacy_ucg_val === null) {
          const b = emb.shape[0]!;
          const mask = this.draws.bernoulli(1 - embedder.ucg_rate, b);
          const shape = [b, ...emb.shape.slice(1).map(() => 1)];
          emb = T.mul(mask instanceof T.Tensor ? T.reshape(mask, shape) : T.constant(mask, shape, 'float32'), emb);
        }
        if (embedder.input_key !== null && zero.includes(embedder.input_key)) emb = T.zerosLike(emb);
        const prev = output[outKey];
        output[outKey] = prev ? T.concat([prev, emb], KEY2CATDIM[outKey]!) : emb;
      }
    }
    return output;
  }

  get_unconditional_conditioning(
    batch_c: Batch,
    batch_uc: Batch | null = null,
    force_uc_zero_embeddings: string[] | null = null,
    force_cond_zero_embeddings: string[] | null = null,
  ): [Record<string, T.Tensor>, Record<string, T.Tensor>] {
    const rates = this.embedders.items.map((e) => e.ucg_rate);
    for (const e of this.embedders.items) e.ucg_rate = 0;
    try {
      const c = this.forward(batch_c, force_cond_zero_embeddings);
      const uc = this.forward(batch_uc ?? batch_c, force_uc_zero_embeddings ?? []);
      return [c, uc];
    } finally {
      this.embedders.items.forEach((e, i) => (e.ucg_rate = rates[i]!));
    }
  }

  /** camelCase alias. */
  getUnconditionalConditioning(batch_c: Batch, batch_uc?: Batch | null, force_uc_zero_embeddings?: string[] | null, force_cond_zero_embeddings?: string[] | null) {
    return this.get_unconditional_conditioning(batch_c, batch_uc ?? null, force_uc_zero_embeddings ?? null, force_cond_zero_embeddings ?? null);
  }
}
