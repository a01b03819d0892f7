// sgm/modules/diffusionmodules/openaimodel.py: the UNet of SD 1.x/2.x and SDXL. TimestepEmbedSequential,
// Upsample, Downsample, ResBlock and UNetModel with the reference's constructor options and
// attribute names, so `stateDict()` keys equal the released checkpoints' `model.diffusion_model.*`
// keys without the prefix. A forward builds one graph (trace it with `T.compile`).
import * as T from '../../tensor/index.js';
import * as nn from '../../nn/index.js';
import { SpatialTransformer, type AttnMode, type SpatialContext } from '../attention.js';
import { avg_pool_nd, conv_nd, linear, normalization, timestep_embedding } from './util.js';

type Maybe<X> = X | null | undefined;

/** Any module whose forward takes the timestep embedding as its second argument. */
export abstract class TimestepBlock extends nn.Module {
  abstract forward(x: T.Tensor, emb: Maybe<T.Tensor>): T.Tensor;
}

/** Everything TimestepEmbedSequential passes on to its layers. */
export interface EmbedArgs {
  emb: Maybe<T.Tensor>;
  context: SpatialContext;
  image_only_indicator: Maybe<T.Tensor>;
  time_context: Maybe<T.Tensor>;
  num_video_frames: Maybe<number>;
}

/**
 * A layer that wants all of TimestepEmbedSequential's arguments (the video layers: VideoResBlock
 * takes `(x, emb, num_video_frames, image_only_indicator)`, SpatialVideoTransformer
 * `(x, context, time_context, num_video_frames, image_only_indicator)`); it is checked first, as the
 * reference checks those classes before their bases.
 */
export interface TimestepEmbedLayer {
  forwardEmbed(x: T.Tensor, args: EmbedArgs): T.Tensor;
}

function isEmbedLayer(m: unknown): m is TimestepEmbedLayer {
  return typeof (m as Partial<TimestepEmbedLayer>).forwardEmbed === 'function';
}

/** nn.Sequential that passes the timestep embedding (and context) to the children that take them. */
export class TimestepEmbedSequential extends nn.ModuleList<nn.Module> {
  static readonly ARGS: Record<string, string[]> = {
    forward: ['x', 'emb', 'context', 'image_only_indicator', 'time_context', 'num_video_frames'],
  };

  constructor(...layers: nn.Module[]) {
    super(layers);
  }

  forward(
    x: T.Tensor,
    emb?: Maybe<T.Tensor>,
    context?: SpatialContext,
    image_only_indicator?: Maybe<T.Tensor>,
    time_context?: Maybe<T.Tensor>,
    num_video_frames?: Maybe<number>,
  ): T.Tensor {
    for (const layer of this.items) {
      if (isEmbedLayer(layer)) x = layer.forwardEmbed(x, { emb, context, image_only_indicator, time_context, num_video_frames });
      else if (layer instanceof TimestepBlock) x = layer.forward(x, emb);
      else if (layer instanceof SpatialTransformer) x = layer.forward(x, context);
      else x = (layer as nn.Module & { forward(x: T.Tensor): T.Tensor }).forward(x);
    }
    return x;
  }
}

// ---------------------------------------------------------------- resampling

export interface UpsampleParams {
  channels: number;
  use_conv: boolean;
  dims?: number;
  out_channels?: number | null;
  padding?: number;
  third_up?: boolean;
  kernel_size?: number;
  scale_factor?: number;
}

/** Nearest-neighbour upsampling (dims 3: only h and w unless third_up), then an optional conv. */
export class Upsample extends nn.Module {
  conv: nn.ConvNd | null = null;
  readonly channels: number;
  readonly out_channels: number;
  readonly use_conv: boolean;
  readonly dims: number;
  readonly third_up: boolean;
  readonly scale_factor: number;

