// sgm/modules/autoencoding/temporal_ae.py: the temporal decoder of Stable Video Diffusion.
// VideoDecoder is model.Decoder whose ResnetBlocks are VideoResBlocks (a 3-D ResBlock `time_stack`
// over the frames, mixed in by a learned factor) and whose conv_out is AE3DConv (Conv2d, then a
// Conv3d over the frames). Frames are batch rows `(b t)`, frame-major within each video; every
// temporal layer needs `timesteps` = T, the number of frames per video.
//
// VideoBlock / MemoryEfficientVideoBlock are AttnBlock / MemoryEfficientAttnBlock plus a
// single-head VideoTransformerBlock over the frames. No config builds them (VideoDecoder's only
// buildable time_mode, conv-only, keeps plain AttnBlocks); they are targets of their own.
import * as T from '../../tensor/index.js';
import type { Tensor } from '../../tensor/index.js';
import * as nn from '../../nn/index.js';
import { constantInit, initStorage } from '../../nn/init.js';
import {
  AttnBlock,
  Decoder,
  MemoryEfficientAttnBlock,
  ResnetBlock,
  type ConvFactory,
  type DecoderKwargs,
  type DecoderParams,
  type ResblockFactory,
  type ResnetBlockParams,
} from '../diffusionmodules/model.js';
import { ResBlock } from '../diffusionmodules/openaimodel.js';
import { VideoTransformerBlock, frameIndexEmbedding } from '../video_attention.js';

export type TemporalMergeStrategy = 'learned' | 'fixed';

function mixFactor(cls: string, merge_strategy: string, alpha: number): nn.Parameter | nn.Buffer {
  const storage = initStorage([1], 'float32', constantInit([1], alpha));
  if (merge_strategy === 'fixed') return new nn.Buffer([1], 'float32', storage);
  if (merge_strategy === 'learned') return new nn.Parameter([1], 'float32', storage);
  throw new Error(`${cls}: unknown merge strategy ${JSON.stringify(merge_strategy)} (learned or fixed)`);
}

function alphaOf(merge_strategy: string, mix_factor: Tensor): Tensor {
  return merge_strategy === 'fixed' ? mix_factor : T.sigmoid(mix_factor);
}

function needTimesteps(cls: string, x: Tensor, timesteps: number | null | undefined): number {
  if (timesteps === undefined || timesteps === null) {
    throw new TypeError(`${cls}: timesteps (frames per video) is required: decode video latents with { timesteps: T }`);
  }
  if (!Number.isInteger(timesteps) || timesteps <= 0 || x.shape[0]! % timesteps !== 0) {
    throw new T.ShapeError(cls, `a batch of ${x.shape[0]} frames is not a whole number of videos of timesteps=${timesteps} frames`);
  }
  return timesteps;
}

/** (b t) c h w -> b c t h w */
function toVideo(x: Tensor, t: number): Tensor {
  const [bt, c, h, w] = x.shape as [number, number, number, number];
  return T.permute(T.reshape(x, [bt / t, t, c, h, w]), [0, 2, 1, 3, 4]);
}

/** b c t h w -> (b t) c h w */
function toFrames(x: Tensor): Tensor {
  const [b, c, t, h, w] = x.shape as [number, number, number, number, number];
  return T.reshape(T.permute(x, [0, 2, 1, 3, 4]), [b * t, c, h, w]);
}

export interface VideoResBlockParams extends ResnetBlockParams {
  out_channels: number;
  dropout: number;
  /** Kernel of time_stack's 3-D convs; null: [3, 1, 1]. Default 3. */
  video_kernel_size?: number | number[] | null;
  alpha?: number;
  merge_strategy?: TemporalMergeStrategy;
}

/**
 * ResnetBlock, then (unless skip_video) a 3-D ResBlock `time_stack` over the frames:
 * `a * temporal + (1 - a) * spatial` with a = sigmoid(mix_factor) (learned) or mix_factor (fixed);
 * the opposite convention of AlphaBlender.
 */
export class VideoResBlock extends ResnetBlock {
  static override readonly ARGS: Record<string, string[]> = { forward: ['x', 'temb', '**kwargs'] };
  time_stack: ResBlock;
  readonly merge_strategy: TemporalMergeStrategy;
  mix_factor: nn.Parameter | nn.Buffer;

