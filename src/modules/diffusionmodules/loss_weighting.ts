// Loss weightings (sgm/modules/diffusionmodules/loss_weighting.py): sigma -> per-sample weight
// lambda(sigma), element-wise in float32 with the reference's operation order.
import * as T from '../../tensor/index.js';

export interface DiffusionLossWeighting {
  call(sigma: T.Tensor): T.Tensor;
}

export class UnitWeighting implements DiffusionLossWeighting {
  call(sigma: T.Tensor): T.Tensor {
    return T.onesLike(sigma);
  }
}

/** (sigma^2 + sigma_data^2) / (sigma * sigma_data)^2 */
export class EDMWeighting implements DiffusionLossWeighting {
  readonly sigma_data: number;

  constructor(sigma_data = 0.5) {
    this.sigma_data = sigma_data;
  }

  call(sigma: T.Tensor): T.Tensor {
    return T.div(T.add(T.pow(sigma, 2), this.sigma_data ** 2), T.pow(T.mul(sigma, this.sigma_data), 2));
  }
}

/** EDMWeighting with sigma_data = 1. */
export class VWeighting extends EDMWeighting {
  constructor() {
    super(1.0);
  }
}

/** sigma ** -2 */
export class EpsWeighting implements DiffusionLossWeighting {
  call(sigma: T.Tensor): T.Tensor {
    return T.pow(sigma, -2.0);
  }
}
