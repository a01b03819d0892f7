// The autoencoder building blocks of sgm (sgm/modules/diffusionmodules/model.py, "pytorch_diffusion +
// derived encoder decoder"): Normalize, Upsample, Downsample, ResnetBlock, AttnBlock /
// MemoryEfficientAttnBlock, LinAttnBlock, make_attn, Encoder, Decoder. Attribute names equal the
// reference's, so state-dict keys are the released checkpoints' (`encoder.down.1.block.0.nin_shortcut.weight`).
//
// Python keyword arguments passed through `**kwargs` (the Decoder hands `timesteps` to the blocks of
// temporal_ae.VideoDecoder) are a trailing options object here (`DecoderKwargs`); `ARGS` tables list
// the Python parameter names in order, `'**kwargs'` standing for that object.
import * as T from '../../tensor/index.js';
import type { Tensor } from '../../tensor/index.js';
import * as nn from '../../nn/index.js';

/** Keyword arguments the Decoder passes through to its blocks (`**kwargs` in the reference). */
export interface DecoderKwargs {
  /** Frames per video in the batch (temporal_ae.VideoDecoder). */
  timesteps?: number;
  skip_video?: boolean;
  [k: string]: unknown;
}

function definedKeys(kw: DecoderKwargs | undefined): string[] {
  return kw ? Object.keys(kw).filter((k) => kw[k] !== undefined) : [];
}

/** Python's TypeError for a keyword argument a forward does not take. */
export function rejectKwargs(cls: string, kw: DecoderKwargs | undefined): void {
  const keys = definedKeys(kw);
  if (keys.length > 0) {
    throw new TypeError(
      `${cls}.forward() got unexpected keyword argument(s) ${keys.map((k) => `'${k}'`).join(', ')} ` +
        `(only the blocks of temporal_ae.VideoDecoder take them; a plain Decoder is called without kwargs)`,
    );
  }
}

/** swish: x * sigmoid(x). */
export function nonlinearity(x: Tensor): Tensor {
  return T.mul(x, T.sigmoid(x));
}

/** GroupNorm(num_groups, in_channels, eps=1e-6, affine=True). */
export function Normalize(in_channels: number, num_groups = 32): nn.GroupNorm {
  return new nn.GroupNorm(num_groups, in_channels, { eps: 1e-6, affine: true });
}

/**
 * sinusoidal embedding of model.py ([sin | cos], denominator half-1): not the UNet's
 * util.timestep_embedding. No inference config uses it; kept for `Model`-style code.
 */
export function get_timestep_embedding(timesteps: Tensor, embedding_dim: number): Tensor {
  if (timesteps.ndim !== 1) throw new T.ShapeError('get_timestep_embedding', `timesteps must be 1-d, got ${T.fmtShape(timesteps.shape)}`);
  const half = Math.floor(embedding_dim / 2);
  const emb = Math.log(10000) / (half - 1);
  const freqs = T.exp(T.mul(T.arange(0, half, 1, 'float32'), -emb));
  const args = T.mul(T.unsqueeze(T.cast(timesteps, 'float32'), 1), T.unsqueeze(freqs, 0));
  let out = T.concat([T.sin(args), T.cos(args)], 1);
  if (embedding_dim % 2 === 1) out = T.pad(out, [0, 1, 0, 0]);
  return out;
}

/** Nearest x2, then (with_conv) a 3x3 conv. */
export class Upsample extends nn.Module {
  static readonly ARGS: Record<string, string[]> = { forward: ['x'] };
  readonly with_conv: boolean;
  conv: nn.Conv2d | undefined;

  constructor(params: { in_channels: number; with_conv: boolean }) {
    super();
    this.with_conv = params.with_conv;
    if (this.with_conv) this.conv = new nn.Conv2d(params.in_channels, params.in_channels, 3, { stride: 1, padding: 1 });
  }