  constructor(params: VideoResBlockParams) {
    super({ ...params, dropout: params.dropout ?? 0.0 });
    const video_kernel_size = params.video_kernel_size === null ? [3, 1, 1] : (params.video_kernel_size ?? 3);
    this.time_stack = new ResBlock({
      channels: this.out_channels,
      emb_channels: 0,
      dropout: params.dropout ?? 0.0,
      dims: 3,
      use_scale_shift_norm: false,
      use_conv: false,
      up: false,
      down: false,
      kernel_size: video_kernel_size,
      use_checkpoint: false,
      skip_t_emb: true,
    });
    this.merge_strategy = params.merge_strategy ?? 'learned';
    this.mix_factor = mixFactor('VideoResBlock', this.merge_strategy, params.alpha ?? 0.0);
  }

  get_alpha(_bs?: number): Tensor {
    return alphaOf(this.merge_strategy, this.mix_factor);
  }

  /** `kwargs`: `timesteps` (frames per video, required unless skip_video) and `skip_video`. */
  override forward(x: Tensor, temb: Tensor | null = null, kwargs: DecoderKwargs = {}): Tensor {
    const { timesteps, skip_video = false, ...rest } = kwargs;
    // The reference's forward has exactly these keyword arguments.
    if (Object.keys(rest).some((k) => rest[k] !== undefined)) {
      throw new TypeError(`VideoResBlock.forward() got unexpected keyword argument(s) ${Object.keys(rest).join(', ')}`);
    }
    let h = this.resnetForward(x, temb);
    if (skip_video) return h;
    const t = needTimesteps('VideoResBlock', h, timesteps);
    const x_mix = toVideo(h, t);
    const v = this.time_stack.forward(toVideo(h, t), temb);
    const alpha = this.get_alpha(x.shape[0]! / t);
    h = T.add(T.mul(alpha, v), T.mul(T.sub(1.0, alpha), x_mix));
    return toFrames(h);
  }
}

export interface AE3DConvParams {
  in_channels: number;
  out_channels: number;
  /** Kernel of the Conv3d over frames (padding k // 2). Default 3. */
  video_kernel_size?: number | number[];
  /** The Conv2d's arguments. */
  kernel_size: number | number[];
  stride?: number | number[];
  padding?: number | number[];
  dilation?: number | number[];
  groups?: number;
  bias?: boolean;
}

/** Conv2d, then (unless skip_video) the Conv3d `time_mix_conv` over the frames. */
export class AE3DConv extends nn.Conv2d {
  static readonly ARGS: Record<string, string[]> = { forward: ['input', '**kwargs'] };
  time_mix_conv: nn.Conv3d;

  constructor(params: AE3DConvParams) {
    super(params.in_channels, params.out_channels, params.kernel_size, {
      stride: params.stride,
      padding: params.padding,
      dilation: params.dilation,
      groups: params.groups,
      bias: params.bias,
    });
    const k = params.video_kernel_size ?? 3;
    const padding = Array.isArray(k) ? k.map((v) => Math.floor(v / 2)) : Math.floor(k / 2);
    this.time_mix_conv = new nn.Conv3d(params.out_channels, params.out_channels, k, { padding });
  }

  /** `kwargs`: `timesteps` (frames per video, required unless skip_video) and `skip_video`. */
  override forward(input: Tensor, kwargs: DecoderKwargs = {}): Tensor {
    const x = super.forward(input);
    if (kwargs.skip_video) return x;
    const t = needTimesteps('AE3DConv', x, kwargs.timesteps);
    return toFrames(this.time_mix_conv.forward(toVideo(x, t)));
  }
}

export type TimeMode = 'all' | 'conv-only' | 'attn-only';

export interface VideoDecoderParams extends DecoderParams {
  video_kernel_size?: number | number[];
  alpha?: number;
  merge_strategy?: TemporalMergeStrategy;
  time_mode?: TimeMode | string;
}

const TIME_MODES: readonly string[] = ['all', 'conv-only', 'attn-only'];

/**
 * model.Decoder with temporal layers (time_mode `conv-only`, the default and the only mode the
 * reference can build: the others go through a `partialclass` of the function make_time_attn,
 * which Python cannot subclass): every ResnetBlock is a VideoResBlock, conv_out is AE3DConv,
 * attention stays model.make_attn's (`_make_attn` is not overridden). forward / decode need `{ timesteps: T }`.
 */
