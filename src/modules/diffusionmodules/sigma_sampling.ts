// Training-time sigma sampling (sgm/modules/diffusionmodules/sigma_sampling.py). The random draw
// is made on the host by a torch-compatible Generator (torch.randn((n,)) / torch.randint(0,
// num_idx, (n,))), so a seed gives the reference's sigmas; the draw enters the graph as a tensor,
// which lets a compiled training step take it as an input (`fromRand`).
import * as T from '../../tensor/index.js';
import type { DiscretizationLike } from './discretizer.js';

export interface SigmaSamplerCallOptions {
  /** The draw to use instead of a fresh one (the reference's `rand=`). */
  rand?: T.Tensor | Float32Array | BigInt64Array | null;
  /** Generator for the draw (default: the process-wide torch default generator). */
  generator?: T.Generator;
}

export interface SigmaSampler {
  /** The host draw the sampler makes for n samples, from `generator`. */
  draw(nSamples: number, generator?: T.Generator): Float32Array | BigInt64Array;
  /** Sigmas from a draw (a host array or a tensor, e.g. a compiled step's input). */
  fromRand(rand: T.Tensor | Float32Array | BigInt64Array): T.Tensor;
  /**
   * `sampler(n_samples, rand=None)`: float32 sigmas of shape (n,). As in the reference the
   * generator is advanced by one draw even when `rand` is given (Python evaluates the default
   * `torch.randn(...)` argument eagerly).
   */
  call(nSamples: number, opts?: T.Generator | SigmaSamplerCallOptions): T.Tensor;
}

function callOptions(opts: T.Generator | SigmaSamplerCallOptions | undefined): SigmaSamplerCallOptions {
  if (opts === undefined) return {};
  if (opts instanceof T.Generator) return { generator: opts };
  return opts;
}

function checkCount(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${what}: n_samples must be a non-negative integer, got ${n}`);
}

/** log(sigma) ~ N(p_mean, p_std^2). */
export class EDMSampling implements SigmaSampler {
  readonly p_mean: number;
  readonly p_std: number;

  constructor(p_mean = -1.2, p_std = 1.2) {
    this.p_mean = p_mean;
    this.p_std = p_std;
  }

  draw(nSamples: number, generator: T.Generator = T.defaultGenerator): Float32Array {
    checkCount('EDMSampling', nSamples);
    return generator.randnData([nSamples], 'float32');
  }

  fromRand(rand: T.Tensor | Float32Array | BigInt64Array): T.Tensor {
    if (rand instanceof BigInt64Array) throw new TypeError('EDMSampling: rand must be float32 normal draws, got int64');
    const r = rand instanceof Float32Array ? T.tensor(rand, [rand.length], 'float32') : rand;
    // p_mean + p_std * rand, then exp (float32).
    return T.exp(T.add(T.mul(r, this.p_std), this.p_mean));
  }

  call(nSamples: number, opts?: T.Generator | SigmaSamplerCallOptions): T.Tensor {
    const o = callOptions(opts);
    const fresh = this.draw(nSamples, o.generator ?? T.defaultGenerator);
    return this.fromRand(o.rand ?? fresh);
  }
}

/** Uniform over the indices of a discretization's grid (ascending by default). */
export class DiscreteSampling implements SigmaSampler {
  readonly num_idx: number;
  /** The grid: discretization(num_idx, do_append_zero, flip). */
  readonly sigmas: Float32Array;

  /** `discretization` is the instantiated `discretization_config`. */
  constructor(discretization: DiscretizationLike, num_idx: number, do_append_zero = false, flip = true) {
    this.num_idx = num_idx;
    this.sigmas = discretization.call(num_idx, { doAppendZero: do_append_zero, flip });
  }

  idx_to_sigma(idx: T.Tensor): T.Tensor {
    return T.gather(T.tensor(this.sigmas, [this.sigmas.length], 'float32'), 0, idx);
  }

  idxToSigma(idx: T.Tensor): T.Tensor {
    return this.idx_to_sigma(idx);
  }

  draw(nSamples: number, generator: T.Generator = T.defaultGenerator): BigInt64Array {
    checkCount('DiscreteSampling', nSamples);
    return generator.randintData(0, this.num_idx, [nSamples]);
  }

  fromRand(rand: T.Tensor | Float32Array | BigInt64Array): T.Tensor {
    if (rand instanceof Float32Array) throw new TypeError('DiscreteSampling: rand must be int64 indices, got float32');
    const idx = rand instanceof BigInt64Array ? T.tensor(rand, [rand.length], 'int64') : rand;
    return this.idx_to_sigma(idx);
  }

  call(nSamples: number, opts?: T.Generator | SigmaSamplerCallOptions): T.Tensor {
    const o = callOptions(opts);
    const fresh = this.draw(nSamples, o.generator ?? T.defaultGenerator);
    return this.fromRand(o.rand ?? fresh);
  }
}
