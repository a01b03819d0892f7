// sgm/modules/diffusionmodules/video_model.py: the VideoUNet of Stable Video Diffusion (SVD,
// SVD-XT) and its VideoResBlock. The layout is UNetModel's with every ResBlock a VideoResBlock (a
// 3-D ResBlock `time_stack` over the frames, mixed in by an AlphaBlender) and every
// SpatialTransformer a SpatialVideoTransformer. Attribute names are the reference's, so
// `stateDict()` keys equal the released checkpoints' `model.diffusion_model.*` keys without the
// prefix. Frames are batch rows `(b t)`, video-major; forward needs `num_video_frames` = T and,
// with `merge_strategy: learned_with_images`, `image_only_indicator` (b, t).
import * as T from '../../tensor/index.js';
import * as nn from '../../nn/index.js';
import { SpatialVideoTransformer, checkFrames, checkIndicator } from '../video_attention.js';
import type { SpatialContext } from '../attention.js';
import {
  Downsample,
  ResBlock,
  TimestepEmbedSequential,
  UNET_COMMON_PARAM_NAMES,
  Upsample,
  buildUNetBlocks,
  checkUNetInputs,
  headSplitter,
  labelEmbedding,
  runUNetBlocks,
  unetEmbedding,
  type EmbedArgs,
  type TraceHook,
  type UNetCommonParams,
} from './openaimodel.js';
import { AlphaBlender, linear, type MergeStrategy } from './util.js';

type Maybe<X> = X | null | undefined;

/** (b t) c h w -> b c t h w */
function toVideo(x: T.Tensor, t: number): T.Tensor {
  const [bt, ...rest] = x.shape as [number, number, ...number[]];
  const c = rest[0]!;
  const space = rest.slice(1);
  const perm = [0, 2, 1, ...space.map((_, i) => 3 + i)];
  return T.permute(T.reshape(x, [bt / t, t, c, ...space]), perm);
}

/** b c t h w -> (b t) c h w */
function toFrames(x: T.Tensor): T.Tensor {
  const [b, c, t, ...space] = x.shape as [number, number, number, ...number[]];
  const perm = [0, 2, 1, ...space.map((_, i) => 3 + i)];
  return T.reshape(T.permute(x, perm), [b * t, c, ...space]);
}

// ---------------------------------------------------------------- VideoResBlock

export interface VideoResBlockParams {
  channels: number;
  emb_channels: number;
  dropout: number;
  /** Kernel of time_stack's 3-D convs (padding k // 2). Default 3. */
  video_kernel_size?: number | number[];
  merge_strategy?: MergeStrategy;
  merge_factor?: number;
  out_channels?: number | null;
  use_conv?: boolean;
  use_scale_shift_norm?: boolean;
  dims?: number;
  /** Gradient checkpointing: accepted, no effect on values. */
  use_checkpoint?: boolean;
  up?: boolean;
  down?: boolean;
}

/**
 * ResBlock over each frame, then `time_stack` (a ResBlock with dims 3, kernel video_kernel_size,
 * the embedding rearranged `(b t) c -> b c t 1 1`) over (b, c, t, h, w), mixed by `time_mixer`
 * (AlphaBlender, pattern `b t -> b 1 t 1 1`): alpha * spatial + (1 - alpha) * temporal.
 */
export class VideoResBlock extends ResBlock {
  static override readonly ARGS: Record<string, string[]> = { forward: ['x', 'emb', 'num_video_frames', 'image_only_indicator'] };

  time_stack: ResBlock;
  time_mixer: AlphaBlender;

  constructor(params: VideoResBlockParams) {
    const {
      channels,
      emb_channels,
      dropout,
      video_kernel_size = 3,
      merge_strategy = 'fixed',
      merge_factor = 0.5,
      use_conv = false,
      use_scale_shift_norm = false,
      dims = 2,
      use_checkpoint = false,
      up = false,
      down = false,
    } = params;
    const out_channels = params.out_channels ?? null;
    super({ channels, emb_channels, dropout, out_channels, use_conv, use_scale_shift_norm, dims, use_checkpoint, up, down });
    const out = out_channels ?? channels;
    this.time_stack = new ResBlock({
      channels: out,
      emb_channels,
      dropout,
      dims: 3,
      out_channels: out,
      use_scale_shift_norm: false,
      use_conv: false,
      up: false,
      down: false,
      kernel_size: video_kernel_size,
      use_checkpoint,
      exchange_temb_dims: true,
    });
    this.time_mixer = new AlphaBlender({ alpha: merge_factor, merge_strategy, rearrange_pattern: 'b t -> b 1 t 1 1' });
  }