export class VideoDecoder extends Decoder {
  static readonly available_time_modes: readonly string[] = TIME_MODES;
  static override readonly ARGS: Record<string, string[]> = { forward: ['z', '**kwargs'] };
  readonly video_kernel_size: number | number[];
  readonly alpha: number;
  readonly merge_strategy: TemporalMergeStrategy;
  readonly time_mode: string;

  constructor(params: VideoDecoderParams) {
    super(VideoDecoder.checked(params));
    this.video_kernel_size = params.video_kernel_size ?? 3;
    this.alpha = params.alpha ?? 0.0;
    this.merge_strategy = params.merge_strategy ?? 'learned';
    this.time_mode = params.time_mode ?? 'conv-only';
  }

  private static checked(params: VideoDecoderParams): VideoDecoderParams {
    const mode = params.time_mode ?? 'conv-only';
    if (!TIME_MODES.includes(mode)) throw new Error(`VideoDecoder: time_mode parameter has to be in ${JSON.stringify(TIME_MODES)}, got ${JSON.stringify(mode)}`);
    if (mode !== 'conv-only') {
      throw new Error(
        `VideoDecoder: time_mode '${mode}' cannot be built by the reference (its _make_attn makes a partialclass of the function ` +
          "make_time_attn, a TypeError in Python); use 'conv-only'",
      );
    }
    return params;
  }

  override get_last_layer(kwargs: { skip_time_mix?: boolean } = {}): nn.Parameter {
    const conv = this.conv_out as unknown as AE3DConv;
    return kwargs.skip_time_mix ? conv.weight : conv.time_mix_conv.weight;
  }

  protected override _make_conv(params: DecoderParams): ConvFactory {
    const video_kernel_size = (params as VideoDecoderParams).video_kernel_size ?? 3;
    return (in_channels, out_channels, opts) => new AE3DConv({ in_channels, out_channels, video_kernel_size, ...opts });
  }

  protected override _make_resblock(params: DecoderParams): ResblockFactory {
    const p = params as VideoDecoderParams;
    return (rp) =>
      new VideoResBlock({
        ...rp,
        out_channels: rp.out_channels ?? rp.in_channels,
        video_kernel_size: p.video_kernel_size ?? 3,
        alpha: p.alpha ?? 0.0,
        merge_strategy: p.merge_strategy ?? 'learned',
      });
  }

  /** `kwargs.timesteps` (frames per video) is required. */
  override forward(z: Tensor, kwargs: DecoderKwargs = {}): Tensor {
    if (!kwargs.skip_video) needTimesteps('VideoDecoder', z, kwargs.timesteps);
    return super.forward(z, kwargs);
  }
}

// ---------------------------------------------------------------- VideoBlock

export interface VideoBlockParams {
  in_channels: number;
  alpha?: number;
  merge_strategy?: TemporalMergeStrategy;
}

/** The parts VideoBlock and MemoryEfficientVideoBlock add to their attention block. */
interface VideoBlockParts {
  readonly in_channels: number;
  time_mix_block: VideoTransformerBlock;
  video_time_embed: nn.Sequential;
  readonly merge_strategy: TemporalMergeStrategy;
  mix_factor: nn.Parameter | nn.Buffer;
  attention(h_: Tensor): Tensor;
  proj_out: nn.Conv2d;
}

function timeMixBlock(in_channels: number, attn_mode: 'softmax' | 'softmax-xformers'): VideoTransformerBlock {
  // No context, one head of in_channels features, as the base class's attention.
  return new VideoTransformerBlock({ dim: in_channels, n_heads: 1, d_head: in_channels, checkpoint: false, ff_in: true, attn_mode });
}

function videoTimeEmbed(in_channels: number): nn.Sequential {
  const time_embed_dim = in_channels * 4;
  return new nn.Sequential(new nn.Linear(in_channels, time_embed_dim), new nn.SiLU(), new nn.Linear(time_embed_dim, in_channels));
}

/**
 * The attention without proj_out, to (b*t, h*w, c); `x_mix` = that + video_time_embed(frame index
 * embedding), through time_mix_block over the frames; `alpha * x + (1 - alpha) * x_mix`; back to
 * (b*t, c, h, w), proj_out, plus the input.
 */