  constructor(params: UpsampleParams) {
    super();
    const { channels, use_conv, dims = 2, padding = 1, third_up = false, kernel_size = 3, scale_factor = 2 } = params;
    this.channels = channels;
    this.out_channels = params.out_channels || channels;
    this.use_conv = use_conv;
    this.dims = dims;
    this.third_up = third_up;
    this.scale_factor = scale_factor;
    if (use_conv) this.conv = conv_nd(dims, channels, this.out_channels, kernel_size, { padding });
  }

  forward(x: T.Tensor): T.Tensor {
    if (x.shape[1] !== this.channels) throw new T.ShapeError('Upsample', `expected ${this.channels} channels, got ${T.fmtShape(x.shape)}`);
    const s = this.scale_factor;
    const factors = this.dims === 3 ? [this.third_up ? s : 1, s, s] : new Array<number>(x.ndim - 2).fill(s);
    x = T.upsampleNearest(x, factors);
    return this.conv ? this.conv.forward(x) : x;
  }
}

export interface DownsampleParams {
  channels: number;
  use_conv: boolean;
  dims?: number;
  out_channels?: number | null;
  padding?: number;
  third_down?: boolean;
}

/** 3x3 conv with stride 2 and padding 1 (dims 3: stride (1, 2, 2) unless third_down), or average pooling. */
export class Downsample extends nn.Module {
  op: nn.ConvNd | nn.AvgPool;
  readonly channels: number;
  readonly out_channels: number;
  readonly use_conv: boolean;
  readonly dims: number;

  constructor(params: DownsampleParams) {
    super();
    const { channels, use_conv, dims = 2, padding = 1, third_down = false } = params;
    this.channels = channels;
    this.out_channels = params.out_channels || channels;
    this.use_conv = use_conv;
    this.dims = dims;
    const stride = dims !== 3 ? 2 : third_down ? [2, 2, 2] : [1, 2, 2];
    if (use_conv) this.op = conv_nd(dims, channels, this.out_channels, 3, { stride, padding });
    else {
      if (this.channels !== this.out_channels) throw new Error(`Downsample without conv cannot change channels (${channels} -> ${this.out_channels})`);
      this.op = avg_pool_nd(dims, stride, stride);
    }
  }

  forward(x: T.Tensor): T.Tensor {
    if (x.shape[1] !== this.channels) throw new T.ShapeError('Downsample', `expected ${this.channels} channels, got ${T.fmtShape(x.shape)}`);
    return this.op.forward(x);
  }
}

// ---------------------------------------------------------------- ResBlock

export interface ResBlockParams {
  channels: number;
  emb_channels: number;
  dropout: number;
  out_channels?: number | null;
  use_conv?: boolean;
  use_scale_shift_norm?: boolean;
  dims?: number;
  /** Gradient checkpointing: accepted, no effect on values. */
  use_checkpoint?: boolean;
  up?: boolean;
  down?: boolean;
  kernel_size?: number | number[];
  exchange_temb_dims?: boolean;
  skip_t_emb?: boolean;
}

/**
 * `in_layers` (GroupNorm32, SiLU, conv; with up/down the resampling comes after SiLU, and to the
 * skip input too), plus `emb_layers(emb)` broadcast over space (or FiLM with
 * `use_scale_shift_norm`: `GN(h) * (1 + scale) + shift`), `out_layers` (GroupNorm32, SiLU, Dropout,
 * conv), plus the skip connection (identity, 1x1 conv, or a kxk conv with `use_conv`).
 */
export class ResBlock extends TimestepBlock {
  static readonly ARGS: Record<string, string[]> = { forward: ['x', 'emb'] };

  in_layers: nn.Sequential;
  h_upd: nn.Module & { forward(x: T.Tensor): T.Tensor };
  x_upd: nn.Module & { forward(x: T.Tensor): T.Tensor };
  emb_layers: nn.Sequential | null;
  out_layers: nn.Sequential;
  skip_connection: nn.Module & { forward(x: T.Tensor): T.Tensor };
  readonly channels: number;
  readonly emb_channels: number;
  readonly dropout: number;
  readonly out_channels: number;
  readonly use_conv: boolean;
  readonly use_scale_shift_norm: boolean;
  readonly exchange_temb_dims: boolean;
  readonly skip_t_emb: boolean;
  readonly updown: boolean;