  forward(x: Tensor): Tensor {
    let h = T.upsampleNearest(x, 2);
    if (this.conv) h = this.conv.forward(h);
    return h;
  }
}

/** Pad right/bottom by one, then a 3x3 stride-2 conv without padding (or a 2x2 average pool). */
export class Downsample extends nn.Module {
  static readonly ARGS: Record<string, string[]> = { forward: ['x'] };
  readonly with_conv: boolean;
  conv: nn.Conv2d | undefined;

  constructor(params: { in_channels: number; with_conv: boolean }) {
    super();
    this.with_conv = params.with_conv;
    // no asymmetric padding in torch conv: the pad is done in forward
    if (this.with_conv) this.conv = new nn.Conv2d(params.in_channels, params.in_channels, 3, { stride: 2, padding: 0 });
  }

  forward(x: Tensor): Tensor {
    if (this.conv) return this.conv.forward(T.pad(x, [0, 1, 0, 1]));
    return T.avgPool(x, 2, { stride: 2 });
  }
}

export interface ResnetBlockParams {
  in_channels: number;
  /** Default: in_channels. */
  out_channels?: number | null;
  conv_shortcut?: boolean;
  dropout: number;
  /** 0: no timestep embedding (`temb_proj` absent). Default 512. */
  temb_channels?: number;
}

/** GN, swish, 3x3 conv, (+ temb), GN, swish, dropout, 3x3 conv, plus the (1x1 or 3x3) shortcut. */
export class ResnetBlock extends nn.Module {
  static readonly ARGS: Record<string, string[]> = { forward: ['x', 'temb'] };
  readonly in_channels: number;
  readonly out_channels: number;
  readonly use_conv_shortcut: boolean;
  norm1: nn.GroupNorm;
  conv1: nn.Conv2d;
  temb_proj: nn.Linear | undefined;
  norm2: nn.GroupNorm;
  dropout: nn.Dropout;
  conv2: nn.Conv2d;
  conv_shortcut: nn.Conv2d | undefined;
  nin_shortcut: nn.Conv2d | undefined;

  constructor(params: ResnetBlockParams) {
    super();
    const in_channels = params.in_channels;
    const out_channels = params.out_channels ?? in_channels;
    const temb_channels = params.temb_channels ?? 512;
    if (params.dropout === undefined) throw new TypeError('ResnetBlock: missing required keyword argument dropout');
    this.in_channels = in_channels;
    this.out_channels = out_channels;
    this.use_conv_shortcut = params.conv_shortcut ?? false;
    this.norm1 = Normalize(in_channels);
    this.conv1 = new nn.Conv2d(in_channels, out_channels, 3, { stride: 1, padding: 1 });
    if (temb_channels > 0) this.temb_proj = new nn.Linear(temb_channels, out_channels);
    this.norm2 = Normalize(out_channels);
    this.dropout = new nn.Dropout(params.dropout);
    this.conv2 = new nn.Conv2d(out_channels, out_channels, 3, { stride: 1, padding: 1 });
    if (in_channels !== out_channels) {
      if (this.use_conv_shortcut) this.conv_shortcut = new nn.Conv2d(in_channels, out_channels, 3, { stride: 1, padding: 1 });
      else this.nin_shortcut = new nn.Conv2d(in_channels, out_channels, 1, { stride: 1, padding: 0 });
    }
  }

  /** `kwargs`: the reference's forward takes none (a Decoder passing some is a TypeError there too). */
  forward(x: Tensor, temb: Tensor | null = null, kwargs?: DecoderKwargs): Tensor {
    rejectKwargs(this.constructor.name, kwargs);
    return this.resnetForward(x, temb);
  }

