// Discretizations: the sigma grids samplers walk and discrete denoisers quantize to
// (sgm/modules/diffusionmodules/discretizer.py), plus the demo's img2img / txt2noisy wrappers
// (scripts/demo/discretization.py). Sigmas are small host float32 arrays computed exactly as the
// reference's torch float32 code computes them, so they can seed graphs as constants or inputs.
import * as T from '../../tensor/index.js';

export interface DiscretizationCallOptions {
  /** Append a final sigma of 0 (default true). */
  doAppendZero?: boolean;
  /** Reverse the whole vector, appended zero included (default false). */
  flip?: boolean;
}

/** Anything that yields a sigma grid like a Discretization (the wrappers below included). */
export interface DiscretizationLike {
  call(n: number, opts?: DiscretizationCallOptions): Float32Array;
}

/** float32 `x ** p` as torch computes it: small integer and half powers are exact sequences. */
export function powF32(x: number, p: number): number {
  const f = Math.fround;
  switch (p) {
    case 1:
      return f(x);
    case 2:
      return f(x * x);
    case 3:
      return f(f(x * x) * x);
    case 0.5:
      return f(Math.sqrt(x));
    case -0.5:
      return f(1 / f(Math.sqrt(x)));
    case -1:
      return f(1 / x);
    case -2:
      return f(1 / f(x * x));
    default:
      return f(Math.pow(x, p));
  }
}

export abstract class Discretization implements DiscretizationLike {
  /**
   * `Discretization.__call__(n, do_append_zero=True, flip=False)`: the grid of `get_sigmas(n)`
   * (descending), a 0 appended, the whole vector reversed when `flip`.
   */
  call(n: number, opts: DiscretizationCallOptions = {}): Float32Array {
    const doAppendZero = opts.doAppendZero ?? true;
    const flip = opts.flip ?? false;
    const sigmas = this.getSigmas(n);
    let out = sigmas;
    if (doAppendZero) {
      out = new Float32Array(sigmas.length + 1);
      out.set(sigmas);
    }
    if (flip) out = Float32Array.from(out).reverse();
    return out;
  }

  /** The n sigmas, largest first. */
  abstract getSigmas(n: number): Float32Array;

  /** The reference's name for `getSigmas`. */
  get_sigmas(n: number): Float32Array {
    return this.getSigmas(n);
  }
}