  /** x (b*t, c, h, w), emb (b*t, emb_channels), num_video_frames = t, image_only_indicator (b, t). */
  override forward(x: T.Tensor, emb?: Maybe<T.Tensor>, num_video_frames?: Maybe<number>, image_only_indicator?: Maybe<T.Tensor>): T.Tensor {
    const t = checkFrames('VideoResBlock', x.shape[0]!, num_video_frames);
    if (!emb) throw new Error('VideoResBlock: a timestep embedding `emb` is required');
    if (emb.shape[0] !== x.shape[0]) throw new T.ShapeError('VideoResBlock', `emb ${T.fmtShape(emb.shape)} needs one row per frame of x ${T.fmtShape(x.shape)}`);
    if (image_only_indicator && this.time_mixer.merge_strategy === 'learned_with_images') checkIndicator('VideoResBlock', image_only_indicator, x.shape[0]!, t);
    x = super.forward(x, emb);
    const x_mix = toVideo(x, t);
    const [bt, ...embRest] = emb.shape as [number, ...number[]];
    let v = this.time_stack.forward(toVideo(x, t), T.reshape(emb, [bt / t, t, ...embRest]));
    v = this.time_mixer.forward(x_mix, v, image_only_indicator);
    return toFrames(v);
  }

  /** TimestepEmbedSequential's call: `(x, emb, num_video_frames, image_only_indicator)`. */
  forwardEmbed(x: T.Tensor, args: EmbedArgs): T.Tensor {
    return this.forward(x, args.emb, args.num_video_frames, args.image_only_indicator);
  }
}

// ---------------------------------------------------------------- VideoUNet

export interface VideoUNetParams extends UNetCommonParams {
  num_res_blocks: number;
  transformer_depth_middle?: number | null;
  context_dim: number;
  /** Down/upsample the frame axis too (dims 3 only). */
  time_downup?: boolean;
  time_context_dim?: number | null;
  /** ff_in of the temporal blocks (built anyway, see SpatialVideoTransformer). */
  extra_ff_mix_layer?: boolean;
  use_spatial_context?: boolean;
  merge_strategy?: MergeStrategy;
  merge_factor?: number;
  video_kernel_size?: number | number[];
  disable_temporal_crossattention?: boolean;
  max_ddpm_temb_period?: number;
}

/** The constructor arguments of the reference's VideoUNet. */
export const VIDEO_UNET_PARAM_NAMES: readonly string[] = [
  ...UNET_COMMON_PARAM_NAMES,
  'transformer_depth_middle',
  'context_dim',
  'time_downup',
  'time_context_dim',
  'extra_ff_mix_layer',
  'use_spatial_context',
  'merge_strategy',
  'merge_factor',
  'spatial_transformer_attn_type',
  'video_kernel_size',
  'use_linear_in_transformer',
  'adm_in_channels',
  'disable_temporal_crossattention',
  'max_ddpm_temb_period',
];

/**
 * The video UNet. forward(x, timesteps, context, y, time_context, num_video_frames,
 * image_only_indicator): x (b*t, C, H, W), timesteps (b*t), context (b*t, L, context_dim), y
 * (b*t, adm_in_channels) (required if and only if num_classes is set), num_video_frames = t,
 * image_only_indicator (b, t) (nonzero: treat that frame as an image).
 */
export class VideoUNet extends nn.Module {
  static readonly ARGS: Record<string, string[]> = {
    forward: ['x', 'timesteps', 'context', 'y', 'time_context', 'num_video_frames', 'image_only_indicator'],
  };