  /** ResnetBlock.forward(x, temb) itself (what `super().forward(x, temb)` calls in subclasses). */
  protected resnetForward(x: Tensor, temb: Tensor | null): Tensor {
    let h = this.norm1.forward(x);
    h = nonlinearity(h);
    h = this.conv1.forward(h);
    if (temb !== null && temb !== undefined) {
      if (!this.temb_proj) throw new TypeError('ResnetBlock: temb given but the block was built with temb_channels 0 (no temb_proj)');
      const e = this.temb_proj.forward(nonlinearity(temb));
      h = T.add(h, T.reshape(e, [...e.shape, 1, 1]));
    }
    h = this.norm2.forward(h);
    h = nonlinearity(h);
    h = this.dropout.forward(h);
    h = this.conv2.forward(h);
    let skip = x;
    if (this.conv_shortcut) skip = this.conv_shortcut.forward(x);
    else if (this.nin_shortcut) skip = this.nin_shortcut.forward(x);
    return T.add(skip, h);
  }
}

/**
 * Single-head self-attention over the h*w positions with channels as features (scale 1/sqrt(C)),
 * 1x1 conv q/k/v/proj_out, residual. One fused attention node.
 */
export class AttnBlock extends nn.Module {
  static readonly ARGS: Record<string, string[]> = { forward: ['x', '**kwargs'], attention: ['h_'] };
  readonly in_channels: number;
  norm: nn.GroupNorm;
  q: nn.Conv2d;
  k: nn.Conv2d;
  v: nn.Conv2d;
  proj_out: nn.Conv2d;

  constructor(params: { in_channels: number }) {
    super();
    const c = params.in_channels;
    this.in_channels = c;
    this.norm = Normalize(c);
    this.q = new nn.Conv2d(c, c, 1, { stride: 1, padding: 0 });
    this.k = new nn.Conv2d(c, c, 1, { stride: 1, padding: 0 });
    this.v = new nn.Conv2d(c, c, 1, { stride: 1, padding: 0 });
    this.proj_out = new nn.Conv2d(c, c, 1, { stride: 1, padding: 0 });
  }

  /** norm, q/k/v, softmax(q k^T / sqrt(C)) v, back to (b, c, h, w); no proj_out, no residual. */
  attention(h_: Tensor): Tensor {
    const hn = this.norm.forward(h_);
    const q = this.q.forward(hn);
    const k = this.k.forward(hn);
    const v = this.v.forward(hn);
    const [b, c, h, w] = q.shape as [number, number, number, number];
    // b c h w -> b 1 (h w) c
    const tokens = (t: Tensor): Tensor => T.reshape(T.transpose(T.reshape(t, [b, c, h * w]), 1, 2), [b, 1, h * w, c]);
    const o = T.scaledDotProductAttention(tokens(q), tokens(k), tokens(v));
    // b 1 (h w) c -> b c h w
    return T.reshape(T.transpose(T.reshape(o, [b, h * w, c]), 1, 2), [b, c, h, w]);
  }

  /** `kwargs` are accepted and ignored, as in the reference. */
  forward(x: Tensor, _kwargs?: DecoderKwargs): Tensor {
    const h = this.proj_out.forward(this.attention(x));
    return T.add(x, h);
  }
}

/**
 * The xformers variant of AttnBlock (make_attn's `vanilla-xformers`): the same single-head
 * softmax attention, the same keys; here the same graph.
 */
export class MemoryEfficientAttnBlock extends AttnBlock {
  attention_op: unknown = null;
}

/** attention.LinearAttention(dim, heads, dim_head): softmax over keys' positions, no residual. */
export class LinearAttention extends nn.Module {
  static readonly ARGS: Record<string, string[]> = { forward: ['x'] };
  readonly heads: number;
  to_qkv: nn.Conv2d;
  to_out: nn.Conv2d;

  constructor(params: { dim: number; heads?: number; dim_head?: number }) {
    super();
    this.heads = params.heads ?? 4;
    const hidden = (params.dim_head ?? 32) * this.heads;
    this.to_qkv = new nn.Conv2d(params.dim, hidden * 3, 1, { bias: false });
    this.to_out = new nn.Conv2d(hidden, params.dim, 1);
  }