  constructor(params: ResBlockParams) {
    super();
    const {
      channels,
      emb_channels,
      dropout,
      use_conv = false,
      use_scale_shift_norm = false,
      dims = 2,
      up = false,
      down = false,
      kernel_size = 3,
      exchange_temb_dims = false,
      skip_t_emb = false,
    } = params;
    const out = params.out_channels || channels;
    this.channels = channels;
    this.emb_channels = emb_channels;
    this.dropout = dropout;
    this.out_channels = out;
    this.use_conv = use_conv;
    this.use_scale_shift_norm = use_scale_shift_norm;
    const padding = Array.isArray(kernel_size) ? kernel_size.map((k) => Math.floor(k / 2)) : Math.floor(kernel_size / 2);

    this.in_layers = new nn.Sequential(normalization(channels), new nn.SiLU(), conv_nd(dims, channels, out, kernel_size, { padding }));
    this.updown = up || down;
    if (up) {
      this.h_upd = new Upsample({ channels, use_conv: false, dims });
      this.x_upd = new Upsample({ channels, use_conv: false, dims });
    } else if (down) {
      this.h_upd = new Downsample({ channels, use_conv: false, dims });
      this.x_upd = new Downsample({ channels, use_conv: false, dims });
    } else {
      this.h_upd = this.x_upd = new nn.Identity();
    }
    this.skip_t_emb = skip_t_emb;
    if (skip_t_emb) {
      if (use_scale_shift_norm) throw new Error('ResBlock: skip_t_emb cannot be combined with use_scale_shift_norm');
      this.emb_layers = null;
      this.exchange_temb_dims = false;
    } else {
      this.emb_layers = new nn.Sequential(new nn.SiLU(), linear(emb_channels, use_scale_shift_norm ? 2 * out : out));
      this.exchange_temb_dims = exchange_temb_dims;
    }
    this.out_layers = new nn.Sequential(normalization(out), new nn.SiLU(), new nn.Dropout(dropout), conv_nd(dims, out, out, kernel_size, { padding }));
    if (out === channels) this.skip_connection = new nn.Identity();
    else if (use_conv) this.skip_connection = conv_nd(dims, channels, out, kernel_size, { padding });
    else this.skip_connection = conv_nd(dims, channels, out, 1);
  }

  forward(x: T.Tensor, emb?: Maybe<T.Tensor>): T.Tensor {
    const [norm, act, conv] = this.in_layers.items as [nn.Module & { forward(x: T.Tensor): T.Tensor }, nn.SiLU, nn.ConvNd];
    let h: T.Tensor;
    if (this.updown) {
      h = this.h_upd.forward(act.forward(norm.forward(x)));
      x = this.x_upd.forward(x);
      h = conv.forward(h);
    } else {
      h = this.in_layers.forward(x);
    }
    let embOut: T.Tensor;
    if (this.emb_layers === null) embOut = T.zerosLike(h);
    else {
      if (!emb) throw new Error('ResBlock: a timestep embedding `emb` is required (the block was built without skip_t_emb)');
      embOut = T.cast(this.emb_layers.forward(emb), h.dtype);
    }
    while (embOut.ndim < h.ndim) embOut = T.unsqueeze(embOut, -1);
    if (this.use_scale_shift_norm) {
      const [outNorm, ...outRest] = this.out_layers.items;
      const [scale, shift] = T.chunk(embOut, 2, 1) as [T.Tensor, T.Tensor];
      h = T.add(T.mul(outNorm!.forward(h), T.add(1, scale)), shift);
      for (const m of outRest) h = m.forward(h);
    } else {
      if (this.exchange_temb_dims) embOut = T.transpose(embOut, 1, 2); // b t c ... -> b c t ...
      h = this.out_layers.forward(T.add(h, embOut));
    }
    return T.add(this.skip_connection.forward(x), h);
  }
}

