// The diffusion training loss (sgm/modules/diffusionmodules/loss.py): sample sigmas, noise the
// input, denoise, and weight the per-sample error. Random numbers are drawn on the host from a
// torch-compatible Generator in the reference's order (sigmas, noise, offset noise) and enter the
// graph as tensors, so a compiled training step can take them as inputs (`draws`).
import * as T from '../../tensor/index.js';
import { Module } from '../../nn/index.js';
import type { Cond, DenoiserLike, NetworkLike } from './denoiser.js';
import type { DiffusionLossWeighting } from './loss_weighting.js';
import type { SigmaSampler } from './sigma_sampling.js';

export type LossType = 'l2' | 'l1' | 'lpips';

/** The conditioner forward() runs on the batch first (a GeneralConditioner, or a function). */
export type ConditionerLike = ((batch: Record<string, unknown>) => Cond) | { forward(batch: Record<string, unknown>): Cond };

type Draw = T.Tensor | Float32Array | BigInt64Array;

/** The random inputs of one loss evaluation. */
export interface LossDraws {
  /** The sigma sampler's draw: torch.randn((B,)) (float32) or torch.randint(0, num_idx, (B,)) (int64). */
  rand: Draw;
  /** torch.randn_like(input). */
  noise: T.Tensor | Float32Array;
  /** torch.randn(offset_shape); present only when offset_noise_level > 0. */
  offset_noise?: T.Tensor | Float32Array | null;
}

/** Host draws, as `drawNoise` makes them. */
export interface LossHostDraws {
  rand: Float32Array | BigInt64Array;
  noise: Float32Array;
  offset_noise: Float32Array | null;
}

export interface LossForwardOptions {
  /** Generator for the draws when `draws` is absent (default: the torch default generator). */
  generator?: T.Generator;
  /** Use these draws instead of drawing (e.g. symbolic inputs of a compiled training step). */
  draws?: LossDraws;
}

/** The loss and the intermediate values that lead to it. */
export interface LossTerms {
  /** Per-sample loss, shape (B,). */
  loss: T.Tensor;
  sigmas: T.Tensor;
  /** The noise including the offset noise. */
  noise: T.Tensor;
  noised_input: T.Tensor;
  model_output: T.Tensor;
  /** The weights before append_dims, shape (B,). */
  w: T.Tensor;
}

export class LossConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LossConfigError';
  }
}

/** The reference's `assert loss_type in ["l2", "l1", "lpips"]`, with lpips refused: it needs LPIPS weights. */
export function checkLossType(loss_type: string): 'l2' | 'l1' {
  if (loss_type === 'lpips') {
    throw new LossConfigError(
      "StandardDiffusionLoss: loss_type 'lpips' is not supported: it needs the LPIPS (VGG16) network and its weights, which this port does not include; use loss_type 'l2' or 'l1'",
    );
  }
  if (loss_type !== 'l2' && loss_type !== 'l1') {
    throw new LossConfigError(`StandardDiffusionLoss: unknown loss_type '${loss_type}'; expected 'l2' or 'l1' ('lpips' is not supported here)`);
  }
  return loss_type;
}

export class StandardDiffusionLoss extends Module {
  readonly sigma_sampler: SigmaSampler;
  readonly loss_weighting: DiffusionLossWeighting;
  readonly loss_type: LossType;
  readonly offset_noise_level: number;
  readonly batch2model_keys: Set<string>;
  /**
   * Frames per video for the offset noise shape. The reference reads `self.n_frames` without ever
   * setting it (an AttributeError); here it is null (the image case) unless set.
   */
  n_frames: number | null = null;

  /** `sigma_sampler` and `loss_weighting` are the instantiated `sigma_sampler_config` / `loss_weighting_config`. */
  constructor(
    sigma_sampler: SigmaSampler,
    loss_weighting: DiffusionLossWeighting,
    loss_type: string = 'l2',
    offset_noise_level = 0.0,
    batch2model_keys: string[] | string | null = null,
  ) {
    super();
    this.loss_type = checkLossType(loss_type);
    this.sigma_sampler = sigma_sampler;
    this.loss_weighting = loss_weighting;
    this.offset_noise_level = offset_noise_level;
    const keys = batch2model_keys ? (typeof batch2model_keys === 'string' ? [batch2model_keys] : batch2model_keys) : [];
    this.batch2model_keys = new Set(keys);
  }