  forward(x: Tensor, _kwargs?: DecoderKwargs): Tensor {
    rejectKwargs(this.constructor.name, _kwargs);
    const [b, , h, w] = x.shape as [number, number, number, number];
    const qkv = this.to_qkv.forward(x);
    const hidden = qkv.shape[1]! / 3;
    const c = hidden / this.heads;
    // b (qkv heads c) h w -> qkv b heads c (h w)
    const r = T.permute(T.reshape(qkv, [b, 3, this.heads, c, h * w]), [1, 0, 2, 3, 4]);
    const [q, k, v] = T.split(r, 1, 0).map((t) => T.squeeze(t, 0)) as [Tensor, Tensor, Tensor];
    const ks = T.softmax(k, -1);
    const context = T.matmul(ks, T.transpose(v, -1, -2)); // bhdn,bhen->bhde
    const out = T.matmul(T.transpose(context, -1, -2), q); // bhde,bhdn->bhen
    return this.to_out.forward(T.reshape(out, [b, hidden, h, w]));
  }
}

/** "to match AttnBlock usage": LinearAttention(dim=C, heads=1, dim_head=C). */
export class LinAttnBlock extends LinearAttention {
  constructor(params: { in_channels: number }) {
    super({ dim: params.in_channels, heads: 1, dim_head: params.in_channels });
  }
}

export type AttnType = 'vanilla' | 'vanilla-xformers' | 'memory-efficient-cross-attn' | 'linear' | 'none';
const ATTN_TYPES: readonly string[] = ['vanilla', 'vanilla-xformers', 'memory-efficient-cross-attn', 'linear', 'none'];

/** A block make_attn returns: `attn(h, **kwargs)`. */
export type AttnLike = nn.Module & { forward(x: Tensor, kwargs?: DecoderKwargs): Tensor };

/**
 * make_attn as on torch >= 2: `vanilla` -> AttnBlock, `vanilla-xformers` -> MemoryEfficientAttnBlock,
 * `none` -> Identity, `linear` -> LinAttnBlock. `memory-efficient-cross-attn` also gives a
 * LinAttnBlock, as the reference does (its branch tests the builtin `type`, never true).
 */
export function make_attn(in_channels: number, attn_type: string = 'vanilla', attn_kwargs: Record<string, unknown> | null = null): AttnLike {
  if (!ATTN_TYPES.includes(attn_type)) throw new Error(`attn_type ${attn_type} unknown (one of ${ATTN_TYPES.join(', ')})`);
  if (attn_type === 'vanilla') {
    if (attn_kwargs !== null && attn_kwargs !== undefined) throw new Error('make_attn: vanilla attention takes no attn_kwargs');
    return new AttnBlock({ in_channels });
  }
  if (attn_type === 'vanilla-xformers') return new MemoryEfficientAttnBlock({ in_channels });
  if (attn_type === 'none') return new nn.Identity();
  return new LinAttnBlock({ in_channels });
}

/** The params Encoder and Decoder share (one `ddconfig` serves both). */
export interface CoderParams {
  ch: number;
  out_ch: number;
  ch_mult?: readonly number[];
  num_res_blocks: number;
  attn_resolutions: readonly number[];
  dropout?: number;
  resamp_with_conv?: boolean;
  in_channels: number;
  resolution: number;
  z_channels: number;
  double_z?: boolean;
  use_linear_attn?: boolean;
  attn_type?: AttnType | string;
}

export interface EncoderParams extends CoderParams {
  /** `**ignore_kwargs`: a shared ddconfig's decoder-only keys. */
  [k: string]: unknown;
}

export interface DecoderParams extends CoderParams {
  give_pre_end?: boolean;
  tanh_out?: boolean;
  /** `**ignorekwargs`: a shared ddconfig's encoder-only keys. */
  [k: string]: unknown;
}

