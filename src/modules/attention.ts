// sgm/modules/attention.py: the transformer pieces of the UNet. GEGLU / FeedForward, CrossAttention
// and MemoryEfficientCrossAttention (the same softmax(q k^T / sqrt(d_head)) v math and the same
// keys; every attention is ONE `T.scaledDotProductAttention` node so the engine can fuse it),
// BasicTransformerBlock and SpatialTransformer. Attribute names are the reference's, so state-dict
// keys are too (`attn1.to_q.weight`, `attn1.to_out.0.bias`, `ff.net.0.proj.weight`, `ff.net.2.weight`).
import * as T from '../tensor/index.js';
import * as nn from '../nn/index.js';

type Maybe<X> = X | null | undefined;

// ---------------------------------------------------------------- feed-forward

/** Linear to 2*dim_out, first half the value, second half the gate: `x * gelu(gate)` (exact erf GELU). */
export class GEGLU extends nn.Module {
  proj: nn.Linear;

  constructor(readonly dim_in: number, readonly dim_out: number) {
    super();
    this.proj = new nn.Linear(dim_in, dim_out * 2);
  }

  forward(x: T.Tensor): T.Tensor {
    const [v, gate] = T.chunk(this.proj.forward(x), 2, -1) as [T.Tensor, T.Tensor];
    return T.mul(v, T.gelu(gate));
  }
}

export interface FeedForwardParams {
  dim: number;
  dim_out?: number | null;
  mult?: number;
  glu?: boolean;
  dropout?: number;
}

/** `net` = [GEGLU or Sequential(Linear, GELU)], Dropout, Linear (keys `net.0.proj.*` or `net.0.0.*`, `net.2.*`). */
export class FeedForward extends nn.Module {
  net: nn.Sequential;

  constructor(params: FeedForwardParams) {
    super();
    const { dim, mult = 4, glu = false, dropout = 0.0 } = params;
    const inner = Math.trunc(dim * mult);
    const dimOut = params.dim_out ?? dim;
    const projectIn = glu ? new GEGLU(dim, inner) : new nn.Sequential(new nn.Linear(dim, inner), new nn.GELU());
    this.net = new nn.Sequential(projectIn, new nn.Dropout(dropout), new nn.Linear(inner, dimOut));
  }

  forward(x: T.Tensor): T.Tensor {
    return this.net.forward(x);
  }
}

// ---------------------------------------------------------------- attention

export interface CrossAttentionParams {
  query_dim: number;
  context_dim?: number | null;
  heads?: number;
  dim_head?: number;
  dropout?: number;
  /** torch's SDPBackend choice: accepted, no effect (one attention node either way). */
  backend?: unknown;
}

/** `b n (h d) -> b h n d` */
function splitHeads(t: T.Tensor, heads: number): T.Tensor {
  const [b, n, c] = t.shape as [number, number, number];
  if (c % heads !== 0) throw new T.ShapeError('attention', `${c} features do not split into ${heads} heads`);
  return T.permute(T.reshape(t, [b, n, heads, c / heads]), [0, 2, 1, 3]);
}

/** `b h n d -> b n (h d)` */
function mergeHeads(t: T.Tensor): T.Tensor {
  const [b, h, n, d] = t.shape as [number, number, number, number];
  return T.reshape(T.permute(t, [0, 2, 1, 3]), [b, n, h * d]);
}

/** einops `repeat(t[::step], "b ... -> (b n) ...", n=n)`: every kept row repeated n times in place. */
function repeatRows(t: T.Tensor, step: number, n: number): T.Tensor {
  const kept = T.slice(t, 0, 0, undefined, step);
  const [b, ...rest] = kept.shape;
  return T.reshape(T.expand(T.reshape(kept, [b!, 1, ...rest]), [b!, n, ...rest]), [b! * n, ...rest]);
}

/** The attention module interface BasicTransformerBlock (and the video blocks) call. */
export interface AttentionLike extends nn.Module {
  forward(
    x: T.Tensor,
    context?: Maybe<T.Tensor>,
    mask?: Maybe<T.Tensor>,
    additional_tokens?: Maybe<T.Tensor>,
    n_times_crossframe_attn_in_self?: number,
  ): T.Tensor;
}

