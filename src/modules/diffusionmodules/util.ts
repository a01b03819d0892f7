// sgm/modules/diffusionmodules/util.py: the sinusoidal timestep embedding, GroupNorm32
// (`normalization`), the conv/pool helpers by dimensionality, and AlphaBlender (the spatial /
// temporal mix of the video network). Everything builds graph nodes; nothing computes on the host
// except the constant frequency table of the embedding.
import * as T from '../../tensor/index.js';
import * as nn from '../../nn/index.js';
import { constantInit, initStorage } from '../../nn/init.js';

/**
 * Sinusoidal timestep embeddings, exactly as the reference computes them in float32:
 * `half = dim // 2`, `freqs = exp(-ln(max_period) * arange(half) / half)` (each step rounded to
 * float32, as torch does with a float32 tensor and a Python scalar), `args = t.float()[:, None] * freqs`,
 * output `[cos(args) | sin(args)]`; an odd `dim` gets one zero column at the end (so `dim = 1` gives
 * an empty (N, 0) tensor). `timesteps` is 1-d, int64 (DiscreteDenoiser indices) or float (EDM
 * c_noise). With `repeat_only` the timesteps are repeated `dim` times, keeping their dtype.
 */
export function timestep_embedding(timesteps: T.Tensor, dim: number, max_period = 10000, repeat_only = false): T.Tensor {
  if (timesteps.ndim !== 1) {
    throw new T.ShapeError('timestep_embedding', `timesteps must be 1-d (one per batch element), got ${T.fmtShape(timesteps.shape)}`);
  }
  if (!Number.isInteger(dim) || dim < 0) throw new T.ShapeError('timestep_embedding', `dim must be a non-negative integer, got ${dim}`);
  const n = timesteps.shape[0]!;
  if (repeat_only) return T.expand(T.reshape(timesteps, [n, 1]), [n, dim]);
  const half = Math.floor(dim / 2);
  if (half === 0) return T.zeros([n, 0]);
  const f = Math.fround;
  const negLog = f(-Math.log(max_period));
  const freqs = new Float32Array(half);
  for (let i = 0; i < half; i++) freqs[i] = f(Math.exp(f(f(negLog * i) / half)));
  const args = T.mul(T.reshape(T.cast(timesteps, 'float32'), [n, 1]), T.tensor(freqs, [1, half]));
  let emb = T.concat([T.cos(args), T.sin(args)], -1);
  if (dim % 2) emb = T.concat([emb, T.zeros([n, 1])], -1);
  return emb;
}

/** camelCase alias of timestep_embedding. */
export const timestepEmbedding = timestep_embedding;

/** nn.GroupNorm evaluated in float32 (`x.float()`, cast back), as the UNet's ResBlocks and `out` use it. */
export class GroupNorm32 extends nn.GroupNorm {
  override forward(x: T.Tensor): T.Tensor {
    const w = this.weight ? T.cast(this.weight, 'float32') : null;
    const b = this.bias ? T.cast(this.bias, 'float32') : null;
    const y = T.groupNorm(T.cast(x, 'float32'), this.num_groups, w, b, this.opts.eps ?? 1e-5);
    return T.cast(y, x.dtype);
  }
}

/** The standard normalization layer of the UNet: GroupNorm32 with 32 groups, eps 1e-5. */
export function normalization(channels: number): GroupNorm32 {
  return new GroupNorm32(32, channels);
}

export type Dims = 1 | 2 | 3;

function checkDims(dims: number): Dims {
  if (dims !== 1 && dims !== 2 && dims !== 3) throw new Error(`unsupported dimensions: ${dims} (1, 2 or 3)`);
  return dims;
}

/** A 1-d, 2-d or 3-d convolution (conv_nd). */
export function conv_nd(dims: number, in_channels: number, out_channels: number, kernel_size: number | number[], opts: nn.ConvLayerOptions = {}): nn.ConvNd {
  return new nn.ConvNd(checkDims(dims), in_channels, out_channels, kernel_size, opts);
}

/** A 1-d, 2-d or 3-d average pool (avg_pool_nd); the stride defaults to the kernel size. */
export function avg_pool_nd(dims: number, kernel_size: number | number[], stride?: number | number[]): nn.AvgPool {
  const d = checkDims(dims);
  const k = typeof kernel_size === 'number' ? new Array<number>(d).fill(kernel_size) : kernel_size;
  const s = stride === undefined ? k : typeof stride === 'number' ? new Array<number>(d).fill(stride) : stride;
  if (k.length !== d || s.length !== d) throw new Error(`avg_pool_nd(${d}): kernel ${JSON.stringify(kernel_size)} / stride ${JSON.stringify(stride)} need ${d} entries`);
  return new nn.AvgPool(k, { stride: s });
}

/** linear(*args): nn.Linear. */
export function linear(in_features: number, out_features: number, opts: nn.LayerOptions & { bias?: boolean } = {}): nn.Linear {
  return new nn.Linear(in_features, out_features, opts);
}

// ---------------------------------------------------------------- einops-style rearrange

type Group = string[];

const TOKEN = /\(([^()]*)\)|([A-Za-z_][A-Za-z0-9_]*|\d+)/g;