function checkSteps(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${what}: the number of sigmas must be a positive integer, got ${n}`);
}

/** Karras et al.'s rho-schedule between sigma_max and sigma_min, in float32 as torch does it. */
export class EDMDiscretization extends Discretization {
  readonly sigma_min: number;
  readonly sigma_max: number;
  readonly rho: number;

  constructor(sigma_min = 0.002, sigma_max = 80.0, rho = 7.0) {
    super();
    this.sigma_min = sigma_min;
    this.sigma_max = sigma_max;
    this.rho = rho;
  }

  getSigmas(n: number): Float32Array {
    checkSteps('EDMDiscretization', n);
    const f = Math.fround;
    // torch.linspace(0, 1, n) in float32.
    const ramp = T.linspace(0, 1, n, 'float32').value as Float32Array;
    // Python floats (double) that enter float32 tensor ops as scalars rounded to float32.
    const minInvRho = Math.pow(this.sigma_min, 1 / this.rho);
    const maxInvRho = Math.pow(this.sigma_max, 1 / this.rho);
    const span = f(minInvRho - maxInvRho);
    const base = f(maxInvRho);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = powF32(f(base + f(ramp[i]! * span)), this.rho);
    return out;
  }
}

/**
 * `generate_roughly_equally_spaced_steps(num_substeps, max_step)`:
 * `np.linspace(max_step - 1, 0, num_substeps, endpoint=False).astype(int)[::-1]`.
 */
export function generateRoughlyEquallySpacedSteps(numSubsteps: number, maxStep: number): number[] {
  const start = maxStep - 1;
  const step = (0 - start) / numSubsteps; // numpy: delta / div with endpoint=False
  const out: number[] = [];
  for (let i = 0; i < numSubsteps; i++) {
    const v = step === 0 ? (i / numSubsteps) * (0 - start) + start : i * step + start;
    out.push(Math.trunc(v));
  }
  return out.reverse();
}

/** The DDPM schedule of SD 1.x/2.x and SDXL ("scaled linear" betas) as sigmas. */
export class LegacyDDPMDiscretization extends Discretization {
  readonly linear_start: number;
  readonly linear_end: number;
  readonly num_timesteps: number;
  /** cumprod(1 - betas) in float64 (numpy in the reference). */
  readonly alphas_cumprod: Float64Array;

  constructor(linear_start = 0.00085, linear_end = 0.012, num_timesteps = 1000) {
    super();
    if (!Number.isInteger(num_timesteps) || num_timesteps < 1) {
      throw new RangeError(`LegacyDDPMDiscretization: num_timesteps must be a positive integer, got ${num_timesteps}`);
    }
    this.linear_start = linear_start;
    this.linear_end = linear_end;
    this.num_timesteps = num_timesteps;
    // make_beta_schedule("linear"): torch.linspace(start**0.5, end**0.5, n, dtype=float64) ** 2.
    const roots = T.linspace(Math.sqrt(linear_start), Math.sqrt(linear_end), num_timesteps, 'float64').value as Float64Array;
    const ac = new Float64Array(num_timesteps);
    let prod = 1;
    for (let i = 0; i < num_timesteps; i++) {
      const beta = roots[i]! * roots[i]!;
      prod *= 1.0 - beta;
      ac[i] = prod;
    }
    this.alphas_cumprod = ac;
  }

  /** The timesteps (indices into alphas_cumprod) used for n sigmas, ascending. */
  timesteps(n: number): number[] {
    checkSteps('LegacyDDPMDiscretization', n);
    if (n > this.num_timesteps) {
      throw new RangeError(`LegacyDDPMDiscretization: ${n} sigmas requested, more than num_timesteps=${this.num_timesteps}`);
    }
    if (n === this.num_timesteps) return Array.from({ length: n }, (_, i) => i);
    return generateRoughlyEquallySpacedSteps(n, this.num_timesteps);
  }

  getSigmas(n: number): Float32Array {
    const ts = this.timesteps(n);
    const f = Math.fround;
    const out = new Float32Array(n);
    // ((1 - ac) / ac) in float64, cast to float32, then ** 0.5 in float32; flipped (descending).
    for (let i = 0; i < n; i++) {
      const a = this.alphas_cumprod[ts[i]!]!;
      out[n - 1 - i] = f(Math.sqrt(f((1 - a) / a)));
    }
    return out;
  }
}

function checkStrength(what: string, strength: number): void {
  if (!(strength >= 0 && strength <= 1)) throw new RangeError(`${what}: strength must be between 0.0 and 1.0, got ${strength}`);
}

/**
 * Prunes the grid of a discretization for img2img: keeps the smallest `max(int(strength * len), 1)`
 * sigmas (the appended zero counts). strength 1.0 keeps all of them.
 */
export class Img2ImgDiscretizationWrapper extends Discretization {
  readonly discretization: DiscretizationLike;
  readonly strength: number;

  constructor(discretization: DiscretizationLike, strength = 1.0) {
    super();
    checkStrength('Img2ImgDiscretizationWrapper', strength);
    this.discretization = discretization;
    this.strength = strength;
  }

  override call(n: number, opts: DiscretizationCallOptions = {}): Float32Array {
    const sigmas = Float32Array.from(this.discretization.call(n, opts)).reverse();
    const keep = Math.max(Math.trunc(this.strength * sigmas.length), 1);
    return sigmas.slice(0, keep).reverse();
  }

  /** The pruned grid without the appended zero and unflipped. */
  getSigmas(n: number): Float32Array {
    return this.call(n, { doAppendZero: false, flip: false });
  }
}

/**
 * Prunes the grid for a second (refiner) stage that starts from a noisy sample: drops the
 * `max(min(int(strength * steps) - 1, steps - 1), 0)` smallest sigmas, where steps is
 * `original_steps + 1` (or the grid length when original_steps is null). strength 0.0 keeps all.
 */
export class Txt2NoisyDiscretizationWrapper extends Discretization {
  readonly discretization: DiscretizationLike;
  readonly strength: number;
  readonly original_steps: number | null;

  constructor(discretization: DiscretizationLike, strength = 0.0, original_steps: number | null = null) {
    super();
    checkStrength('Txt2NoisyDiscretizationWrapper', strength);
    this.discretization = discretization;
    this.strength = strength;
    this.original_steps = original_steps;
  }

  override call(n: number, opts: DiscretizationCallOptions = {}): Float32Array {
    const sigmas = Float32Array.from(this.discretization.call(n, opts)).reverse();
    const steps = this.original_steps === null ? sigmas.length : this.original_steps + 1;
    const pruneIndex = Math.max(Math.min(Math.trunc(this.strength * steps) - 1, steps - 1), 0);
    return sigmas.slice(pruneIndex).reverse();
  }

  /** The pruned grid without the appended zero and unflipped. */
  getSigmas(n: number): Float32Array {
    return this.call(n, { doAppendZero: false, flip: false });
  }
}