/**
 * Multi-head attention of x over context (itself when context is absent): to_q/to_k/to_v without
 * bias, heads split `b n (h d) -> b h n d`, `softmax(q k^T / sqrt(dim_head)) v` (torch >= 2's
 * F.scaled_dot_product_attention; `mask` is bool, true = attend, or additive float), then
 * `to_out` = Linear (with bias), Dropout.
 */
export class CrossAttention extends nn.Module implements AttentionLike {
  static readonly ARGS: Record<string, string[]> = { forward: ['x', 'context', 'mask', 'additional_tokens', 'n_times_crossframe_attn_in_self'] };

  to_q: nn.Linear;
  to_k: nn.Linear;
  to_v: nn.Linear;
  to_out: nn.Sequential;
  readonly heads: number;
  readonly dim_head: number;
  readonly scale: number;
  readonly backend: unknown;

  constructor(params: CrossAttentionParams) {
    super();
    const { query_dim, heads = 8, dim_head = 64, dropout = 0.0 } = params;
    const inner = dim_head * heads;
    const contextDim = params.context_dim ?? query_dim;
    this.heads = heads;
    this.dim_head = dim_head;
    this.scale = dim_head ** -0.5;
    this.to_q = new nn.Linear(query_dim, inner, { bias: false });
    this.to_k = new nn.Linear(contextDim, inner, { bias: false });
    this.to_v = new nn.Linear(contextDim, inner, { bias: false });
    this.to_out = new nn.Sequential(new nn.Linear(inner, query_dim), new nn.Dropout(dropout));
    this.backend = params.backend ?? null;
  }

  /** k/v rows of every n-th batch element, repeated (cross-frame attention); differs per class as in the reference. */
  protected crossFrame(t: T.Tensor, batch: number, n: number): T.Tensor {
    if (batch % n !== 0) throw new T.ShapeError('CrossAttention', `batch ${batch} is not a multiple of n_times_crossframe_attn_in_self ${n}`);
    return repeatRows(t, n, batch / n);
  }

  protected attend(q: T.Tensor, k: T.Tensor, v: T.Tensor, mask: Maybe<T.Tensor>): T.Tensor {
    return T.scaledDotProductAttention(splitHeads(q, this.heads), splitHeads(k, this.heads), splitHeads(v, this.heads), {
      mask: mask ?? null,
      scale: this.scale,
    });
  }

  forward(
    x: T.Tensor,
    context?: Maybe<T.Tensor>,
    mask?: Maybe<T.Tensor>,
    additional_tokens?: Maybe<T.Tensor>,
    n_times_crossframe_attn_in_self = 0,
  ): T.Tensor {
    let nMasked = 0;
    if (additional_tokens) {
      nMasked = additional_tokens.shape[1]!;
      x = T.concat([additional_tokens, x], 1);
    }
    const q = this.to_q.forward(x);
    const ctx = context ?? x;
    let k = this.to_k.forward(ctx);
    let v = this.to_v.forward(ctx);
    if (n_times_crossframe_attn_in_self) {
      k = this.crossFrame(k, x.shape[0]!, n_times_crossframe_attn_in_self);
      v = this.crossFrame(v, x.shape[0]!, n_times_crossframe_attn_in_self);
    }
    let out = mergeHeads(this.attend(q, k, v, mask));
    if (additional_tokens) out = T.slice(out, 1, nMasked);
    return this.to_out.forward(out);
  }
}

/**
 * The xformers variant: the same math and keys. As in the reference, a mask is not supported and
 * cross-frame attention repeats each kept row n_times (CrossAttention repeats batch/n times).
 */
export class MemoryEfficientCrossAttention extends CrossAttention {
  protected override crossFrame(t: T.Tensor, batch: number, n: number): T.Tensor {
    if (batch % n !== 0) throw new T.ShapeError('MemoryEfficientCrossAttention', `batch ${batch} is not a multiple of n_times_crossframe_attn_in_self ${n}`);
    return repeatRows(t, n, n);
  }

  protected override attend(q: T.Tensor, k: T.Tensor, v: T.Tensor, mask: Maybe<T.Tensor>): T.Tensor {
    if (mask) throw new Error('MemoryEfficientCrossAttention: attention masks are not implemented (as in the reference)');
    return super.attend(q, k, v, null);
  }
}

// ---------------------------------------------------------------- transformer blocks

export type AttnMode = 'softmax' | 'softmax-xformers';

