// sgm/modules/video_attention.py: the temporal attention of Stable Video Diffusion.
// VideoTransformerBlock attends over the frames of each video at every spatial position;
// SpatialVideoTransformer is a SpatialTransformer whose every spatial block is followed by a
// VideoTransformerBlock (`time_stack`), the two mixed by an AlphaBlender (`time_mixer`).
//
// Frames are batch rows `(b t)`, frame-major within each video (x is (videos * T, ...)); every
// temporal layer needs T (`timesteps` / `num_video_frames`). Attribute names are the reference's,
// so state-dict keys are too (`time_stack.0.ff_in.net.0.proj.weight`, `time_mixer.mix_factor`).
// Every attention is one `T.scaledDotProductAttention` node (CrossAttention /
// MemoryEfficientCrossAttention of attention.ts).
import * as T from '../tensor/index.js';
import * as nn from '../nn/index.js';
import { CrossAttention, FeedForward, MemoryEfficientCrossAttention, SpatialTransformer, type AttnMode, type SpatialContext } from './attention.js';
import { AlphaBlender, linear, timestep_embedding, type MergeStrategy } from './diffusionmodules/util.js';

type Maybe<X> = X | null | undefined;

// ---------------------------------------------------------------- frame bookkeeping

/**
 * Checks that `frames` (T) is a positive integer dividing the batch of `batch` frame rows and
 * returns it; the error says what to pass.
 */
export function checkFrames(cls: string, batch: number, frames: unknown, argName = 'num_video_frames'): number {
  if (frames === undefined || frames === null) {
    throw new TypeError(`${cls}: ${argName} (frames per video) is required: the batch holds (videos * frames) rows, video-major`);
  }
  if (typeof frames !== 'number' || !Number.isInteger(frames) || frames <= 0) {
    throw new TypeError(`${cls}: ${argName} must be a positive integer (frames per video), got ${String(frames)}`);
  }
  if (batch % frames !== 0) {
    throw new T.ShapeError(cls, `a batch of ${batch} frame rows is not a whole number of videos of ${argName}=${frames} frames`);
  }
  return frames;
}

/** Checks that `image_only_indicator` is (videos, frames) for `batch` rows of `frames` frames per video. */
export function checkIndicator(cls: string, indicator: T.Tensor, batch: number, frames: number): void {
  const videos = batch / frames;
  if (indicator.ndim !== 2 || indicator.shape[0] !== videos || indicator.shape[1] !== frames) {
    throw new T.ShapeError(
      cls,
      `image_only_indicator has shape ${T.fmtShape(indicator.shape)}, expected (videos, frames) = [${videos}, ${frames}] ` +
        `for a batch of ${batch} frame rows with ${frames} frames per video`,
    );
  }
}

/** einops `repeat(t, "b ... -> (b n) ...", n=n)`: every row repeated n times in place. */
function repeatRows(t: T.Tensor, n: number): T.Tensor {
  const [b, ...rest] = t.shape;
  return T.reshape(T.expand(T.reshape(t, [b!, 1, ...rest]), [b!, n, ...rest]), [b! * n, ...rest]);
}

/** The sinusoidal embedding of each row's frame index (0..T-1 per video): (videos * T, dim). */
export function frameIndexEmbedding(batch: number, frames: number, dim: number, max_period = 10000): T.Tensor {
  const idx = new Float32Array(batch);
  for (let i = 0; i < batch; i++) idx[i] = i % frames;
  return timestep_embedding(T.tensor(idx, [batch]), dim, max_period, false);
}

// ---------------------------------------------------------------- VideoTransformerBlock

export interface VideoTransformerBlockParams {
  dim: number;
  n_heads: number;
  d_head: number;
  dropout?: number;
  context_dim?: number | null;
  gated_ff?: boolean;
  /** Gradient checkpointing in the reference: accepted, no effect on values. */
  checkpoint?: boolean;
  /** Frames per video fixed at construction (null: given to forward). */
  timesteps?: number | null;
  ff_in?: boolean;
  /** Width of the attention / ff (n_heads * d_head); given, it also turns ff_in on. */
  inner_dim?: number | null;
  attn_mode?: AttnMode;
  disable_self_attn?: boolean;
  disable_temporal_crossattention?: boolean;
  switch_temporal_ca_to_sa?: boolean;
}