  time_embed: nn.Sequential;
  label_emb: nn.Module | null = null;
  input_blocks: nn.ModuleList<TimestepEmbedSequential>;
  middle_block: TimestepEmbedSequential;
  output_blocks: nn.ModuleList<TimestepEmbedSequential>;
  out: nn.Sequential;

  readonly in_channels: number;
  readonly model_channels: number;
  readonly out_channels: number;
  readonly num_res_blocks: number;
  readonly attention_resolutions: number[];
  readonly dropout: number;
  readonly channel_mult: number[];
  readonly conv_resample: boolean;
  readonly num_classes: number | string | null;
  readonly use_checkpoint: boolean;
  readonly num_heads: number;
  readonly num_head_channels: number;
  readonly num_heads_upsample: number;
  readonly merge_strategy: MergeStrategy;
  /** Called with every block output during forward (for locating differences); null: off. */
  traceHook: TraceHook | null = null;

  constructor(params: VideoUNetParams) {
    super();
    for (const k of Object.keys(params)) {
      if (!VIDEO_UNET_PARAM_NAMES.includes(k)) throw new TypeError(`VideoUNet: unexpected parameter '${k}' (known: ${VIDEO_UNET_PARAM_NAMES.join(', ')})`);
    }
    const {
      in_channels,
      model_channels,
      out_channels,
      num_res_blocks,
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
      time_downup = false,
      time_context_dim = null,
      extra_ff_mix_layer = false,
      use_spatial_context = false,
      merge_strategy = 'fixed',
      merge_factor = 0.5,
      spatial_transformer_attn_type = 'softmax',
      video_kernel_size = 3,
      use_linear_in_transformer = false,
      adm_in_channels = null,
      disable_temporal_crossattention = false,
      max_ddpm_temb_period = 10000,
    } = params;
    const context_dim = params.context_dim ?? null;
    if (context_dim === null) throw new Error('VideoUNet: context_dim is required');
    if (typeof context_dim !== 'number') throw new Error(`VideoUNet: context_dim must be an int, got ${JSON.stringify(context_dim)}`);
    if (!Number.isInteger(num_res_blocks) || num_res_blocks < 0) throw new Error(`VideoUNet: num_res_blocks must be an int (one count for every level), got ${JSON.stringify(num_res_blocks)}`);
    const num_heads = params.num_heads ?? -1;
    let num_heads_upsample = params.num_heads_upsample ?? -1;
    if (num_heads_upsample === -1) num_heads_upsample = num_heads;
    if (num_heads === -1 && num_head_channels === -1) throw new Error('VideoUNet: either num_heads or num_head_channels has to be set');
    if (num_classes !== null && typeof num_classes !== 'number' && !['sequential', 'continuous', 'timestep'].includes(num_classes)) {
      throw new Error(`VideoUNet: num_classes must be an int, "sequential", "continuous" or "timestep", got ${JSON.stringify(num_classes)}`);
    }

    const levels = channel_mult.length;
    const transformer_depth =
      typeof params.transformer_depth === 'number' || params.transformer_depth === undefined
        ? new Array<number>(levels).fill(params.transformer_depth ?? 1)
        : [...params.transformer_depth];
    const depthAt = (level: number): number => {
      const d = transformer_depth[level];
      if (d === undefined) throw new Error(`VideoUNet: transformer_depth ${JSON.stringify(params.transformer_depth)} has no entry for level ${level}`);
      return d;
    };
    const transformer_depth_middle = params.transformer_depth_middle ?? transformer_depth[transformer_depth.length - 1];
    if (transformer_depth_middle === undefined) throw new Error('VideoUNet: transformer_depth is an empty list and transformer_depth_middle is not set');

    this.in_channels = in_channels;
    this.model_channels = model_channels;
    this.out_channels = out_channels;
    this.num_res_blocks = num_res_blocks;
    this.attention_resolutions = [...attention_resolutions];
    this.dropout = dropout;
    this.channel_mult = [...channel_mult];
    this.conv_resample = conv_resample;
    this.num_classes = num_classes;
    this.use_checkpoint = use_checkpoint;
    this.num_heads = num_heads;
    this.num_head_channels = num_head_channels;
    this.num_heads_upsample = num_heads_upsample;
    this.merge_strategy = merge_strategy;

    const ted = model_channels * 4;
    this.time_embed = new nn.Sequential(linear(model_channels, ted), new nn.SiLU(), linear(ted, ted));
    this.label_emb = labelEmbedding('VideoUNet', num_classes, model_channels, ted, adm_in_channels);

    const resblock = (ch: number, out: number | null, extra: { up?: boolean; down?: boolean } = {}): VideoResBlock =>
      new VideoResBlock({
        merge_factor,
        merge_strategy,
        video_kernel_size,
        channels: ch,
        emb_channels: ted,
        dropout,
        out_channels: out,
        dims,
        use_checkpoint,
        use_scale_shift_norm,
        ...extra,
      });
    const heads = headSplitter(num_heads, num_head_channels);
    const attention = (ch: number, depth: number): SpatialVideoTransformer => {
      const [n_heads, d_head] = heads(ch);
      return new SpatialVideoTransformer({
        in_channels: ch,
        n_heads,
        d_head,
        depth,
        context_dim,
        time_context_dim,
        dropout,
        ff_in: extra_ff_mix_layer,
        use_spatial_context,
        merge_strategy,
        merge_factor,
        checkpoint: use_checkpoint,
        use_linear: use_linear_in_transformer,
        attn_mode: spatial_transformer_attn_type,
        disable_self_attn: false,
        disable_temporal_crossattention,
        max_time_embed_period: max_ddpm_temb_period,
      });
    };

    const blocks = buildUNetBlocks({
      in_channels,
      model_channels,
      out_channels,
      channel_mult,
      num_res_blocks: new Array<number>(channel_mult.length).fill(num_res_blocks),
      attention_resolutions,
      dims,
      resblock,
      attention: (ch, level) => attention(ch, depthAt(level)),
      downsample: (ch) =>
        resblock_updown ? resblock(ch, ch, { down: true }) : new Downsample({ channels: ch, use_conv: conv_resample, dims, out_channels: ch, third_down: time_downup }),
      upsample: (ch) =>
        resblock_updown ? resblock(ch, ch, { up: true }) : new Upsample({ channels: ch, use_conv: conv_resample, dims, out_channels: ch, third_up: time_downup }),
      // The middle block's heads follow the last level's width (num_heads as last set by heads).
      middle: (ch) => new TimestepEmbedSequential(resblock(ch, null), attention(ch, transformer_depth_middle), resblock(ch, null)),
    });
    this.input_blocks = blocks.input_blocks;
    this.middle_block = blocks.middle_block;
    this.output_blocks = blocks.output_blocks;
    this.out = blocks.out;
  }

