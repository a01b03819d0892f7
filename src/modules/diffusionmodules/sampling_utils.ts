// Sampler helpers (sgm/modules/diffusionmodules/sampling_utils.py), float32 graph ops in the
// reference's operation order; the LMS coefficient is computed on the host in float64.
import * as T from '../../tensor/index.js';

/** Classifier-free guidance without thresholding: uncond + scale * (cond - uncond). */
export class NoDynamicThresholding {
  call(uncond: T.Tensor, cond: T.Tensor, scale: number | T.Tensor): T.Tensor {
    const diff = T.sub(cond, uncond);
    return T.add(uncond, typeof scale === 'number' ? T.mul(diff, scale) : T.mul(scale, diff));
  }
}

/** A dynamic-thresholding strategy as VanillaCFG uses it. */
export interface DynamicThresholding {
  call(uncond: T.Tensor, cond: T.Tensor, scale: number | T.Tensor): T.Tensor;
}

/**
 * `linear_multistep_coeff(order, t, i, j)`: the integral from t[i] to t[i+1] of the Lagrange
 * basis polynomial prod_{k != j} (tau - t[i-k]) / (t[i-j] - t[i-k]). The reference integrates it
 * with scipy's quad (exact for these low-degree polynomials up to rounding); here the polynomial
 * is expanded around t[i] and integrated exactly in float64. `t` holds the sampler's float32
 * sigmas; as in numpy, the denominators are float32 differences when `t` is a Float32Array.
 */
export function linear_multistep_coeff(order: number, t: ArrayLike<number>, i: number, j: number): number {
  if (order - 1 > i) throw new RangeError(`Order ${order} too high for step ${i}`);
  if (i + 1 >= t.length) throw new RangeError(`linear_multistep_coeff: step ${i} needs t[${i + 1}], but t has ${t.length} entries`);
  const f32 = t instanceof Float32Array;
  const ti = t[i]!;
  // Coefficients of the polynomial in u = tau - t[i], lowest degree first.
  let poly = [1];
  for (let k = 0; k < order; k++) {
    if (k === j) continue;
    const a = t[i - k]!;
    const d0 = t[i - j]! - a;
    const d = f32 ? Math.fround(d0) : d0;
    // (tau - a) / d = (u + (t[i] - a)) / d
    const c0 = (ti - a) / d;
    const c1 = 1 / d;
    const next = new Array<number>(poly.length + 1).fill(0);
    for (let m = 0; m < poly.length; m++) {
      next[m] += poly[m]! * c0;
      next[m + 1] += poly[m]! * c1;
    }
    poly = next;
  }
  const h = t[i + 1]! - ti;
  let acc = 0;
  let hp = h;
  for (let m = 0; m < poly.length; m++) {
    acc += (poly[m]! * hp) / (m + 1);
    hp *= h;
  }
  return acc;
}

/**
 * `get_ancestral_step(sigma_from, sigma_to, eta)`: (sigma_down, sigma_up) with
 * sigma_up = min(sigma_to, eta * sqrt(sigma_to^2 (sigma_from^2 - sigma_to^2) / sigma_from^2)) and
 * sigma_down = sqrt(sigma_to^2 - sigma_up^2). With eta = 0 it is (sigma_to, 0) (the reference
 * returns the Python float 0.0; here a zero tensor shaped like sigma_to).
 */
export function get_ancestral_step(sigma_from: T.Tensor, sigma_to: T.Tensor, eta = 1.0): [sigma_down: T.Tensor, sigma_up: T.Tensor] {
  if (!eta) return [sigma_to, T.zerosLike(sigma_to)];
  const to2 = T.pow(sigma_to, 2);
  const inner = T.div(T.mul(to2, T.sub(T.pow(sigma_from, 2), to2)), T.pow(sigma_from, 2));
  const sigma_up = T.minimum(sigma_to, T.mul(T.pow(inner, 0.5), eta));
  const sigma_down = T.pow(T.sub(T.pow(sigma_to, 2), T.pow(sigma_up, 2)), 0.5);
  return [sigma_down, sigma_up];
}

/** Karras' ODE derivative: (x - denoised) / append_dims(sigma, x.ndim). */
export function to_d(x: T.Tensor, sigma: T.Tensor, denoised: T.Tensor): T.Tensor {
  return T.div(T.sub(x, denoised), T.appendDims(sigma, x.ndim));
}

export function to_neg_log_sigma(sigma: T.Tensor): T.Tensor {
  return T.neg(T.log(sigma));
}

export function to_sigma(neg_log_sigma: T.Tensor): T.Tensor {
  return T.exp(T.neg(neg_log_sigma));
}

// camelCase aliases
export const linearMultistepCoeff = linear_multistep_coeff;
export const getAncestralStep = get_ancestral_step;
export const toD = to_d;
export const toNegLogSigma = to_neg_log_sigma;
export const toSigma = to_sigma;