const ATTENTION_MODES: Readonly<Record<AttnMode, typeof CrossAttention>> = {
  softmax: CrossAttention,
  'softmax-xformers': MemoryEfficientCrossAttention,
};

/**
 * A transformer block over time: x (b*t, s, c) is regrouped to (b*s, t, c); then `ff_in` (with
 * residual when inner_dim == dim), `attn1` (self-attention over the t frames, or cross-attention
 * with `disable_self_attn`), `attn2` (cross-attention to context, self-attention without context or
 * with `switch_temporal_ca_to_sa`, absent with `disable_temporal_crossattention`), `ff` (residual
 * when inner_dim == dim), and back to (b*t, s, c). `softmax` builds CrossAttention,
 * `softmax-xformers` MemoryEfficientCrossAttention (same math, same keys).
 */
export class VideoTransformerBlock extends nn.Module {
  static readonly ATTENTION_MODES: readonly AttnMode[] = ['softmax', 'softmax-xformers'];
  static readonly ARGS: Record<string, string[]> = { forward: ['x', 'context', 'timesteps'] };

  // Declaration order = registration order = the reference's state-dict order.
  norm_in: nn.LayerNorm | null;
  ff_in: FeedForward | null;
  attn1: CrossAttention;
  ff: FeedForward;
  norm2: nn.LayerNorm | null;
  attn2: CrossAttention | null;
  norm1: nn.LayerNorm;
  norm3: nn.LayerNorm;
  readonly dim: number;
  readonly inner_dim: number;
  readonly is_res: boolean;
  readonly timesteps: number | null;
  readonly disable_self_attn: boolean;
  readonly switch_temporal_ca_to_sa: boolean;
  readonly checkpoint: boolean;
  readonly attn_mode: AttnMode;

  constructor(params: VideoTransformerBlockParams) {
    super();
    const {
      dim,
      n_heads,
      d_head,
      dropout = 0.0,
      gated_ff = true,
      checkpoint = true,
      ff_in = false,
      attn_mode = 'softmax',
      disable_self_attn = false,
      disable_temporal_crossattention = false,
      switch_temporal_ca_to_sa = false,
    } = params;
    const context_dim = params.context_dim ?? null;
    const Attn = ATTENTION_MODES[attn_mode];
    if (!Attn) {
      throw new Error(`VideoTransformerBlock: attn_mode must be one of ${VideoTransformerBlock.ATTENTION_MODES.join(', ')}, got ${JSON.stringify(attn_mode)}`);
    }
    const hasFfIn = ff_in || (params.inner_dim !== undefined && params.inner_dim !== null);
    const inner_dim = params.inner_dim ?? dim;
    if (n_heads * d_head !== inner_dim) {
      throw new Error(`VideoTransformerBlock: n_heads * d_head (${n_heads} * ${d_head}) must equal inner_dim (${inner_dim})`);
    }
    if (disable_temporal_crossattention && switch_temporal_ca_to_sa) {
      throw new Error('VideoTransformerBlock: switch_temporal_ca_to_sa cannot be combined with disable_temporal_crossattention (ValueError in the reference)');
    }
    if (params.timesteps !== undefined && params.timesteps !== null && !(Number.isInteger(params.timesteps) && params.timesteps >= 0)) {
      throw new Error(`VideoTransformerBlock: timesteps must be a non-negative integer or null, got ${String(params.timesteps)}`);
    }
    this.dim = dim;
    this.inner_dim = inner_dim;
    this.is_res = inner_dim === dim;
    this.attn_mode = attn_mode;
    this.checkpoint = checkpoint;

    if (hasFfIn) {
      this.norm_in = new nn.LayerNorm(dim);
      this.ff_in = new FeedForward({ dim, dim_out: inner_dim, dropout, glu: gated_ff });
    } else {
      this.norm_in = null;
      this.ff_in = null;
    }
    // `timesteps or None`: 0 means "not fixed", as in the reference's truthiness test.
    this.timesteps = params.timesteps ? params.timesteps : null;
    this.disable_self_attn = disable_self_attn;
    this.attn1 = new Attn({ query_dim: inner_dim, heads: n_heads, dim_head: d_head, context_dim: disable_self_attn ? context_dim : null, dropout });
    this.ff = new FeedForward({ dim: inner_dim, dim_out: dim, dropout, glu: gated_ff });
    if (disable_temporal_crossattention) {
      this.norm2 = null;
      this.attn2 = null;
    } else {
      this.norm2 = new nn.LayerNorm(inner_dim);
      this.attn2 = new Attn({ query_dim: inner_dim, context_dim: switch_temporal_ca_to_sa ? null : context_dim, heads: n_heads, dim_head: d_head, dropout });
    }
    this.norm1 = new nn.LayerNorm(inner_dim);
    this.norm3 = new nn.LayerNorm(inner_dim);
    this.switch_temporal_ca_to_sa = switch_temporal_ca_to_sa;
  }

