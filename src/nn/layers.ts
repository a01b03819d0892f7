// PyTorch's layers with PyTorch's parameter names, shapes and default initialisation.
import * as F from '../tensor/index.js';
import type { DType, Shape, Tensor } from '../tensor/index.js';
import { constantInit, initStorage, kaimingUniformDefault, normal, xavierUniform } from './init.js';
import { Module, ModuleList, Parameter } from './module.js';

export interface LayerOptions {
  dtype?: DType;
}

function param(shape: Shape, dtype: DType, draw: () => Float32Array): Parameter {
  return new Parameter(shape, dtype, initStorage(shape, dtype, draw));
}

export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

export class Linear extends Module {
  weight: Parameter;
  bias: Parameter | null;

  constructor(
    readonly in_features: number,
    readonly out_features: number,
    opts: LayerOptions & { bias?: boolean } = {},
  ) {
    super();
    const dtype = opts.dtype ?? 'float32';
    this.weight = param([out_features, in_features], dtype, kaimingUniformDefault([out_features, in_features], in_features));
    this.bias = opts.bias === false ? null : param([out_features], dtype, kaimingUniformDefault([out_features], in_features));
  }

  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
}

export interface ConvLayerOptions extends LayerOptions {
  stride?: number | number[];
  padding?: number | number[];
  dilation?: number | number[];
  groups?: number;
  bias?: boolean;
}

function expandN(v: number | number[], n: number): number[] {
  return typeof v === 'number' ? new Array<number>(n).fill(v) : v;
}

/** nn.Conv1d / Conv2d / Conv3d. */
export class ConvNd extends Module {
  weight: Parameter;
  bias: Parameter | null;
  readonly kernel_size: number[];

  constructor(
    readonly dims: 1 | 2 | 3,
    readonly in_channels: number,
    readonly out_channels: number,
    kernel: number | number[],
    readonly opts: ConvLayerOptions = {},
  ) {
    super();
    const groups = opts.groups ?? 1;
    if (in_channels % groups !== 0 || out_channels % groups !== 0) {
      throw new Error(`Conv${dims}d: in_channels ${in_channels} and out_channels ${out_channels} must be divisible by groups ${groups}`);
    }
    this.kernel_size = expandN(kernel, dims);
    const dtype = opts.dtype ?? 'float32';
    const wShape = [out_channels, in_channels / groups, ...this.kernel_size];
    const fanIn = (in_channels / groups) * this.kernel_size.reduce((a, b) => a * b, 1);
    this.weight = param(wShape, dtype, kaimingUniformDefault(wShape, fanIn));
    this.bias = opts.bias === false ? null : param([out_channels], dtype, kaimingUniformDefault([out_channels], fanIn));
  }

  forward(x: Tensor): Tensor {
    const o = this.opts;
    return F.conv(x, this.weight, this.bias, { stride: o.stride, padding: o.padding, dilation: o.dilation, groups: o.groups });
  }
}

export class Conv1d extends ConvNd {
  constructor(inC: number, outC: number, kernel: number | number[], opts: ConvLayerOptions = {}) {
    super(1, inC, outC, kernel, opts);
  }
}
export class Conv2d extends ConvNd {
  constructor(inC: number, outC: number, kernel: number | number[], opts: ConvLayerOptions = {}) {
    super(2, inC, outC, kernel, opts);
  }
}
export class Conv3d extends ConvNd {
  constructor(inC: number, outC: number, kernel: number | number[], opts: ConvLayerOptions = {}) {
    super(3, inC, outC, kernel, opts);
  }
}

export class GroupNorm extends Module {
  weight: Parameter | null;
  bias: Parameter | null;

  constructor(
    readonly num_groups: number,
    readonly num_channels: number,
    readonly opts: LayerOptions & { eps?: number; affine?: boolean } = {},
  ) {
    super();
    if (num_channels % num_groups !== 0) throw new Error(`GroupNorm: ${num_channels} channels are not divisible into ${num_groups} groups`);
    const dtype = opts.dtype ?? 'float32';
    const affine = opts.affine ?? true;
    this.weight = affine ? param([num_channels], dtype, constantInit([num_channels], 1)) : null;
    this.bias = affine ? param([num_channels], dtype, constantInit([num_channels], 0)) : null;
  }

  forward(x: Tensor): Tensor {
    return F.groupNorm(x, this.num_groups, this.weight, this.bias, this.opts.eps ?? 1e-5);
  }
}

export class LayerNorm extends Module {
  weight: Parameter | null;
  bias: Parameter | null;
  readonly normalized_shape: number[];

  constructor(
    normalizedShape: number | number[],
    readonly opts: LayerOptions & { eps?: number; elementwise_affine?: boolean; bias?: boolean } = {},
  ) {
    super();
    this.normalized_shape = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
    const dtype = opts.dtype ?? 'float32';
    const affine = opts.elementwise_affine ?? true;
    const s = this.normalized_shape;
    this.weight = affine ? param(s, dtype, constantInit(s, 1)) : null;
    this.bias = affine && opts.bias !== false ? param(s, dtype, constantInit(s, 0)) : null;
  }

  forward(x: Tensor): Tensor {
    return F.layerNorm(x, this.normalized_shape, this.weight, this.bias, this.opts.eps ?? 1e-5);
  }
}

export class Embedding extends Module {
  weight: Parameter;