function requireParams(cls: string, params: Record<string, unknown>, names: readonly string[]): void {
  const missing = names.filter((n) => params[n] === undefined || params[n] === null);
  if (missing.length > 0) throw new TypeError(`${cls}: missing required argument(s) ${missing.join(', ')}`);
}

/** One resolution level of the Encoder (`down.i`: an nn.Module with block, attn, downsample). */
export class DownLevel extends nn.Module {
  block = new nn.ModuleList<ResnetBlock>();
  attn = new nn.ModuleList<AttnLike>();
  downsample: Downsample | undefined;
}

/** One resolution level of the Decoder (`up.i`: block, attn, upsample). */
export class UpLevel extends nn.Module {
  block = new nn.ModuleList<ResnetBlock>();
  attn = new nn.ModuleList<AttnLike>();
  upsample: Upsample | undefined;
}

/** The middle of Encoder/Decoder (`mid`: block_1, attn_1, block_2). */
export class MidBlock extends nn.Module {
  constructor(
    public block_1: ResnetBlock,
    public attn_1: AttnLike,
    public block_2: ResnetBlock,
  ) {
    super();
  }
}

/** conv_in, down levels (ResnetBlocks, attention, Downsample), mid, GN + swish + conv_out. */
export class Encoder extends nn.Module {
  static readonly ARGS: Record<string, string[]> = { forward: ['x'] };
  readonly ch: number;
  readonly temb_ch = 0;
  readonly num_resolutions: number;
  readonly num_res_blocks: number;
  readonly resolution: number;
  readonly in_channels: number;
  readonly in_ch_mult: number[];
  conv_in: nn.Conv2d;
  down: nn.ModuleList<DownLevel>;
  mid: MidBlock;
  norm_out: nn.GroupNorm;
  conv_out: nn.Conv2d;

  constructor(params: EncoderParams) {
    super();
    requireParams('Encoder', params, ['ch', 'out_ch', 'num_res_blocks', 'attn_resolutions', 'in_channels', 'resolution', 'z_channels']);
    const ch = params.ch;
    const ch_mult = params.ch_mult ?? [1, 2, 4, 8];
    const dropout = params.dropout ?? 0.0;
    const resamp_with_conv = params.resamp_with_conv ?? true;
    const double_z = params.double_z ?? true;
    const attn_type = params.use_linear_attn ? 'linear' : (params.attn_type ?? 'vanilla');
    this.ch = ch;
    this.num_resolutions = ch_mult.length;
    this.num_res_blocks = params.num_res_blocks;
    this.resolution = params.resolution;
    this.in_channels = params.in_channels;

    this.conv_in = new nn.Conv2d(params.in_channels, ch, 3, { stride: 1, padding: 1 });
    let curr_res = params.resolution;
    const in_ch_mult = [1, ...ch_mult];
    this.in_ch_mult = in_ch_mult;
    this.down = new nn.ModuleList<DownLevel>();
    let block_in = ch;
    for (let i_level = 0; i_level < this.num_resolutions; i_level++) {
      const down = new DownLevel();
      block_in = ch * in_ch_mult[i_level]!;
      const block_out = ch * ch_mult[i_level]!;
      for (let i_block = 0; i_block < this.num_res_blocks; i_block++) {
        down.block.push(new ResnetBlock({ in_channels: block_in, out_channels: block_out, temb_channels: this.temb_ch, dropout }));
        block_in = block_out;
        if (params.attn_resolutions.includes(curr_res)) down.attn.push(make_attn(block_in, attn_type));
      }
      if (i_level !== this.num_resolutions - 1) {
        down.downsample = new Downsample({ in_channels: block_in, with_conv: resamp_with_conv });
        curr_res = Math.floor(curr_res / 2);
      }
      this.down.push(down);
    }

    this.mid = new MidBlock(
      new ResnetBlock({ in_channels: block_in, out_channels: block_in, temb_channels: this.temb_ch, dropout }),
      make_attn(block_in, attn_type),
      new ResnetBlock({ in_channels: block_in, out_channels: block_in, temb_channels: this.temb_ch, dropout }),
    );

    this.norm_out = Normalize(block_in);
    this.conv_out = new nn.Conv2d(block_in, double_z ? 2 * params.z_channels : params.z_channels, 3, { stride: 1, padding: 1 });
  }