  /** The frame count: the constructor's `timesteps` or forward's (both given: they must agree). */
  private framesFor(x: T.Tensor, timesteps: Maybe<number>): number {
    const given = timesteps ? timesteps : null;
    if (this.timesteps === null && given === null) {
      throw new TypeError('VideoTransformerBlock: timesteps (frames per video) is required: give it to forward or to the constructor');
    }
    if (this.timesteps !== null && given !== null && this.timesteps !== given) {
      throw new Error(`VideoTransformerBlock: forward got timesteps=${given}, but the block was built for timesteps=${this.timesteps}`);
    }
    return checkFrames('VideoTransformerBlock', x.shape[0]!, this.timesteps ?? given, 'timesteps');
  }

  /**
   * x (b*t, s, c) -> (b*t, s, c). `context` (b*s, L, context_dim): one row per (video, spatial
   * position), the batch of the temporal attention.
   */
  forward(x: T.Tensor, context?: Maybe<T.Tensor>, timesteps?: Maybe<number>): T.Tensor {
    if (x.ndim !== 3) throw new T.ShapeError('VideoTransformerBlock', `input must be (b*t, s, c), got ${T.fmtShape(x.shape)}`);
    const t = this.framesFor(x, timesteps);
    const [bt, s, c] = x.shape as [number, number, number];
    const b = bt / t;
    // (b t) s c -> (b s) t c
    x = T.reshape(T.permute(T.reshape(x, [b, t, s, c]), [0, 2, 1, 3]), [b * s, t, c]);
    const usesContext = (this.disable_self_attn || (this.attn2 !== null && !this.switch_temporal_ca_to_sa)) && context;
    if (usesContext && context.shape[0] !== b * s) {
      throw new T.ShapeError(
        'VideoTransformerBlock',
        `context ${T.fmtShape(context.shape)} needs one row per (video, spatial position) = ${b} * ${s} = ${b * s} rows ` +
          `(the temporal attention runs over ${b * s} sequences of ${t} frames)`,
      );
    }

    if (this.ff_in !== null) {
      const x_skip = x;
      x = this.ff_in.forward(this.norm_in!.forward(x));
      if (this.is_res) x = T.add(x, x_skip);
    }
    if (this.disable_self_attn) x = T.add(this.attn1.forward(this.norm1.forward(x), context), x);
    else x = T.add(this.attn1.forward(this.norm1.forward(x)), x);
    if (this.attn2 !== null) {
      if (this.switch_temporal_ca_to_sa) x = T.add(this.attn2.forward(this.norm2!.forward(x)), x);
      else x = T.add(this.attn2.forward(this.norm2!.forward(x), context), x);
    }
    const x_skip = x;
    x = this.ff.forward(this.norm3.forward(x));
    if (this.is_res) x = T.add(x, x_skip);

    // (b s) t c -> (b t) s c
    const c2 = x.shape[2]!;
    return T.reshape(T.permute(T.reshape(x, [b, s, t, c2]), [0, 2, 1, 3]), [b * t, s, c2]);
  }

  get_last_layer(): nn.Parameter {
    return (this.ff.net.at(-1) as nn.Linear).weight;
  }
}