export interface BasicTransformerBlockParams {
  dim: number;
  n_heads: number;
  d_head: number;
  dropout?: number;
  context_dim?: number | null;
  gated_ff?: boolean;
  /** Gradient checkpointing in the reference; see forward() for its one visible effect. */
  checkpoint?: boolean;
  disable_self_attn?: boolean;
  attn_mode?: AttnMode;
  sdp_backend?: unknown;
}

/**
 * `x = attn1(norm1(x)) + x; x = attn2(norm2(x), context) + x; x = ff(norm3(x)) + x`. attn1 is
 * self-attention unless `disable_self_attn` (then it attends to context too). Both attention
 * modes build CrossAttention, as the reference does on torch >= 2 without xformers (with xformers
 * it builds MemoryEfficientCrossAttention: same math, same keys).
 */
export class BasicTransformerBlock extends nn.Module {
  static readonly ATTENTION_MODES: readonly AttnMode[] = ['softmax', 'softmax-xformers'];
  static readonly ARGS: Record<string, string[]> = { forward: ['x', 'context', 'additional_tokens', 'n_times_crossframe_attn_in_self'] };

  attn1: CrossAttention;
  ff: FeedForward;
  attn2: CrossAttention;
  norm1: nn.LayerNorm;
  norm2: nn.LayerNorm;
  norm3: nn.LayerNorm;
  readonly disable_self_attn: boolean;
  readonly checkpoint: boolean;
  readonly attn_mode: AttnMode;

  constructor(params: BasicTransformerBlockParams) {
    super();
    const { dim, n_heads, d_head, dropout = 0.0, gated_ff = true, checkpoint = true, disable_self_attn = false, attn_mode = 'softmax' } = params;
    if (!BasicTransformerBlock.ATTENTION_MODES.includes(attn_mode)) {
      throw new Error(`BasicTransformerBlock: attn_mode must be one of ${BasicTransformerBlock.ATTENTION_MODES.join(', ')}, got ${JSON.stringify(attn_mode)}`);
    }
    const context_dim = params.context_dim ?? null;
    this.attn_mode = attn_mode;
    this.disable_self_attn = disable_self_attn;
    this.checkpoint = checkpoint;
    this.attn1 = new CrossAttention({ query_dim: dim, heads: n_heads, dim_head: d_head, dropout, context_dim: disable_self_attn ? context_dim : null });
    this.ff = new FeedForward({ dim, dropout, glu: gated_ff });
    this.attn2 = new CrossAttention({ query_dim: dim, context_dim, heads: n_heads, dim_head: d_head, dropout });
    this.norm1 = new nn.LayerNorm(dim);
    this.norm2 = new nn.LayerNorm(dim);
    this.norm3 = new nn.LayerNorm(dim);
  }

  /**
   * As in the reference, with `checkpoint` (the default) the block runs through
   * torch.utils.checkpoint with (x, context) only, so additional_tokens and
   * n_times_crossframe_attn_in_self are then ignored.
   */
  forward(x: T.Tensor, context?: Maybe<T.Tensor>, additional_tokens?: Maybe<T.Tensor>, n_times_crossframe_attn_in_self = 0): T.Tensor {
    if (this.checkpoint) return this._forward(x, context);
    return this._forward(x, context, additional_tokens, n_times_crossframe_attn_in_self);
  }

  _forward(x: T.Tensor, context?: Maybe<T.Tensor>, additional_tokens?: Maybe<T.Tensor>, n_times_crossframe_attn_in_self = 0): T.Tensor {
    x = T.add(
      this.attn1.forward(
        this.norm1.forward(x),
        this.disable_self_attn ? context : null,
        null,
        additional_tokens,
        this.disable_self_attn ? 0 : n_times_crossframe_attn_in_self,
      ),
      x,
    );
    x = T.add(this.attn2.forward(this.norm2.forward(x), context, null, additional_tokens), x);
    return T.add(this.ff.forward(this.norm3.forward(x)), x);
  }
}

export interface SpatialTransformerParams {
  in_channels: number;
  n_heads: number;
  d_head: number;
  depth?: number;
  dropout?: number;
  /** One context width for every block, one per block, or null (attn2 is self-attention). */
  context_dim?: number | Array<number | null> | null;
  disable_self_attn?: boolean;
  use_linear?: boolean;
  attn_type?: AttnMode;
  use_checkpoint?: boolean;
  sdp_backend?: unknown;
}

