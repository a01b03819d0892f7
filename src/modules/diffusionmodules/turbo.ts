// SDXL-Turbo / SD-Turbo sampling (the reference's scripts/demo/turbo.py): SubstepSampler, an
// EulerAncestralSampler over a fixed subset of the 1000-step LegacyDDPM sigmas with uc = cond,
// and SeededNoise, numpy RandomState draws with a seed that increases by one per draw.
import * as T from '../../tensor/index.js';
import type { Tensor } from '../../tensor/index.js';
import type { Cond } from './denoiser.js';
import { LegacyDDPMDiscretization } from './discretizer.js';
import { EulerAncestralSampler, type AncestralSamplerOptions, type NoiseSource, type SamplingLoop } from './sampling.js';

/** The step indices the demo samples at, before the final one (index 1000: the appended sigma 0). */
export const TURBO_STEPS_SUBSET: readonly number[] = [0, 100, 200, 300, 1000];

export interface SubstepSamplerOptions extends Partial<AncestralSamplerOptions> {
  /** Number of sampling steps, 1 to 4 (turbo.py's n_sample_steps; its UI allows 1-4). */
  nSampleSteps?: number;
}

/**
 * turbo.py's SubstepSampler. Defaults are the demo's: num_steps 1000, eta 1, a
 * LegacyDDPMDiscretization. Sigmas are sigmas[[0, 100, 200, 300, 1000][:n] + [1000]] of the
 * 1000-step discretization (with the appended zero), and the unconditional input is the
 * conditional one (no CFG).
 */
export class SubstepSampler extends EulerAncestralSampler {
  private _n = 1;
  readonly stepsSubset: readonly number[] = TURBO_STEPS_SUBSET;

  constructor(opts: SubstepSamplerOptions = {}) {
    super({
      ...opts,
      discretization: opts.discretization ?? new LegacyDDPMDiscretization(),
      numSteps: opts.numSteps ?? 1000,
      eta: opts.eta ?? 1,
    });
    this.nSampleSteps = opts.nSampleSteps ?? 1;
  }

  get nSampleSteps(): number {
    return this._n;
  }

  set nSampleSteps(n: number) {
    if (!Number.isInteger(n) || n < 1 || n > 4) throw new RangeError(`SubstepSampler: n_sample_steps must be an integer from 1 to 4, got ${n}`);
    this._n = n;
  }

  /** The indices into the full sigma grid that this sampler visits. */
  stepIndices(): number[] {
    return [...this.stepsSubset.slice(0, this._n), ...this.stepsSubset.slice(-1)];
  }

  override getSigmas(numSteps?: number | null): Float32Array {
    const all = super.getSigmas(numSteps);
    const idx = this.stepIndices();
    for (const i of idx) {
      if (i >= all.length) {
        throw new RangeError(`SubstepSampler: step index ${i} is outside the ${all.length} sigmas of num_steps=${numSteps ?? this.numSteps}; use num_steps 1000`);
      }
    }
    return Float32Array.from(idx, (i) => all[i]!);
  }

  /** uc is always cond (turbo.py ignores the uc argument). */
  override prepareSamplingLoop(x: Tensor, cond: Cond, _uc?: Cond | null, numSteps?: number | null): SamplingLoop {
    return this.loopFromSigmas(x, this.getSigmas(numSteps), cond, cond);
  }
}

/** turbo.py's seeded_randn: numpy RandomState(seed).randn(*shape), cast to float32. */
export function seededRandn(shape: readonly number[], seed: number): Float32Array {
  return Float32Array.from(new T.RandomState(seed).randn(shape));
}

/**
 * turbo.py's SeededNoise: each draw first increments the seed, then returns
 * RandomState(seed).randn(shape) as float32, so draw k (k = 1, 2, ...) uses seed + k.
 * `source` is the NoiseSource to pass to sample(..., { noise }).
 */
export class SeededNoise {
  seed: number;

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0) throw new RangeError(`SeededNoise: seed must be a non-negative integer, got ${seed}`);
    this.seed = seed;
  }

  next(shape: readonly number[]): Float32Array {
    this.seed = this.seed + 1;
    return seededRandn(shape, this.seed);
  }

  readonly source: NoiseSource = (shape) => this.next(shape);
}
