// sgm/modules/distributions/distributions.py: the diagonal Gaussian posterior of the KL autoencoders.
// Random draws happen on the host with the torch-compatible generator (`torch.randn(mean.shape)`
// on the default generator), so a seed gives the reference's sample.
import * as T from '../../tensor/index.js';
import type { Generator, Tensor } from '../../tensor/index.js';

export abstract class AbstractDistribution {
  abstract sample(): Tensor;
  abstract mode(): Tensor;
}

export class DiracDistribution extends AbstractDistribution {
  constructor(readonly value: Tensor) {
    super();
  }

  sample(): Tensor {
    return this.value;
  }

  mode(): Tensor {
    return this.value;
  }
}

/** Noise for `sample`: host data or a tensor of mean's shape. */
export type NoiseLike = Tensor | Float32Array | ArrayLike<number>;

/**
 * N(mean, exp(logvar)) per element; `parameters` holds [mean | logvar] along dim 1. logvar is
 * clamped to [-30, 20]; deterministic: std = var = 0.
 */
export class DiagonalGaussianDistribution {
  readonly parameters: Tensor;
  readonly mean: Tensor;
  readonly logvar: Tensor;
  readonly deterministic: boolean;
  readonly std: Tensor;
  readonly var: Tensor;

  constructor(parameters: Tensor, deterministic = false) {
    if (parameters.ndim < 2 || parameters.shape[1]! % 2 !== 0) {
      throw new T.ShapeError('DiagonalGaussianDistribution', `parameters ${T.fmtShape(parameters.shape)} must have an even number of channels (dim 1): [mean | logvar]`);
    }
    this.parameters = parameters;
    const [mean, logvar] = T.chunk(parameters, 2, 1) as [Tensor, Tensor];
    this.mean = mean;
    this.logvar = T.clamp(logvar, -30.0, 20.0);
    this.deterministic = deterministic;
    if (deterministic) {
      this.std = T.zerosLike(this.mean);
      this.var = this.std;
    } else {
      this.std = T.exp(T.mul(this.logvar, 0.5));
      this.var = T.exp(this.logvar);
    }
  }

  /**
   * mean + std * randn(mean.shape): the noise is drawn from `generator` (the default generator, as
   * torch.randn does), or taken from `noise` when given (a replayed draw).
   */
  sample(generator: Generator = T.defaultGenerator, noise?: NoiseLike): Tensor {
    const shape = this.mean.shape;
    let eps: Tensor;
    if (noise instanceof T.Tensor) {
      if (noise.shape.length !== shape.length || noise.shape.some((d, i) => d !== shape[i])) {
        throw new T.ShapeError('DiagonalGaussianDistribution.sample', `noise ${T.fmtShape(noise.shape)} must have the mean's shape ${T.fmtShape(shape)}`);
      }
      eps = T.cast(noise, this.mean.dtype);
    } else if (noise !== undefined) {
      if (noise.length !== T.numel(shape)) {
        throw new T.ShapeError('DiagonalGaussianDistribution.sample', `noise has ${noise.length} values, the mean ${T.fmtShape(shape)} needs ${T.numel(shape)}`);
      }
      eps = T.tensor(noise instanceof Float32Array ? noise : Float32Array.from(noise), shape, 'float32');
    } else {
      eps = T.tensor(generator.randnData(shape, 'float32'), shape, 'float32');
    }
    if (eps.dtype !== this.mean.dtype) eps = T.cast(eps, this.mean.dtype);
    return T.add(this.mean, T.mul(this.std, eps));
  }

  /** KL to N(0, 1) (or to `other`), summed over dims 1, 2, 3: shape (batch,). Deterministic: [0]. */
  kl(other?: DiagonalGaussianDistribution | null): Tensor {
    if (this.deterministic) return T.tensor([0.0], [1], 'float32');
    if (!other) {
      const t = T.sub(T.sub(T.add(T.pow(this.mean, 2), this.var), 1.0), this.logvar);
      return T.mul(T.sum(t, [1, 2, 3]), 0.5);
    }
    const d = T.sub(this.mean, other.mean);
    const t = T.add(T.sub(T.sub(T.add(T.div(T.pow(d, 2), other.var), T.div(this.var, other.var)), 1.0), this.logvar), other.logvar);
    return T.mul(T.sum(t, [1, 2, 3]), 0.5);
  }

  /** Negative log-likelihood of `sample`, summed over `dims`. Deterministic: [0]. */
  nll(sample: Tensor, dims: readonly number[] = [1, 2, 3]): Tensor {
    if (this.deterministic) return T.tensor([0.0], [1], 'float32');
    const logtwopi = Math.log(2.0 * Math.PI);
    const t = T.add(T.add(this.logvar, logtwopi), T.div(T.pow(T.sub(sample, this.mean), 2), this.var));
    return T.mul(T.sum(t, dims), 0.5);
  }

  mode(): Tensor {
    return this.mean;
  }
}

/** KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))) element-wise (guided-diffusion's normal_kl). */
export function normal_kl(mean1: Tensor | number, logvar1: Tensor | number, mean2: Tensor | number, logvar2: Tensor | number): Tensor {
  const ref = [mean1, logvar1, mean2, logvar2].find((o): o is Tensor => o instanceof T.Tensor);
  if (!ref) throw new TypeError('normal_kl: at least one argument must be a Tensor');
  const lv1 = logvar1 instanceof T.Tensor ? logvar1 : T.full([], logvar1, ref.dtype);
  const lv2 = logvar2 instanceof T.Tensor ? logvar2 : T.full([], logvar2, ref.dtype);
  const m1 = mean1 instanceof T.Tensor ? mean1 : T.full([], mean1, ref.dtype);
  const dm = T.sub(m1, mean2);
  const t = T.add(T.add(T.sub(T.add(lv2, -1.0), lv1), T.exp(T.sub(lv1, lv2))), T.mul(T.pow(dm, 2), T.exp(T.neg(lv2))));
  return T.mul(t, 0.5);
}