/** label_emb for num_classes "timestep": the sinusoidal embedding of y. */
export class Timestep extends nn.Module {
  constructor(readonly dim: number) {
    super();
  }

  forward(t: T.Tensor): T.Tensor {
    return timestep_embedding(t, this.dim);
  }
}

// ---------------------------------------------------------------- UNetModel

/** The constructor params UNetModel and VideoUNet share. */
export interface UNetCommonParams {
  in_channels: number;
  model_channels: number;
  out_channels: number;
  /** Downsampling factors (1, 2, 4, ...) at which input/output blocks get a (video) transformer. */
  attention_resolutions: number[];
  dropout?: number;
  channel_mult?: number[];
  conv_resample?: boolean;
  dims?: number;
  /** An int (class labels, nn.Embedding), "sequential" (vector y, needs adm_in_channels), "continuous" or "timestep". */
  num_classes?: number | 'sequential' | 'continuous' | 'timestep' | null;
  /** Gradient checkpointing: accepted, no effect on values. */
  use_checkpoint?: boolean;
  num_heads?: number;
  num_head_channels?: number;
  num_heads_upsample?: number;
  use_scale_shift_norm?: boolean;
  resblock_updown?: boolean;
  /** Transformer blocks per transformer, per level (or one for all); the middle uses the last by default. */
  transformer_depth?: number | number[];
  use_linear_in_transformer?: boolean;
  /** softmax and softmax-xformers compute the same attention. */
  spatial_transformer_attn_type?: AttnMode;
  adm_in_channels?: number | null;
}

export interface UNetModelParams extends UNetCommonParams {
  /** Per level, or one count for every level. */
  num_res_blocks: number | number[];
  context_dim?: number | Array<number | null> | null;
  disable_self_attentions?: boolean[] | null;
  num_attention_blocks?: number[] | null;
  disable_middle_self_attn?: boolean;
  disable_middle_transformer?: boolean;
}

/** The constructor argument names UNetModel and VideoUNet share, in the reference's order. */
export const UNET_COMMON_PARAM_NAMES: readonly string[] = [
  'in_channels',
  'model_channels',
  'out_channels',
  'num_res_blocks',
  'attention_resolutions',
  'dropout',
  'channel_mult',
  'conv_resample',
  'dims',
  'num_classes',
  'use_checkpoint',
  'num_heads',
  'num_head_channels',
  'num_heads_upsample',
  'use_scale_shift_norm',
  'resblock_updown',
  'transformer_depth',
];

/** The constructor arguments of the reference's UNetModel (anything else is a TypeError there). */
export const UNET_PARAM_NAMES: readonly string[] = [
  ...UNET_COMMON_PARAM_NAMES,
  'context_dim',
  'disable_self_attentions',
  'num_attention_blocks',
  'disable_middle_self_attn',
  'disable_middle_transformer',
  'use_linear_in_transformer',
  'spatial_transformer_attn_type',
  'adm_in_channels',
];

/** Why a parameter of other UNet implementations is not one of sgm's. */
export const UNET_FOREIGN_PARAMS: Readonly<Record<string, string>> = {
  legacy: "sgm's UNetModel has no `legacy` parameter (the reference raises TypeError); it always behaves as ldm's legacy: False, so remove it",
  use_fp16: "sgm's UNetModel has no `use_fp16` parameter (the reference raises TypeError); the compute dtype is a runtime policy, so remove it",
  use_spatial_transformer: "sgm's UNetModel has no `use_spatial_transformer` parameter (it always uses SpatialTransformer); remove it",
  use_new_attention_order: "sgm's UNetModel has no `use_new_attention_order` parameter; remove it",
  image_size: "sgm's UNetModel has no `image_size` parameter; remove it",
};

/** The block outputs a UNetModel forward reports to `traceHook` (`input_blocks.N`, `middle_block`, `output_blocks.N`). */
export type TraceHook = (path: string, output: T.Tensor) => void;

