// Denoisers (sgm/modules/diffusionmodules/denoiser.py): wrap a network with a scaling, so that
// D(x, sigma) = network(x * c_in, c_noise, cond) * c_out + x * c_skip. The network is any function
// of (x, t, cond, extra); the denoiser knows nothing else about it.
import * as T from '../../tensor/index.js';
import { Buffer, Module } from '../../nn/index.js';
import type { DenoiserScaling } from './denoiser_scaling.js';
import type { DiscretizationLike } from './discretizer.js';

/** Conditioning: tensors by key (crossattn, vector, concat, ...) and non-tensor entries that pass through (num_video_frames). */
export type Cond = Record<string, T.Tensor | unknown>;

/** The network a denoiser wraps: (x, t, cond, extra model inputs) -> output of x's shape. */
export type NetworkFn = (x: T.Tensor, t: T.Tensor, cond: Cond, extra?: Record<string, unknown>) => T.Tensor;

/** A network function or an object with a `forward` of that shape (a Module). */
export type NetworkLike = NetworkFn | { forward: NetworkFn };

export function callNetwork(network: NetworkLike, x: T.Tensor, t: T.Tensor, cond: Cond, extra?: Record<string, unknown>): T.Tensor {
  return typeof network === 'function' ? network(x, t, cond, extra) : network.forward(x, t, cond, extra);
}

/** Anything that denoises like Denoiser.forward (samplers and the loss take this). */
export interface DenoiserLike {
  forward(network: NetworkLike, input: T.Tensor, sigma: T.Tensor, cond: Cond, extra?: Record<string, unknown>): T.Tensor;
}

export class Denoiser extends Module implements DenoiserLike {
  readonly scaling: DenoiserScaling;

  /** `scaling` is the instantiated `scaling_config`. */
  constructor(scaling: DenoiserScaling) {
    super();
    this.scaling = scaling;
  }

  possibly_quantize_sigma(sigma: T.Tensor): T.Tensor {
    return sigma;
  }

  possibly_quantize_c_noise(c_noise: T.Tensor): T.Tensor {
    return c_noise;
  }

  possiblyQuantizeSigma(sigma: T.Tensor): T.Tensor {
    return this.possibly_quantize_sigma(sigma);
  }

  possiblyQuantizeCNoise(c_noise: T.Tensor): T.Tensor {
    return this.possibly_quantize_c_noise(c_noise);
  }

  /**
   * sigma is quantized (DiscreteDenoiser), broadcast to input's rank and scaled;
   * returns network(input * c_in, c_noise, cond, extra) * c_out + input * c_skip.
   */
  forward(network: NetworkLike, input: T.Tensor, sigma: T.Tensor, cond: Cond, extra: Record<string, unknown> = {}): T.Tensor {
    const q = this.possibly_quantize_sigma(sigma);
    const sigmaShape = q.shape;
    const s = T.appendDims(q, input.ndim);
    const [c_skip, c_out, c_in, c_noise0] = this.scaling.call(s);
    const c_noise = this.possibly_quantize_c_noise(T.reshape(c_noise0, [...sigmaShape]));
    return T.add(T.mul(callNetwork(network, T.mul(input, c_in), c_noise, cond, extra), c_out), T.mul(input, c_skip));
  }
}

/**
 * A denoiser for networks trained on a discrete timestep grid: sigmas are snapped to the nearest
 * of `num_idx` grid values, and with `quantize_c_noise` the network receives the grid INDEX (int64).
 * Its `sigmas` buffer is the discretization's grid with flip=True by default, i.e. ASCENDING.
 */
export class DiscreteDenoiser extends Denoiser {
  readonly discretization: DiscretizationLike;
  readonly sigmas: Buffer;
  readonly quantize_c_noise: boolean;
  readonly num_idx: number;

  /** `scaling` and `discretization` are the instantiated `scaling_config` / `discretization_config`. */
  constructor(
    scaling: DenoiserScaling,
    num_idx: number,
    discretization: DiscretizationLike,
    do_append_zero = false,
    quantize_c_noise = true,
    flip = true,
  ) {
    super(scaling);
    this.discretization = discretization;
    const grid = discretization.call(num_idx, { doAppendZero: do_append_zero, flip });
    this.sigmas = new Buffer([grid.length], 'float32', { kind: 'host', dtype: 'float32', data: grid });
    this.quantize_c_noise = quantize_c_noise;
    this.num_idx = num_idx;
  }

  /** Index of the nearest grid sigma (float32 |sigma - sigmas|, first index on ties), shaped like sigma. */
  sigma_to_idx(sigma: T.Tensor): T.Tensor {
    const flat = T.reshape(sigma, [sigma.size]);
    const dists = T.sub(flat, T.reshape(this.sigmas, [this.sigmas.size, 1]));
    // argmin == argmax of the negation; ONNX ArgMax takes the first index on ties, as torch does.
    const idx = T.argmax(T.neg(T.abs(dists)), 0);
    return T.reshape(idx, [...sigma.shape]);
  }

  idx_to_sigma(idx: T.Tensor | number): T.Tensor {
    const i = typeof idx === 'number' ? T.scalar(idx, 'int64') : idx;
    return T.gather(this.sigmas, 0, i);
  }

  override possibly_quantize_sigma(sigma: T.Tensor): T.Tensor {
    return this.idx_to_sigma(this.sigma_to_idx(sigma));
  }

  override possibly_quantize_c_noise(c_noise: T.Tensor): T.Tensor {
    return this.quantize_c_noise ? this.sigma_to_idx(c_noise) : c_noise;
  }

  sigmaToIdx(sigma: T.Tensor): T.Tensor {
    return this.sigma_to_idx(sigma);
  }

  idxToSigma(idx: T.Tensor | number): T.Tensor {
    return this.idx_to_sigma(idx);
  }
}