// ---------------------------------------------------------------- SpatialVideoTransformer

export interface SpatialVideoTransformerParams {
  in_channels: number;
  n_heads: number;
  d_head: number;
  depth?: number;
  dropout?: number;
  use_linear?: boolean;
  context_dim?: number | null;
  /** Temporal cross-attention to the context of each video's first frame (time_context is ignored). */
  use_spatial_context?: boolean;
  timesteps?: number | null;
  merge_strategy?: MergeStrategy;
  merge_factor?: number;
  time_context_dim?: number | null;
  /** Accepted for the reference's signature: the time blocks always get ff_in (inner_dim is passed). */
  ff_in?: boolean;
  /** Gradient checkpointing in the reference: accepted, no effect on values. */
  checkpoint?: boolean;
  /** Stored only, as in the reference (one time block per spatial block). */
  time_depth?: number;
  attn_mode?: AttnMode;
  disable_self_attn?: boolean;
  disable_temporal_crossattention?: boolean;
  max_time_embed_period?: number;
}

/**
 * SpatialTransformer (norm, proj_in, `depth` BasicTransformerBlocks, proj_out, + input) where each
 * spatial block is followed by a temporal block: `x_mix = x + time_pos_embed(timestep_embedding(frame
 * index, in_channels, max_time_embed_period))`, `x_mix = time_stack[i](x_mix, time_context)` over the
 * frames at every pixel, `x = time_mixer(x, x_mix)` (alpha * spatial + (1 - alpha) * temporal; image-only
 * frames keep the spatial branch with `learned_with_images`). The temporal context is the first
 * frame's context of each video (`use_spatial_context`) or `time_context` (one row per video),
 * repeated for every pixel.
 */
export class SpatialVideoTransformer extends SpatialTransformer {
  static override readonly ARGS: Record<string, string[]> = { forward: ['x', 'context', 'time_context', 'timesteps', 'image_only_indicator'] };

  time_stack: nn.ModuleList<VideoTransformerBlock>;
  time_pos_embed: nn.Sequential;
  time_mixer: AlphaBlender;
  readonly time_depth: number;
  readonly depth: number;
  readonly max_time_embed_period: number;
  readonly use_spatial_context: boolean;

  constructor(params: SpatialVideoTransformerParams) {
    const {
      in_channels,
      n_heads,
      d_head,
      depth = 1,
      dropout = 0.0,
      use_linear = false,
      use_spatial_context = false,
      timesteps = null,
      merge_strategy = 'fixed',
      merge_factor = 0.5,
      checkpoint = false,
      time_depth = 1,
      attn_mode = 'softmax',
      disable_self_attn = false,
      disable_temporal_crossattention = false,
      max_time_embed_period = 10000,
    } = params;
    const context_dim = params.context_dim ?? null;
    if (context_dim !== null && typeof context_dim !== 'number') {
      throw new Error(`SpatialVideoTransformer: context_dim must be an int or null, got ${JSON.stringify(context_dim)}`);
    }
    super({
      in_channels,
      n_heads,
      d_head,
      depth,
      dropout,
      attn_type: attn_mode,
      use_checkpoint: checkpoint,
      context_dim,
      use_linear,
      disable_self_attn,
    });
    this.time_depth = time_depth;
    this.depth = depth;
    this.max_time_embed_period = max_time_embed_period;
    const inner_dim = n_heads * d_head;
    const time_context_dim = use_spatial_context ? context_dim : (params.time_context_dim ?? null);
    this.time_stack = new nn.ModuleList(
      Array.from(
        { length: depth },
        () =>
          new VideoTransformerBlock({
            dim: inner_dim,
            n_heads,
            d_head,
            dropout,
            context_dim: time_context_dim,
            timesteps,
            checkpoint,
            ff_in: params.ff_in ?? false,
            inner_dim,
            attn_mode,
            disable_self_attn,
            disable_temporal_crossattention,
          }),
      ),
    );
    this.use_spatial_context = use_spatial_context;
    const time_embed_dim = in_channels * 4;
    this.time_pos_embed = new nn.Sequential(linear(in_channels, time_embed_dim), new nn.SiLU(), linear(time_embed_dim, in_channels));
    this.time_mixer = new AlphaBlender({ alpha: merge_factor, merge_strategy });
  }