// ---------------------------------------------------------------- shared by UNetModel and VideoUNet

/**
 * The attention heads of a block of width ch: num_heads fixed, or (num_head_channels set) as many
 * heads of num_head_channels as fit. As in the reference, the last count computed is remembered
 * as num_heads for the blocks after it.
 */
export function headSplitter(num_heads: number, num_head_channels: number): (ch: number) => [number, number] {
  return (ch) => {
    if (num_head_channels === -1) return [num_heads, Math.floor(ch / num_heads)];
    num_heads = Math.floor(ch / num_head_channels);
    return [num_heads, num_head_channels];
  };
}

/** The class / vector conditioning embedding of a UNet (null: num_classes null). */
export function labelEmbedding(who: string, num_classes: number | string | null, model_channels: number, ted: number, adm_in_channels: number | null): nn.Module | null {
  if (num_classes === null) return null;
  if (typeof num_classes === 'number') return new nn.Embedding(num_classes, ted);
  if (num_classes === 'continuous') return new nn.Linear(1, ted);
  if (num_classes === 'timestep') {
    return new nn.Sequential(new Timestep(model_channels), new nn.Sequential(linear(model_channels, ted), new nn.SiLU(), linear(ted, ted)));
  }
  if (adm_in_channels === null) throw new Error(`${who}: num_classes "sequential" needs adm_in_channels`);
  return new nn.Sequential(new nn.Sequential(linear(adm_in_channels, ted), new nn.SiLU(), linear(ted, ted)));
}

/** What a UNet's block lists are built from; the factories make the layers in the reference's order. */
export interface UNetLevels {
  in_channels: number;
  model_channels: number;
  out_channels: number;
  channel_mult: readonly number[];
  /** ResBlocks per level. */
  num_res_blocks: readonly number[];
  attention_resolutions: readonly number[];
  dims: number;
  /** A ResBlock from ch to out channels. */
  resblock(ch: number, out: number): nn.Module;
  /** The attention after the index-th ResBlock of a level, on a level with attention (null: none there). */
  attention(ch: number, level: number, index: number, side: 'input' | 'output'): nn.Module | null;
  /** The layer that halves the resolution after a level (the last level has none). */
  downsample(ch: number): nn.Module;
  /** The layer that doubles the resolution after a level on the way up (the first level has none). */
  upsample(ch: number): nn.Module;
  /** The middle block at width ch. */
  middle(ch: number): TimestepEmbedSequential;
}

/**
 * A UNet's input_blocks, middle_block, output_blocks and out, in the reference's construction
 * order and state-dict layout: per level num_res_blocks ResBlocks (each with its attention where
 * the downsampling factor is in attention_resolutions) and a downsample; the middle block; the
 * levels back up, each block taking the skip connection of its input block.
 */
export function buildUNetBlocks(s: UNetLevels): {
  input_blocks: nn.ModuleList<TimestepEmbedSequential>;
  middle_block: TimestepEmbedSequential;
  output_blocks: nn.ModuleList<TimestepEmbedSequential>;
  out: nn.Sequential;
} {
  const { model_channels, channel_mult, num_res_blocks, attention_resolutions, dims } = s;
  const levels = channel_mult.length;
  const input_blocks = new nn.ModuleList([new TimestepEmbedSequential(conv_nd(dims, s.in_channels, model_channels, 3, { padding: 1 }))]);
  const input_block_chans = [model_channels];
  let ch = model_channels;
  let ds = 1;
  channel_mult.forEach((mult, level) => {
    for (let nr = 0; nr < num_res_blocks[level]!; nr++) {
      const layers: nn.Module[] = [s.resblock(ch, mult * model_channels)];
      ch = mult * model_channels;
      if (attention_resolutions.includes(ds)) {
        const attn = s.attention(ch, level, nr, 'input');
        if (attn) layers.push(attn);
      }
      input_blocks.push(new TimestepEmbedSequential(...layers));
      input_block_chans.push(ch);
    }
    if (level !== levels - 1) {
      input_blocks.push(new TimestepEmbedSequential(s.downsample(ch)));
      input_block_chans.push(ch);
      ds *= 2;
    }
  });

  const middle_block = s.middle(ch);

  const output_blocks = new nn.ModuleList<TimestepEmbedSequential>([]);
  for (let level = levels - 1; level >= 0; level--) {
    const mult = channel_mult[level]!;
    for (let i = 0; i < num_res_blocks[level]! + 1; i++) {
      const ich = input_block_chans.pop()!;
      const layers: nn.Module[] = [s.resblock(ch + ich, model_channels * mult)];
      ch = model_channels * mult;
      if (attention_resolutions.includes(ds)) {
        const attn = s.attention(ch, level, i, 'output');
        if (attn) layers.push(attn);
      }
      if (level && i === num_res_blocks[level]) {
        layers.push(s.upsample(ch));
        ds = Math.floor(ds / 2);
      }
      output_blocks.push(new TimestepEmbedSequential(...layers));
    }
  }

  const out = new nn.Sequential(normalization(ch), new nn.SiLU(), conv_nd(dims, model_channels, s.out_channels, 3, { padding: 1 }));
  return { input_blocks, middle_block, output_blocks, out };
}