  /** The shape of the offset noise for an input of `inputShape`. */
  offsetShape(inputShape: readonly number[]): number[] {
    if (inputShape.length < 2) throw new RangeError(`StandardDiffusionLoss: input must be (B, C, ...), got ${T.fmtShape(inputShape)}`);
    if (this.n_frames !== null) {
      if (inputShape.length < 3) throw new RangeError(`StandardDiffusionLoss: video offset noise needs an input of 3+ dims, got ${T.fmtShape(inputShape)}`);
      return [inputShape[0]!, 1, inputShape[2]!];
    }
    return [inputShape[0]!, inputShape[1]!];
  }

  /** The draws of one `_forward`, in the reference's order: sigmas, noise, offset noise. */
  drawNoise(inputShape: readonly number[], generator: T.Generator = T.defaultGenerator): LossHostDraws {
    const rand = this.sigma_sampler.draw(inputShape[0]!, generator);
    const noise = generator.randnData(inputShape, 'float32');
    const offset_noise = this.offset_noise_level > 0.0 ? generator.randnData(this.offsetShape(inputShape), 'float32') : null;
    return { rand, noise, offset_noise };
  }

  get_noised_input(sigmas_bc: T.Tensor, noise: T.Tensor, input: T.Tensor): T.Tensor {
    return T.add(input, T.mul(noise, sigmas_bc));
  }

  /** Runs the conditioner on the batch, then `_forward`. */
  forward(
    network: NetworkLike,
    denoiser: DenoiserLike,
    conditioner: ConditionerLike,
    input: T.Tensor,
    batch: Record<string, unknown>,
    opts: LossForwardOptions = {},
  ): T.Tensor {
    const cond = typeof conditioner === 'function' ? conditioner(batch) : conditioner.forward(batch);
    return this._forward(network, denoiser, cond, input, batch, opts);
  }

  /** Per-sample loss (B,) for a given conditioning. */
  _forward(
    network: NetworkLike,
    denoiser: DenoiserLike,
    cond: Cond,
    input: T.Tensor,
    batch: Record<string, unknown>,
    opts: LossForwardOptions = {},
  ): T.Tensor {
    return this.forwardTerms(network, denoiser, cond, input, batch, opts).loss;
  }

  /** `_forward` with its intermediate values. */
  forwardTerms(
    network: NetworkLike,
    denoiser: DenoiserLike,
    cond: Cond,
    input: T.Tensor,
    batch: Record<string, unknown>,
    opts: LossForwardOptions = {},
  ): LossTerms {
    const extra: Record<string, unknown> = {};
    for (const key of this.batch2model_keys) if (Object.prototype.hasOwnProperty.call(batch, key)) extra[key] = batch[key];
    const draws: LossDraws = opts.draws ?? this.drawNoise(input.shape, opts.generator ?? T.defaultGenerator);

    const sigmas = T.cast(this.sigma_sampler.fromRand(draws.rand), input.dtype);
    let noise = asTensor('noise', draws.noise, input.shape);
    if (this.offset_noise_level > 0.0) {
      if (!draws.offset_noise) throw new RangeError('StandardDiffusionLoss: offset_noise_level > 0 needs draws.offset_noise');
      const off = asTensor('offset_noise', draws.offset_noise, this.offsetShape(input.shape));
      noise = T.add(noise, T.mul(T.appendDims(off, input.ndim), this.offset_noise_level));
    }
    const sigmas_bc = T.appendDims(sigmas, input.ndim);
    const noised_input = this.get_noised_input(sigmas_bc, noise, input);
    const model_output = denoiser.forward(network, noised_input, sigmas, cond, extra);
    const w = this.loss_weighting.call(sigmas);
    const loss = this.get_loss(model_output, input, T.appendDims(w, input.ndim));
    return { loss, sigmas, noise, noised_input, model_output, w };
  }

  /** mean over the non-batch dims of w * (model_output - target)^2 (l2) or w * |model_output - target| (l1). */
  get_loss(model_output: T.Tensor, target: T.Tensor, w: T.Tensor): T.Tensor {
    const d = T.sub(model_output, target);
    const e = this.loss_type === 'l2' ? T.mul(w, T.pow(d, 2)) : T.mul(w, T.abs(d));
    const b = target.shape[0]!;
    return T.mean(T.reshape(e, [b, e.size / b]), 1);
  }
}

function asTensor(what: string, v: T.Tensor | Float32Array, shape: readonly number[]): T.Tensor {
  const t = v instanceof Float32Array ? T.tensor(v, shape, 'float32') : v;
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new RangeError(`StandardDiffusionLoss: ${what} has shape ${T.fmtShape(t.shape)}, expected ${T.fmtShape(shape)}`);
  }
  return t;
}