  constructor(
    readonly num_embeddings: number,
    readonly embedding_dim: number,
    opts: LayerOptions = {},
  ) {
    super();
    const shape = [num_embeddings, embedding_dim];
    this.weight = param(shape, opts.dtype ?? 'float32', normal(shape));
  }

  forward(ids: Tensor): Tensor {
    return F.embedding(this.weight, ids);
  }
}

/** Dropout: the identity in eval mode. Training-mode dropout with p > 0 comes with the trainer. */
export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (p < 0 || p > 1) throw new RangeError(`Dropout probability must be in [0, 1], got ${p}`);
  }

  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    throw new Error(`Dropout(p=${this.p}) in training mode is not supported yet; call .eval() for inference`);
  }
}

export class SiLU extends Module {
  forward(x: Tensor): Tensor {
    return F.silu(x);
  }
}

export class GELU extends Module {
  constructor(readonly approximate: 'none' | 'tanh' = 'none') {
    super();
  }

  forward(x: Tensor): Tensor {
    return F.gelu(x, this.approximate);
  }
}

/** nn.Upsample with integer nearest-neighbour factors (the mode the sgm networks use). */
export class Upsample extends Module {
  constructor(readonly scale_factor: number | number[], readonly mode: 'nearest' = 'nearest') {
    super();
  }

  forward(x: Tensor): Tensor {
    return F.upsampleNearest(x, this.scale_factor);
  }
}

export class AvgPool extends Module {
  constructor(
    readonly kernel_size: number | number[],
    readonly opts: { stride?: number | number[]; padding?: number | number[]; count_include_pad?: boolean } = {},
  ) {
    super();
  }

  forward(x: Tensor): Tensor {
    return F.avgPool(x, this.kernel_size, {
      stride: this.opts.stride,
      padding: this.opts.padding,
      countIncludePad: this.opts.count_include_pad ?? true,
    });
  }
}

/** nn.Sequential: children numbered, applied in order. */
export class Sequential extends ModuleList<Module & { forward(x: Tensor): Tensor }> {
  constructor(...layers: Array<Module & { forward(x: Tensor): Tensor }>) {
    super(layers);
  }

  forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this.items) y = m.forward(y);
    return y;
  }
}

/**
 * nn.MultiheadAttention (packed in_proj_weight / in_proj_bias, out_proj), as open_clip's text
 * towers use it. Inputs are (L, N, E), or (N, L, E) with batch_first.
 */
export class MultiheadAttention extends Module {
  in_proj_weight: Parameter;
  in_proj_bias: Parameter | null;
  out_proj: Linear;
  readonly head_dim: number;

  constructor(
    readonly embed_dim: number,
    readonly num_heads: number,
    readonly opts: LayerOptions & { bias?: boolean; batch_first?: boolean } = {},
  ) {
    super();
    if (embed_dim % num_heads !== 0) throw new Error(`MultiheadAttention: embed_dim ${embed_dim} not divisible by num_heads ${num_heads}`);
    this.head_dim = embed_dim / num_heads;
    const dtype = opts.dtype ?? 'float32';
    const ws = [3 * embed_dim, embed_dim];
    // PyTorch's draw order: out_proj's Linear init, then xavier for in_proj_weight; biases zeroed.
    this.out_proj = new Linear(embed_dim, embed_dim, { dtype, bias: opts.bias !== false });
    this.in_proj_weight = param(ws, dtype, xavierUniform(ws, embed_dim, 3 * embed_dim));
    this.in_proj_bias = opts.bias === false ? null : param([3 * embed_dim], dtype, constantInit([3 * embed_dim], 0));
    if (this.out_proj.bias) this.out_proj.bias.assign(initStorage([embed_dim], dtype, constantInit([embed_dim], 0)));
  }

  /** Self- or cross-attention; `attnMask` is additive float or bool (true = masked, as in torch). */
  forward(query: Tensor, key: Tensor, value: Tensor, opts: { attnMask?: Tensor | null } = {}): Tensor {
    const bf = this.opts.batch_first ?? false;
    const q0 = bf ? query : F.transpose(query, 0, 1);
    const k0 = bf ? key : F.transpose(key, 0, 1);
    const v0 = bf ? value : F.transpose(value, 0, 1);
    const e = this.embed_dim;
    const [wq, wk, wv] = F.chunk(this.in_proj_weight, 3, 0) as [Tensor, Tensor, Tensor];
    const [bq, bk, bv] = this.in_proj_bias ? (F.chunk(this.in_proj_bias, 3, 0) as [Tensor, Tensor, Tensor]) : [null, null, null];
    const heads = (x: Tensor): Tensor => {
      const [n, l] = x.shape as [number, number];
      return F.transpose(F.reshape(x, [n, l, this.num_heads, this.head_dim]), 1, 2);
    };
    const q = heads(F.linear(q0, wq, bq));
    const k = heads(F.linear(k0, wk, bk));
    const v = heads(F.linear(v0, wv, bv));
    let mask: Tensor | null = null;
    if (opts.attnMask) mask = opts.attnMask.dtype === 'bool' ? F.logicalNot(opts.attnMask) : opts.attnMask;
    const o = F.scaledDotProductAttention(q, k, v, { mask });
    const [n, , l] = o.shape as [number, number, number];
    const merged = F.reshape(F.transpose(o, 1, 2), [n, l, e]);
    const out = this.out_proj.forward(merged);
    return bf ? out : F.transpose(out, 0, 1);
  }
}