/** A UNet's check of its conditioning: y given if and only if num_classes is set; timesteps given. */
export function checkUNetInputs(who: string, num_classes: number | string | null, timesteps: T.Tensor | null | undefined, y: T.Tensor | null | undefined): asserts timesteps is T.Tensor {
  if ((y != null) !== (num_classes !== null)) {
    throw new Error(`${who}: must specify y if and only if the model is class-conditional (num_classes ${JSON.stringify(num_classes)}, y ${y ? 'given' : 'absent'})`);
  }
  if (!timesteps) throw new Error(`${who}: timesteps are required`);
}

/** A UNet's embedding: time_embed of the sinusoidal timestep embedding, plus label_emb(y) when class-conditional. */
export function unetEmbedding(
  who: string,
  net: { model_channels: number; num_classes: number | string | null; time_embed: nn.Sequential; label_emb: nn.Module | null },
  x: T.Tensor,
  timesteps: T.Tensor,
  y: T.Tensor | null | undefined,
): T.Tensor {
  const t_emb = timestep_embedding(timesteps, net.model_channels, 10000, false);
  let emb = net.time_embed.forward(t_emb);
  if (net.num_classes !== null) {
    if (y!.shape[0] !== x.shape[0]) throw new T.ShapeError(who, `y ${T.fmtShape(y!.shape)} and x ${T.fmtShape(x.shape)} differ in batch size`);
    emb = T.add(emb, (net.label_emb as nn.Module & { forward(t: T.Tensor): T.Tensor }).forward(y!));
  }
  return emb;
}

/**
 * A UNet's forward through its blocks: every input block's output kept as a skip connection, the
 * middle block, each output block on its input concatenated (channels) with the last skip left;
 * every block output reported to hook. `run` calls a block with the embedding and context.
 */
export function runUNetBlocks(
  net: { input_blocks: nn.ModuleList<TimestepEmbedSequential>; middle_block: TimestepEmbedSequential; output_blocks: nn.ModuleList<TimestepEmbedSequential> },
  x: T.Tensor,
  run: (block: TimestepEmbedSequential, h: T.Tensor) => T.Tensor,
  hook: TraceHook | null,
): T.Tensor {
  const hs: T.Tensor[] = [];
  let h = x;
  net.input_blocks.items.forEach((m, i) => {
    h = run(m, h);
    hs.push(h);
    hook?.(`input_blocks.${i}`, h);
  });
  h = run(net.middle_block, h);
  hook?.('middle_block', h);
  net.output_blocks.items.forEach((m, i) => {
    h = T.concat([h, hs.pop()!], 1);
    h = run(m, h);
    hook?.(`output_blocks.${i}`, h);
  });
  return h;
}