function videoBlockForward(cls: string, self: VideoBlockParts, x: Tensor, timesteps: number | null | undefined): Tensor {
  const t = needTimesteps(cls, x, timesteps);
  const x_in = x;
  let h = self.attention(x);
  const [bt, c, hh, ww] = h.shape as [number, number, number, number];
  h = T.reshape(T.permute(h, [0, 2, 3, 1]), [bt, hh * ww, c]);
  const emb = T.unsqueeze(self.video_time_embed.forward(frameIndexEmbedding(bt, t, self.in_channels)), 1);
  const x_mix = self.time_mix_block.forward(T.add(h, emb), null, t);
  const alpha = alphaOf(self.merge_strategy, self.mix_factor);
  h = T.add(T.mul(alpha, h), T.mul(T.sub(1.0, alpha), x_mix));
  h = T.permute(T.reshape(h, [bt, hh, ww, c]), [0, 3, 1, 2]);
  return T.add(x_in, self.proj_out.forward(h));
}

function rejectOtherKwargs(cls: string, rest: Record<string, unknown>): void {
  const keys = Object.keys(rest).filter((k) => rest[k] !== undefined);
  if (keys.length > 0) throw new TypeError(`${cls}.forward() got unexpected keyword argument(s) ${keys.map((k) => `'${k}'`).join(', ')}`);
}

/**
 * temporal_ae.VideoBlock: AttnBlock whose output (before proj_out) is mixed with a single-head
 * VideoTransformerBlock (`softmax`, ff_in, no context) over the frames: `a * spatial + (1 - a) * temporal`,
 * a = sigmoid(mix_factor) (learned) or mix_factor (fixed). forward kwargs: `timesteps` (frames per video,
 * required unless skip_video) and `skip_video` (the plain AttnBlock).
 */
export class VideoBlock extends AttnBlock implements VideoBlockParts {
  static override readonly ARGS: Record<string, string[]> = { forward: ['x', '**kwargs'], attention: ['h_'] };
  time_mix_block: VideoTransformerBlock;
  video_time_embed: nn.Sequential;
  readonly merge_strategy: TemporalMergeStrategy;
  mix_factor: nn.Parameter | nn.Buffer;

  constructor(params: VideoBlockParams) {
    super({ in_channels: params.in_channels });
    this.time_mix_block = timeMixBlock(params.in_channels, 'softmax');
    this.video_time_embed = videoTimeEmbed(params.in_channels);
    this.merge_strategy = params.merge_strategy ?? 'learned';
    this.mix_factor = mixFactor('VideoBlock', this.merge_strategy, params.alpha ?? 0.0);
  }

  get_alpha(): Tensor {
    return alphaOf(this.merge_strategy, this.mix_factor);
  }

  override forward(x: Tensor, kwargs: DecoderKwargs = {}): Tensor {
    const { timesteps, skip_video = false, ...rest } = kwargs;
    rejectOtherKwargs('VideoBlock', rest);
    if (skip_video) return super.forward(x);
    return videoBlockForward('VideoBlock', this, x, timesteps);
  }
}

/**
 * temporal_ae.MemoryEfficientVideoBlock: VideoBlock on MemoryEfficientAttnBlock, its time block in
 * `softmax-xformers` mode (the same math and keys). forward kwargs: `timesteps` and `skip_time_block`
 * (the reference's name for skip_video here).
 */
export class MemoryEfficientVideoBlock extends MemoryEfficientAttnBlock implements VideoBlockParts {
  static override readonly ARGS: Record<string, string[]> = { forward: ['x', '**kwargs'], attention: ['h_'] };
  time_mix_block: VideoTransformerBlock;
  video_time_embed: nn.Sequential;
  readonly merge_strategy: TemporalMergeStrategy;
  mix_factor: nn.Parameter | nn.Buffer;

  constructor(params: VideoBlockParams) {
    super({ in_channels: params.in_channels });
    this.time_mix_block = timeMixBlock(params.in_channels, 'softmax-xformers');
    this.video_time_embed = videoTimeEmbed(params.in_channels);
    this.merge_strategy = params.merge_strategy ?? 'learned';
    this.mix_factor = mixFactor('MemoryEfficientVideoBlock', this.merge_strategy, params.alpha ?? 0.0);
  }

  get_alpha(): Tensor {
    return alphaOf(this.merge_strategy, this.mix_factor);
  }

  override forward(x: Tensor, kwargs: DecoderKwargs = {}): Tensor {
    const { timesteps, skip_time_block = false, ...rest } = kwargs;
    rejectOtherKwargs('MemoryEfficientVideoBlock', rest);
    if (skip_time_block) return super.forward(x);
    return videoBlockForward('MemoryEfficientVideoBlock', this, x, timesteps);
  }
}