  forward(
    x: T.Tensor,
    timesteps?: Maybe<T.Tensor>,
    context?: SpatialContext,
    y?: Maybe<T.Tensor>,
    time_context?: Maybe<T.Tensor>,
    num_video_frames?: Maybe<number>,
    image_only_indicator?: Maybe<T.Tensor>,
  ): T.Tensor {
    checkUNetInputs('VideoUNet', this.num_classes, timesteps, y);
    const batch = x.shape[0]!;
    const t = checkFrames('VideoUNet', batch, num_video_frames);
    if (timesteps.ndim !== 1 || timesteps.shape[0] !== batch) {
      throw new T.ShapeError('VideoUNet', `timesteps ${T.fmtShape(timesteps.shape)} need one entry per frame row of x ${T.fmtShape(x.shape)}`);
    }
    // As in the reference, only merge_strategy learned_with_images reads the indicator.
    if (this.merge_strategy === 'learned_with_images') {
      if (!image_only_indicator) {
        throw new Error(`VideoUNet: merge_strategy learned_with_images needs image_only_indicator (${batch / t}, ${t}) (zeros: every frame is video)`);
      }
      checkIndicator('VideoUNet', image_only_indicator, batch, t);
    }

    const emb = unetEmbedding('VideoUNet', this, x, timesteps, y);
    const h = runUNetBlocks(this, x, (m, h) => m.forward(h, emb, context, image_only_indicator, time_context, t), this.traceHook);
    return this.out.forward(T.cast(h, x.dtype));
  }
}
