// Denoiser scalings (sgm/modules/diffusionmodules/denoiser_scaling.py): sigma -> (c_skip, c_out,
// c_in, c_noise), element-wise, float32, with the reference's operation order. A Python number
// divided by a tensor is `tensor.reciprocal() * number` in torch, so `rdiv` below does the same.
import * as T from '../../tensor/index.js';

export type ScalingOutput = [c_skip: T.Tensor, c_out: T.Tensor, c_in: T.Tensor, c_noise: T.Tensor];

export interface DenoiserScaling {
  call(sigma: T.Tensor): ScalingOutput;
}

/** Python's `number / tensor` (Tensor.__rtruediv__): reciprocal, then times the number. */
export function rdiv(num: number, t: T.Tensor): T.Tensor {
  const r = T.reciprocal(t);
  return num === 1 ? r : T.mul(r, num);
}

export class EDMScaling implements DenoiserScaling {
  readonly sigma_data: number;

  constructor(sigma_data = 0.5) {
    this.sigma_data = sigma_data;
  }

  call(sigma: T.Tensor): ScalingOutput {
    const sd2 = this.sigma_data ** 2; // a Python float
    const c_skip = rdiv(sd2, T.add(T.pow(sigma, 2), sd2));
    const c_out = T.div(T.mul(sigma, this.sigma_data), T.pow(T.add(T.pow(sigma, 2), sd2), 0.5));
    const c_in = rdiv(1, T.pow(T.add(T.pow(sigma, 2), sd2), 0.5));
    const c_noise = T.mul(T.log(sigma), 0.25);
    return [c_skip, c_out, c_in, c_noise];
  }
}

export class EpsScaling implements DenoiserScaling {
  call(sigma: T.Tensor): ScalingOutput {
    const c_skip = T.onesLike(sigma);
    const c_out = T.neg(sigma);
    const c_in = rdiv(1, T.pow(T.add(T.pow(sigma, 2), 1.0), 0.5));
    const c_noise = sigma;
    return [c_skip, c_out, c_in, c_noise];
  }
}

export class VScaling implements DenoiserScaling {
  call(sigma: T.Tensor): ScalingOutput {
    const c_skip = rdiv(1.0, T.add(T.pow(sigma, 2), 1.0));
    const c_out = T.div(T.neg(sigma), T.pow(T.add(T.pow(sigma, 2), 1.0), 0.5));
    const c_in = rdiv(1.0, T.pow(T.add(T.pow(sigma, 2), 1.0), 0.5));
    const c_noise = sigma;
    return [c_skip, c_out, c_in, c_noise];
  }
}

export class VScalingWithEDMcNoise implements DenoiserScaling {
  call(sigma: T.Tensor): ScalingOutput {
    const c_skip = rdiv(1.0, T.add(T.pow(sigma, 2), 1.0));
    const c_out = T.div(T.neg(sigma), T.pow(T.add(T.pow(sigma, 2), 1.0), 0.5));
    const c_in = rdiv(1.0, T.pow(T.add(T.pow(sigma, 2), 1.0), 0.5));
    const c_noise = T.mul(T.log(sigma), 0.25);
    return [c_skip, c_out, c_in, c_noise];
  }
}