  forward(x: Tensor): Tensor {
    const temb = null;
    let h = this.conv_in.forward(x);
    for (let i_level = 0; i_level < this.num_resolutions; i_level++) {
      const level = this.down.at(i_level);
      for (let i_block = 0; i_block < this.num_res_blocks; i_block++) {
        h = level.block.at(i_block).forward(h, temb);
        if (level.attn.length > 0) h = level.attn.at(i_block).forward(h);
      }
      if (i_level !== this.num_resolutions - 1) h = level.downsample!.forward(h);
    }
    h = this.mid.block_1.forward(h, temb);
    h = this.mid.attn_1.forward(h);
    h = this.mid.block_2.forward(h, temb);
    h = this.norm_out.forward(h);
    h = nonlinearity(h);
    return this.conv_out.forward(h);
  }
}

/** What Decoder._make_resblock returns: builds a ResnetBlock (or a subclass) from its params. */
export type ResblockFactory = (params: ResnetBlockParams) => ResnetBlock;
/** What Decoder._make_attn returns: make_attn or a replacement with its signature. */
export type AttnFactory = (in_channels: number, attn_type: string) => AttnLike;
/** A conv_out: `conv_out(h, **kwargs)`. */
export type ConvLike = nn.Module & { forward(x: Tensor, kwargs?: DecoderKwargs): Tensor; weight: nn.Parameter };
export type ConvFactory = (in_channels: number, out_channels: number, opts: { kernel_size: number; stride: number; padding: number }) => ConvLike;

/** torch.nn.Conv2d as the Decoder's conv_out: takes no kwargs (a TypeError in the reference). */
export class DecoderConv2d extends nn.Conv2d {
  override forward(x: Tensor, kwargs?: DecoderKwargs): Tensor {
    rejectKwargs('Conv2d', kwargs);
    return super.forward(x);
  }
}

/**
 * z -> conv_in -> mid -> up levels (ResnetBlocks, attention, Upsample) -> GN + swish + conv_out
 * (-> tanh). `_make_attn`, `_make_resblock` and `_make_conv` are the hooks subclasses override
 * (temporal_ae.VideoDecoder); they run inside this constructor, before a subclass's own fields
 * exist, so they receive the constructor params.
 */
export class Decoder extends nn.Module {
  static readonly ARGS: Record<string, string[]> = { forward: ['z', '**kwargs'] };
  readonly ch: number;
  readonly temb_ch = 0;
  readonly num_resolutions: number;
  readonly num_res_blocks: number;
  readonly resolution: number;
  readonly in_channels: number;
  readonly give_pre_end: boolean;
  readonly tanh_out: boolean;
  readonly z_shape: [number, number, number, number];
  last_z_shape: readonly number[] | undefined;
  conv_in: nn.Conv2d;
  mid: MidBlock;
  up: nn.ModuleList<UpLevel>;
  norm_out: nn.GroupNorm;
  conv_out: ConvLike;