/** Context of a SpatialTransformer: one tensor for every block, or one per block. */
export type SpatialContext = T.Tensor | ReadonlyArray<T.Tensor | null> | null | undefined;

/**
 * Transformer over the pixels of an image: GroupNorm(32, eps 1e-6), proj_in (1x1 conv before, or
 * Linear after, the `b c h w -> b (h w) c` reshape), `depth` BasicTransformerBlocks, proj_out
 * (the reverse), plus the input.
 */
export class SpatialTransformer extends nn.Module {
  static readonly ARGS: Record<string, string[]> = { forward: ['x', 'context'] };

  norm: nn.GroupNorm;
  proj_in: nn.Conv2d | nn.Linear;
  transformer_blocks: nn.ModuleList<BasicTransformerBlock>;
  proj_out: nn.Conv2d | nn.Linear;
  readonly in_channels: number;
  readonly use_linear: boolean;

  constructor(params: SpatialTransformerParams) {
    super();
    const { in_channels, n_heads, d_head, depth = 1, dropout = 0.0, disable_self_attn = false, use_linear = false, attn_type = 'softmax', use_checkpoint = true } = params;
    let contextDims: Array<number | null>;
    const cd = params.context_dim ?? null;
    if (cd === null) contextDims = new Array<null>(depth).fill(null);
    else {
      contextDims = Array.isArray(cd) ? [...cd] : [cd];
      if (contextDims.length !== depth) {
        // The reference warns and repeats a homogeneous list to the depth.
        if (!contextDims.every((c) => c === contextDims[0])) {
          throw new Error(`SpatialTransformer: context_dim ${JSON.stringify(cd)} does not match depth ${depth} and is not homogeneous`);
        }
        contextDims = new Array<number | null>(depth).fill(contextDims[0] ?? null);
      }
    }
    this.in_channels = in_channels;
    this.use_linear = use_linear;
    const inner = n_heads * d_head;
    this.norm = new nn.GroupNorm(32, in_channels, { eps: 1e-6 });
    this.proj_in = use_linear ? new nn.Linear(in_channels, inner) : new nn.Conv2d(in_channels, inner, 1);
    this.transformer_blocks = new nn.ModuleList(
      Array.from(
        { length: depth },
        (_, d) =>
          new BasicTransformerBlock({
            dim: inner,
            n_heads,
            d_head,
            dropout,
            context_dim: contextDims[d] ?? null,
            disable_self_attn,
            attn_mode: attn_type,
            checkpoint: use_checkpoint,
            sdp_backend: params.sdp_backend,
          }),
      ),
    );
    this.proj_out = use_linear ? new nn.Linear(inner, in_channels) : new nn.Conv2d(inner, in_channels, 1);
  }

  forward(x: T.Tensor, context?: SpatialContext): T.Tensor {
    const contexts: ReadonlyArray<T.Tensor | null> = Array.isArray(context) ? context : [(context as T.Tensor | null | undefined) ?? null];
    if (x.ndim !== 4) throw new T.ShapeError('SpatialTransformer', `input must be (b, c, h, w), got ${T.fmtShape(x.shape)}`);
    const [b, , h, w] = x.shape as [number, number, number, number];
    const xIn = x;
    x = this.norm.forward(x);
    if (!this.use_linear) x = this.proj_in.forward(x);
    let c = x.shape[1]!;
    x = T.reshape(T.permute(x, [0, 2, 3, 1]), [b, h * w, c]);
    if (this.use_linear) x = this.proj_in.forward(x);
    this.transformer_blocks.items.forEach((block, i) => {
      if (contexts.length !== 1 && i >= contexts.length) {
        throw new Error(`SpatialTransformer: ${contexts.length} contexts for ${this.transformer_blocks.length} blocks`);
      }
      const ctx = contexts.length === 1 ? contexts[0] : contexts[i];
      x = block.forward(x, ctx ?? null);
    });
    if (this.use_linear) x = this.proj_out.forward(x);
    c = x.shape[2]!;
    x = T.permute(T.reshape(x, [b, h, w, c]), [0, 3, 1, 2]);
    if (!this.use_linear) x = this.proj_out.forward(x);
    return T.add(x, xIn);
  }
}