  /**
   * x (b*t, c, h, w); context (b*t, L, context_dim) for the spatial blocks (and, with
   * use_spatial_context, the temporal ones); time_context (b, L, time_context_dim) or (b, time_context_dim);
   * timesteps = t; image_only_indicator (b, t), needed with `learned_with_images`.
   */
  override forward(
    x: T.Tensor,
    context?: SpatialContext,
    time_context?: Maybe<T.Tensor>,
    timesteps?: Maybe<number>,
    image_only_indicator?: Maybe<T.Tensor>,
  ): T.Tensor {
    if (x.ndim !== 4) throw new T.ShapeError('SpatialVideoTransformer', `input must be (b*t, c, h, w), got ${T.fmtShape(x.shape)}`);
    if (Array.isArray(context)) throw new TypeError('SpatialVideoTransformer: context must be one tensor (b*t, L, context_dim), not a list');
    const ctx = (context as Maybe<T.Tensor>) ?? null;
    const [bt, , h, w] = x.shape as [number, number, number, number];
    const t = checkFrames('SpatialVideoTransformer', bt, timesteps, 'timesteps');
    if (image_only_indicator && this.time_mixer.merge_strategy === 'learned_with_images') checkIndicator('SpatialVideoTransformer', image_only_indicator, bt, t);
    const x_in = x;
    const spatial_context = ctx;

    let tctx: T.Tensor | null = null;
    if (this.use_spatial_context) {
      if (!ctx || ctx.ndim !== 3) {
        throw new T.ShapeError('SpatialVideoTransformer', `n dims of spatial context should be 3 but are ${ctx ? ctx.ndim : 'none (no context given)'}`);
      }
      if (ctx.shape[0] !== bt) {
        throw new T.ShapeError('SpatialVideoTransformer', `context ${T.fmtShape(ctx.shape)} needs one row per frame (${bt}) with use_spatial_context`);
      }
      tctx = repeatRows(T.slice(ctx, 0, 0, undefined, t), h * w);
    } else if (time_context) {
      if (time_context.shape[0] !== bt / t) {
        throw new T.ShapeError('SpatialVideoTransformer', `time_context ${T.fmtShape(time_context.shape)} needs one row per video (${bt / t})`);
      }
      tctx = repeatRows(time_context, h * w);
      if (tctx.ndim === 2) tctx = T.unsqueeze(tctx, 1);
    }

    x = this.norm.forward(x);
    if (!this.use_linear) x = this.proj_in.forward(x);
    let c = x.shape[1]!;
    x = T.reshape(T.permute(x, [0, 2, 3, 1]), [bt, h * w, c]);
    if (this.use_linear) x = this.proj_in.forward(x);

    const t_emb = frameIndexEmbedding(bt, t, this.in_channels, this.max_time_embed_period);
    const emb = T.unsqueeze(this.time_pos_embed.forward(t_emb), 1);

    this.transformer_blocks.items.forEach((block, i) => {
      const mix_block = this.time_stack.at(i);
      x = block.forward(x, spatial_context);
      let x_mix = T.add(x, emb);
      x_mix = mix_block.forward(x_mix, tctx, t);
      x = this.time_mixer.forward(x, x_mix, image_only_indicator);
    });

    if (this.use_linear) x = this.proj_out.forward(x);
    c = x.shape[2]!;
    x = T.permute(T.reshape(x, [bt, h, w, c]), [0, 3, 1, 2]);
    if (!this.use_linear) x = this.proj_out.forward(x);
    return T.add(x, x_in);
  }

  /** TimestepEmbedSequential's call: `(x, context, time_context, num_video_frames, image_only_indicator)`. */
  forwardEmbed(x: T.Tensor, args: { context: SpatialContext; time_context: Maybe<T.Tensor>; num_video_frames: Maybe<number>; image_only_indicator: Maybe<T.Tensor> }): T.Tensor {
    return this.forward(x, args.context, args.time_context, args.num_video_frames, args.image_only_indicator);
  }
}