/**
 * The UNet with attention and timestep embedding. forward(x, timesteps, context, y): x (N, C, ...),
 * timesteps (N) int64 or float, context (N, L, context_dim) for cross-attention (or a list, one per
 * transformer block), y the class labels / vector conditioning, required if and only if
 * num_classes is set.
 */
export class UNetModel extends nn.Module {
  static readonly ARGS: Record<string, string[]> = { forward: ['x', 'timesteps', 'context', 'y'] };
  /** The reference's forward takes **kwargs and ignores the ones it does not know. */
  static readonly IGNORES_EXTRA_KWARGS = true;

  time_embed: nn.Sequential;
  label_emb: nn.Module | null = null;
  input_blocks: nn.ModuleList<TimestepEmbedSequential>;
  middle_block: TimestepEmbedSequential;
  output_blocks: nn.ModuleList<TimestepEmbedSequential>;
  out: nn.Sequential;

  readonly in_channels: number;
  readonly model_channels: number;
  readonly out_channels: number;
  readonly num_res_blocks: number[];
  readonly attention_resolutions: number[];
  readonly dropout: number;
  readonly channel_mult: number[];
  readonly conv_resample: boolean;
  readonly num_classes: number | string | null;
  readonly num_heads: number;
  readonly num_head_channels: number;
  readonly num_heads_upsample: number;
  readonly dims: number;
  /** Called with every block output during forward (for locating differences); null: off. */
  traceHook: TraceHook | null = null;

