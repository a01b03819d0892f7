// sgm/modules/diffusionmodules/wrappers.py: the network wrappers a DiffusionEngine puts around its
// diffusion model (attribute `diffusion_model`, so checkpoint keys read `model.diffusion_model.*`).
// OpenAIWrapper turns the conditioner's output dict into the UNet's arguments.
import * as T from '../../tensor/index.js';
import * as nn from '../../nn/index.js';

export const OPENAIUNETWRAPPER = 'sgm.modules.diffusionmodules.wrappers.OpenAIWrapper';

/** A diffusion model: a module with a forward; its class may declare the Python names of forward's arguments. */
export type DiffusionModel = nn.Module & { forward(...args: any[]): T.Tensor };

interface ModelClass {
  ARGS?: Record<string, string[]>;
  IGNORES_EXTRA_KWARGS?: boolean;
  name: string;
}

/**
 * Calls `model.forward` with Python-style keyword arguments, mapped to positions by the class's
 * `static ARGS.forward` (the reference's parameter names in order). Unknown names are an error
 * unless the class declares IGNORES_EXTRA_KWARGS (a Python forward with **kwargs).
 */
export function callForwardWithKwargs(model: DiffusionModel, kwargs: Record<string, unknown>): T.Tensor {
  const cls = model.constructor as unknown as ModelClass;
  const names = cls.ARGS?.forward;
  if (!names) throw new Error(`${cls.name} declares no static ARGS.forward, so keyword arguments (${Object.keys(kwargs).join(', ')}) cannot be passed to it`);
  const unknown = Object.keys(kwargs).filter((k) => !names.includes(k) && kwargs[k] !== undefined);
  if (unknown.length > 0 && !cls.IGNORES_EXTRA_KWARGS) {
    throw new TypeError(`${cls.name}.forward got unexpected keyword argument(s) ${unknown.join(', ')} (it takes ${names.join(', ')})`);
  }
  const args = names.map((n) => kwargs[n]);
  while (args.length > 0 && args[args.length - 1] === undefined) args.pop();
  return model.forward(...args);
}

export interface WrapperParams {
  diffusion_model: DiffusionModel;
  /** torch.compile in the reference; here every forward is traced into one graph anyway. Accepted, no effect. */
  compile_model?: boolean;
}

/** Passes everything through to the diffusion model. */
export class IdentityWrapper extends nn.Module {
  diffusion_model: DiffusionModel;
  readonly compile_model: boolean;

  constructor(params: WrapperParams) {
    super();
    this.diffusion_model = params.diffusion_model;
    this.compile_model = params.compile_model ?? false;
  }

  forward(...args: any[]): T.Tensor {
    return this.diffusion_model.forward(...args);
  }
}

/**
 * forward(x, t, c, extra): x concatenated with `c.concat` along channels (when present), then
 * `diffusion_model(x, timesteps=t, context=c.crossattn, y=c.vector, **extra)`.
 */
export class OpenAIWrapper extends IdentityWrapper {
  static readonly ARGS: Record<string, string[]> = { forward: ['x', 't', 'c'] };

  override forward(x: T.Tensor, t: T.Tensor, c: Record<string, unknown>, extra: Record<string, unknown> = {}): T.Tensor {
    const concat = c['concat'];
    if (concat !== undefined && concat !== null) {
      if (!(concat instanceof T.Tensor)) throw new TypeError('OpenAIWrapper: c.concat must be a tensor');
      x = T.concat([x, concat], 1);
    }
    const crossattn = c['crossattn'];
    const vector = c['vector'];
    return callForwardWithKwargs(this.diffusion_model, {
      x,
      timesteps: t,
      context: crossattn === undefined ? null : crossattn,
      y: vector === undefined ? null : vector,
      ...extra,
    });
  }
}