  constructor(params: DecoderParams) {
    super();
    requireParams(new.target.name, params, ['ch', 'out_ch', 'num_res_blocks', 'attn_resolutions', 'in_channels', 'resolution', 'z_channels']);
    const ch = params.ch;
    const ch_mult = params.ch_mult ?? [1, 2, 4, 8];
    const dropout = params.dropout ?? 0.0;
    const resamp_with_conv = params.resamp_with_conv ?? true;
    const attn_type = params.use_linear_attn ? 'linear' : (params.attn_type ?? 'vanilla');
    this.ch = ch;
    this.num_resolutions = ch_mult.length;
    this.num_res_blocks = params.num_res_blocks;
    this.resolution = params.resolution;
    this.in_channels = params.in_channels;
    this.give_pre_end = params.give_pre_end ?? false;
    this.tanh_out = params.tanh_out ?? false;

    let block_in = ch * ch_mult[this.num_resolutions - 1]!;
    let curr_res = Math.floor(params.resolution / 2 ** (this.num_resolutions - 1));
    this.z_shape = [1, params.z_channels, curr_res, curr_res];

    const make_attn_cls = this._make_attn(params);
    const make_resblock_cls = this._make_resblock(params);
    const make_conv_cls = this._make_conv(params);

    this.conv_in = new nn.Conv2d(params.z_channels, block_in, 3, { stride: 1, padding: 1 });

    this.mid = new MidBlock(
      make_resblock_cls({ in_channels: block_in, out_channels: block_in, temb_channels: this.temb_ch, dropout }),
      make_attn_cls(block_in, attn_type),
      make_resblock_cls({ in_channels: block_in, out_channels: block_in, temb_channels: this.temb_ch, dropout }),
    );

    const levels: UpLevel[] = [];
    for (let i_level = this.num_resolutions - 1; i_level >= 0; i_level--) {
      const up = new UpLevel();
      const block_out = ch * ch_mult[i_level]!;
      for (let i_block = 0; i_block < this.num_res_blocks + 1; i_block++) {
        up.block.push(make_resblock_cls({ in_channels: block_in, out_channels: block_out, temb_channels: this.temb_ch, dropout }));
        block_in = block_out;
        if (params.attn_resolutions.includes(curr_res)) up.attn.push(make_attn_cls(block_in, attn_type));
      }
      if (i_level !== 0) {
        up.upsample = new Upsample({ in_channels: block_in, with_conv: resamp_with_conv });
        curr_res = curr_res * 2;
      }
      levels.unshift(up); // prepend to get consistent order
    }
    this.up = new nn.ModuleList(levels);

    this.norm_out = Normalize(block_in);
    this.conv_out = make_conv_cls(block_in, params.out_ch, { kernel_size: 3, stride: 1, padding: 1 });
  }

  protected _make_attn(_params: DecoderParams): AttnFactory {
    return (in_channels, attn_type) => make_attn(in_channels, attn_type);
  }

  protected _make_resblock(_params: DecoderParams): ResblockFactory {
    return (p) => new ResnetBlock(p);
  }

  protected _make_conv(_params: DecoderParams): ConvFactory {
    return (i, o, opts) => new DecoderConv2d(i, o, opts.kernel_size, { stride: opts.stride, padding: opts.padding });
  }

  get_last_layer(_kwargs?: Record<string, unknown>): nn.Parameter {
    return this.conv_out.weight;
  }

  forward(z: Tensor, kwargs: DecoderKwargs = {}): Tensor {
    this.last_z_shape = z.shape;
    const temb = null;
    let h = this.conv_in.forward(z);
    h = this.mid.block_1.forward(h, temb, kwargs);
    h = this.mid.attn_1.forward(h, kwargs);
    h = this.mid.block_2.forward(h, temb, kwargs);
    for (let i_level = this.num_resolutions - 1; i_level >= 0; i_level--) {
      const level = this.up.at(i_level);
      for (let i_block = 0; i_block < this.num_res_blocks + 1; i_block++) {
        h = level.block.at(i_block).forward(h, temb, kwargs);
        if (level.attn.length > 0) h = level.attn.at(i_block).forward(h, kwargs);
      }
      if (i_level !== 0) h = level.upsample!.forward(h);
    }
    if (this.give_pre_end) return h;
    h = this.norm_out.forward(h);
    h = nonlinearity(h);
    h = this.conv_out.forward(h, kwargs);
    if (this.tanh_out) h = T.tanh(h);
    return h;
  }
}
