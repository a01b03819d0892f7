// sgm/modules/autoencoding/regularizers: what an AutoencodingEngine does between encoder and
// decoder. DiagonalGaussianRegularizer samples from (or takes the mode of) the KL posterior and
// reports its KL loss. (AbstractRegularizer and IdentityRegularizer live in the reference's base.py.)
import * as T from '../../../tensor/index.js';
import type { Generator, Tensor } from '../../../tensor/index.js';
import * as nn from '../../../nn/index.js';
import { DiagonalGaussianDistribution, type NoiseLike } from '../../distributions/distributions.js';

/** Where a sampling regularizer gets its noise: a generator (default: the default generator) or a replayed draw. */
export interface RegularizerOptions {
  generator?: Generator;
  noise?: NoiseLike;
}

/** The log a regularizer returns beside z (`kl_loss` for the Gaussian one; empty for identity). */
export type RegLog = Record<string, Tensor>;

export abstract class AbstractRegularizer extends nn.Module {
  abstract forward(z: Tensor, opts?: RegularizerOptions): [Tensor, RegLog];

  /** Trainable parameters of the regularizer itself (none for these). */
  get_trainable_parameters(): nn.Parameter[] {
    return [];
  }
}

export class IdentityRegularizer extends AbstractRegularizer {
  forward(z: Tensor): [Tensor, RegLog] {
    return [z, {}];
  }
}

/**
 * z -> DiagonalGaussianDistribution(z); returns a sample (sample=true) or the mean, and
 * `{ kl_loss: sum(kl) / batch }`.
 */
export class DiagonalGaussianRegularizer extends AbstractRegularizer {
  static readonly ARGS: Record<string, string[]> = { forward: ['z'] };
  readonly sample: boolean;

  constructor(params: { sample?: boolean } = {}) {
    super();
    this.sample = params.sample ?? true;
  }

  forward(z: Tensor, opts: RegularizerOptions = {}): [Tensor, RegLog] {
    const posterior = new DiagonalGaussianDistribution(z);
    const out = this.sample ? posterior.sample(opts.generator ?? T.defaultGenerator, opts.noise) : posterior.mode();
    const kl = posterior.kl();
    const kl_loss = T.div(T.sum(kl), kl.shape[0]!);
    return [out, { kl_loss }];
  }
}