  constructor(params: UNetModelParams) {
    super();
    for (const k of Object.keys(params)) {
      if (!UNET_PARAM_NAMES.includes(k)) {
        throw new TypeError(`UNetModel: unexpected parameter '${k}'${UNET_FOREIGN_PARAMS[k] ? `: ${UNET_FOREIGN_PARAMS[k]}` : ` (known: ${UNET_PARAM_NAMES.join(', ')})`}`);
      }
    }
    const {
      in_channels,
      model_channels,
      out_channels,
      attention_resolutions,
      dropout = 0.0,
      channel_mult = [1, 2, 4, 8],
      conv_resample = true,
      dims = 2,
      num_classes = null,
      use_checkpoint = false,
      num_head_channels = -1,
      use_scale_shift_norm = false,
      resblock_updown = false,
      disable_self_attentions = null,
      num_attention_blocks = null,
      disable_middle_self_attn = false,
      disable_middle_transformer = false,
      use_linear_in_transformer = false,
      spatial_transformer_attn_type = 'softmax',
      adm_in_channels = null,
    } = params;
    const context_dim = params.context_dim ?? null;
    const num_heads = params.num_heads ?? -1;
    let num_heads_upsample = params.num_heads_upsample ?? -1;
    if (num_heads_upsample === -1) num_heads_upsample = num_heads;
    if (num_heads === -1 && num_head_channels === -1) throw new Error('UNetModel: either num_heads or num_head_channels has to be set');

    const levels = channel_mult.length;
    const transformer_depth = typeof params.transformer_depth === 'number' || params.transformer_depth === undefined
      ? new Array<number>(levels).fill(params.transformer_depth ?? 1)
      : [...params.transformer_depth];
    const transformer_depth_middle = transformer_depth[transformer_depth.length - 1]!;
    let numRes: number[];
    if (typeof params.num_res_blocks === 'number') numRes = new Array<number>(levels).fill(params.num_res_blocks);
    else {
      if (params.num_res_blocks.length !== levels) {
        throw new Error(
          'UNetModel: provide num_res_blocks either as an int (globally constant) or as a list/tuple (per-level) with the same length as channel_mult',
        );
      }
      numRes = [...params.num_res_blocks];
    }
    if (disable_self_attentions !== null && disable_self_attentions.length !== levels) {
      throw new Error(`UNetModel: disable_self_attentions needs one entry per level (${levels}), got ${disable_self_attentions.length}`);
    }
    if (num_attention_blocks !== null) {
      if (num_attention_blocks.length !== numRes.length) throw new Error(`UNetModel: num_attention_blocks needs one entry per level (${levels})`);
      if (!num_attention_blocks.every((n, i) => numRes[i]! >= n)) throw new Error('UNetModel: num_attention_blocks may not exceed num_res_blocks at any level');
    }
    if (num_classes !== null && typeof num_classes !== 'number' && !['sequential', 'continuous', 'timestep'].includes(num_classes)) {
      throw new Error(`UNetModel: num_classes must be an int, "sequential", "continuous" or "timestep", got ${JSON.stringify(num_classes)}`);
    }

    this.in_channels = in_channels;
    this.model_channels = model_channels;
    this.out_channels = out_channels;
    this.num_res_blocks = numRes;
    this.attention_resolutions = [...attention_resolutions];
    this.dropout = dropout;
    this.channel_mult = [...channel_mult];
    this.conv_resample = conv_resample;
    this.num_classes = num_classes;
    this.num_heads = num_heads;
    this.num_head_channels = num_head_channels;
    this.num_heads_upsample = num_heads_upsample;
    this.dims = dims;

    const ted = model_channels * 4;
    this.time_embed = new nn.Sequential(linear(model_channels, ted), new nn.SiLU(), linear(ted, ted));
    this.label_emb = labelEmbedding('UNetModel', num_classes, model_channels, ted, adm_in_channels);

    const resblock = (ch: number, out: number, extra: Partial<ResBlockParams> = {}): ResBlock =>
      new ResBlock({ channels: ch, emb_channels: ted, dropout, out_channels: out, dims, use_checkpoint, use_scale_shift_norm, ...extra });
    const heads = headSplitter(num_heads, num_head_channels);
    const transformer = (ch: number, depth: number, disabled_sa: boolean): SpatialTransformer => {
      const [n_heads, d_head] = heads(ch);
      return new SpatialTransformer({
        in_channels: ch,
        n_heads,
        d_head,
        depth,
        context_dim,
        disable_self_attn: disabled_sa,
        use_linear: use_linear_in_transformer,
        attn_type: spatial_transformer_attn_type,
        use_checkpoint,
      });
    };

    const blocks = buildUNetBlocks({
      in_channels,
      model_channels,
      out_channels,
      channel_mult,
      num_res_blocks: numRes,
      attention_resolutions,
      dims,
      resblock,
      attention: (ch, level, index, side) => {
        // As in the reference, only the input side asks for a context before disabling self-attention.
        const disabled_sa = (side === 'output' || context_dim !== null) && disable_self_attentions !== null ? disable_self_attentions[level]! : false;
        return num_attention_blocks === null || index < num_attention_blocks[level]! ? transformer(ch, transformer_depth[level]!, disabled_sa) : null;
      },
      downsample: (ch) => (resblock_updown ? resblock(ch, ch, { down: true }) : new Downsample({ channels: ch, use_conv: conv_resample, dims, out_channels: ch })),
      upsample: (ch) => (resblock_updown ? resblock(ch, ch, { up: true }) : new Upsample({ channels: ch, use_conv: conv_resample, dims, out_channels: ch })),
      middle: (ch) =>
        new TimestepEmbedSequential(
          resblock(ch, ch),
          disable_middle_transformer ? new nn.Identity() : transformer(ch, transformer_depth_middle, disable_middle_self_attn),
          resblock(ch, ch),
        ),
    });
    this.input_blocks = blocks.input_blocks;
    this.middle_block = blocks.middle_block;
    this.output_blocks = blocks.output_blocks;
    this.out = blocks.out;
  }

  forward(x: T.Tensor, timesteps?: Maybe<T.Tensor>, context?: SpatialContext, y?: Maybe<T.Tensor>): T.Tensor {
    checkUNetInputs('UNetModel', this.num_classes, timesteps, y);
    const emb = unetEmbedding('UNetModel', this, x, timesteps, y);
    const h = runUNetBlocks(this, x, (m, h) => m.forward(h, emb, context), this.traceHook);
    return this.out.forward(T.cast(h, x.dtype));
  }
}