function parseSide(side: string, pattern: string): Group[] {
  if (side.replace(TOKEN, '').trim().length > 0) {
    throw new Error(`rearrange pattern '${pattern}': cannot parse '${side.trim()}' (only names, 1 and (groups) are supported)`);
  }
  return [...side.matchAll(TOKEN)].map((m) => (m[1] !== undefined ? m[1].trim().split(/\s+/).filter((s) => s.length > 0) : [m[2]!]));
}

/**
 * einops.rearrange for patterns whose input side is plain axis names (the AlphaBlender patterns,
 * e.g. `b t -> (b t) 1 1`, `b t -> b 1 t 1 1`): the named axes are permuted, grouped axes merged
 * and `1`s inserted.
 */
export function rearrange(x: T.Tensor, pattern: string): T.Tensor {
  const parts = pattern.split('->');
  if (parts.length !== 2) throw new Error(`rearrange pattern '${pattern}' must have one '->'`);
  const left = parseSide(parts[0]!, pattern);
  const right = parseSide(parts[1]!, pattern);
  if (left.some((g) => g.length !== 1 || /^\d+$/.test(g[0]!))) {
    throw new Error(`rearrange pattern '${pattern}': the input side must be plain axis names`);
  }
  const names = left.map((g) => g[0]!);
  if (names.length !== x.ndim) throw new Error(`rearrange pattern '${pattern}' names ${names.length} axes, the input ${T.fmtShape(x.shape)} has ${x.ndim}`);
  const size = new Map(names.map((nm, i) => [nm, x.shape[i]!]));
  const order = right.flat().filter((nm) => !/^\d+$/.test(nm));
  if (order.length !== names.length || new Set(order).size !== order.length || order.some((nm) => !size.has(nm))) {
    throw new Error(`rearrange pattern '${pattern}': the output side must use each input axis exactly once`);
  }
  const permuted = T.permute(x, order.map((nm) => names.indexOf(nm)));
  const shape = right.map((g) =>
    g.reduce((p, nm) => {
      if (/^\d+$/.test(nm)) {
        if (nm !== '1') throw new Error(`rearrange pattern '${pattern}': only the literal 1 may be inserted`);
        return p;
      }
      return p * size.get(nm)!;
    }, 1),
  );
  return T.reshape(permuted, shape);
}

// ---------------------------------------------------------------- AlphaBlender

export type MergeStrategy = 'learned' | 'fixed' | 'learned_with_images';

export interface AlphaBlenderParams {
  alpha: number;
  merge_strategy?: MergeStrategy;
  rearrange_pattern?: string;
}

/**
 * Mixes a spatial and a temporal branch: `alpha * x_spatial + (1 - alpha) * x_temporal` with
 * alpha = the `mix_factor` buffer (`fixed`), sigmoid(mix_factor) (`learned`), or, per frame,
 * 1 where `image_only_indicator` is set and sigmoid(mix_factor) elsewhere (`learned_with_images`),
 * reshaped by `rearrange_pattern` (default `b t -> (b t) 1 1`).
 */
export class AlphaBlender extends nn.Module {
  static readonly strategies: readonly MergeStrategy[] = ['learned', 'fixed', 'learned_with_images'];
  static readonly ARGS: Record<string, string[]> = { forward: ['x_spatial', 'x_temporal', 'image_only_indicator'] };

  mix_factor: nn.Parameter | nn.Buffer;
  readonly merge_strategy: MergeStrategy;
  readonly rearrange_pattern: string;

  constructor(params: AlphaBlenderParams) {
    super();
    const { alpha, merge_strategy = 'learned_with_images', rearrange_pattern = 'b t -> (b t) 1 1' } = params;
    if (!AlphaBlender.strategies.includes(merge_strategy)) {
      throw new Error(`AlphaBlender: merge_strategy needs to be in ${JSON.stringify(AlphaBlender.strategies)}, got ${JSON.stringify(merge_strategy)}`);
    }
    this.merge_strategy = merge_strategy;
    this.rearrange_pattern = rearrange_pattern;
    const storage = initStorage([1], 'float32', constantInit([1], alpha));
    this.mix_factor = merge_strategy === 'fixed' ? new nn.Buffer([1], 'float32', storage) : new nn.Parameter([1], 'float32', storage);
  }

  get_alpha(image_only_indicator?: T.Tensor | null): T.Tensor {
    switch (this.merge_strategy) {
      case 'fixed':
        return this.mix_factor;
      case 'learned':
        return T.sigmoid(this.mix_factor);
      case 'learned_with_images': {
        if (!image_only_indicator) throw new Error('AlphaBlender(learned_with_images): need image_only_indicator');
        const ind = image_only_indicator.dtype === 'bool' ? image_only_indicator : T.ne(image_only_indicator, T.scalar(0, image_only_indicator.dtype));
        const a = T.where(ind, T.ones([1, 1]), T.reshape(T.sigmoid(this.mix_factor), [1, 1]));
        return rearrange(a, this.rearrange_pattern);
      }
    }
  }

  forward(x_spatial: T.Tensor, x_temporal: T.Tensor, image_only_indicator?: T.Tensor | null): T.Tensor {
    const alpha = this.get_alpha(image_only_indicator);
    const dt = x_spatial.dtype;
    return T.add(T.mul(T.cast(alpha, dt), x_spatial), T.mul(T.cast(T.sub(1, alpha), dt), x_temporal));
  }
}
