// Config targets of the diffusion framework: the reference's dotted names mapped to the classes of
// this folder (and sgm.lr_scheduler), replacing the placeholders src/registry.ts registers.
// Nested `*_config` params are instantiated through ctx.instantiate, so errors name their path.
import { ConfigError, atPath, type InstantiateContext, type ParamSpec, type Registry, type TargetDef } from '../../config/index.js';
import { LambdaLinearScheduler, LambdaWarmUpCosineScheduler, LambdaWarmUpCosineScheduler2 } from '../../lr_scheduler.js';
import { Denoiser, DiscreteDenoiser } from './denoiser.js';
import { EDMScaling, EpsScaling, VScaling, VScalingWithEDMcNoise, type DenoiserScaling } from './denoiser_scaling.js';
import { EDMDiscretization, LegacyDDPMDiscretization, type DiscretizationLike } from './discretizer.js';
import { IdentityGuider, LinearPredictionGuider, VanillaCFG } from './guiders.js';
import { StandardDiffusionLoss, checkLossType } from './loss.js';
import { EDMWeighting, EpsWeighting, UnitWeighting, VWeighting, type DiffusionLossWeighting } from './loss_weighting.js';
import { NoDynamicThresholding, type DynamicThresholding } from './sampling_utils.js';
import { DiscreteSampling, EDMSampling, type SigmaSampler } from './sigma_sampling.js';

const DM = 'sgm.modules.diffusionmodules';

const num = (dflt?: number, doc?: string): ParamSpec => (dflt === undefined ? { type: 'number', required: true, doc } : { type: 'number', default: dflt, doc });
const int = (dflt?: number, doc?: string): ParamSpec => (dflt === undefined ? { type: 'int', required: true, doc } : { type: 'int', default: dflt, doc });
const bool = (dflt: boolean, doc?: string): ParamSpec => ({ type: 'bool', default: dflt, doc });
const config = (doc: string): ParamSpec => ({ type: 'config', required: true, doc });
const numList = (doc: string): ParamSpec => ({ type: 'list', required: true, doc });

function sub<U>(ctx: InstantiateContext, params: Record<string, unknown>, name: string): U {
  return ctx.instantiate<U>(params[name], `${ctx.path ? `${ctx.path}.` : ''}params.${name}`);
}

/** A list param whose entries must all be numbers. */
function numbers(ctx: InstantiateContext, params: Record<string, unknown>, name: string): number[] {
  const v = params[name] as unknown[];
  const bad = v.findIndex((x) => typeof x !== 'number');
  if (bad >= 0) {
    const at = `${ctx.path ? `${ctx.path}.` : ''}params.${name}.${bad}`;
    throw new ConfigError(`${at}: expected a number in list '${name}', found ${JSON.stringify(v[bad])}`, { path: at });
  }
  return v as number[];
}

function stringList(ctx: InstantiateContext, params: Record<string, unknown>, name: string): string[] | string | null {
  const v = params[name];
  if (v === null || typeof v === 'string') return v;
  const list = v as unknown[];
  const bad = list.findIndex((x) => typeof x !== 'string');
  if (bad >= 0) {
    const at = `${ctx.path ? `${ctx.path}.` : ''}params.${name}.${bad}`;
    throw new ConfigError(`${at}: expected a string (a key name) in list '${name}', found ${JSON.stringify(list[bad])}`, { path: at });
  }
  return list as string[];
}

function weightingDefs(module: string): TargetDef[] {
  return [
    { target: `${DM}.${module}.UnitWeighting`, params: {}, create: () => new UnitWeighting() },
    { target: `${DM}.${module}.EDMWeighting`, params: { sigma_data: num(0.5) }, create: (p) => new EDMWeighting(p.sigma_data as number) },
    { target: `${DM}.${module}.VWeighting`, params: {}, create: () => new VWeighting() },
    { target: `${DM}.${module}.EpsWeighting`, params: {}, create: () => new EpsWeighting() },
  ];
}

/** The framework targets of issue 3 except the samplers. */
export const FRAMEWORK_TARGETS: readonly TargetDef[] = [
  // discretizer
  {
    target: `${DM}.discretizer.EDMDiscretization`,
    params: { sigma_min: num(0.002), sigma_max: num(80.0), rho: num(7.0) },
    create: (p) => new EDMDiscretization(p.sigma_min as number, p.sigma_max as number, p.rho as number),
  },
  {
    target: `${DM}.discretizer.LegacyDDPMDiscretization`,
    params: { linear_start: num(0.00085), linear_end: num(0.012), num_timesteps: int(1000) },
    create: (p, ctx) =>
      atPath(ctx, 'LegacyDDPMDiscretization', () => new LegacyDDPMDiscretization(p.linear_start as number, p.linear_end as number, p.num_timesteps as number)),
  },
  // denoiser scalings
  { target: `${DM}.denoiser_scaling.EDMScaling`, params: { sigma_data: num(0.5) }, create: (p) => new EDMScaling(p.sigma_data as number) },
  { target: `${DM}.denoiser_scaling.EpsScaling`, params: {}, create: () => new EpsScaling() },
  { target: `${DM}.denoiser_scaling.VScaling`, params: {}, create: () => new VScaling() },
  { target: `${DM}.denoiser_scaling.VScalingWithEDMcNoise`, params: {}, create: () => new VScalingWithEDMcNoise() },
  // denoisers
  {
    target: `${DM}.denoiser.Denoiser`,
    params: { scaling_config: config('the denoiser scaling') },
    create: (p, ctx) => new Denoiser(sub<DenoiserScaling>(ctx, p, 'scaling_config')),
  },
  {
    target: `${DM}.denoiser.DiscreteDenoiser`,
    params: {
      scaling_config: config('the denoiser scaling'),
      num_idx: int(undefined, 'number of grid sigmas (timesteps)'),
      discretization_config: config('the discretization that makes the sigma grid'),
      do_append_zero: bool(false),
      quantize_c_noise: bool(true),
      flip: bool(true),
    },
    create: (p, ctx) => {
      const scaling = sub<DenoiserScaling>(ctx, p, 'scaling_config');
      const disc = sub<DiscretizationLike>(ctx, p, 'discretization_config');
      return atPath(
        ctx,
        'DiscreteDenoiser',
        () => new DiscreteDenoiser(scaling, p.num_idx as number, disc, p.do_append_zero as boolean, p.quantize_c_noise as boolean, p.flip as boolean),
      );
    },
  },
  // loss weightings, and their duplicates in denoiser_weighting
  ...weightingDefs('loss_weighting'),
  ...weightingDefs('denoiser_weighting'),
  // guiders
  { target: `${DM}.sampling_utils.NoDynamicThresholding`, params: {}, create: () => new NoDynamicThresholding() },
  {
    target: `${DM}.guiders.VanillaCFG`,
    params: {
      scale: num(undefined, 'the guidance scale'),
      dyn_thresh_config: { type: 'config', default: null, doc: 'dynamic thresholding (default NoDynamicThresholding)' },
    },
    create: (p, ctx) =>
      new VanillaCFG(p.scale as number, p.dyn_thresh_config === null ? null : sub<DynamicThresholding>(ctx, p, 'dyn_thresh_config')),
  },
  { target: `${DM}.guiders.IdentityGuider`, params: {}, create: () => new IdentityGuider() },
  {
    target: `${DM}.guiders.LinearPredictionGuider`,
    params: {
      max_scale: num(undefined, 'the scale on the last frame'),
      num_frames: int(undefined, 'frames per video'),
      min_scale: num(1.0),
      additional_cond_keys: { type: ['list', 'string'], default: null, doc: 'further cond keys to concatenate' },
    },
    create: (p, ctx) =>
      atPath(
        ctx,
        'LinearPredictionGuider',
        () => new LinearPredictionGuider(p.max_scale as number, p.num_frames as number, p.min_scale as number, stringList(ctx, p, 'additional_cond_keys')),
      ),
  },
  // sigma sampling
  { target: `${DM}.sigma_sampling.EDMSampling`, params: { p_mean: num(-1.2), p_std: num(1.2) }, create: (p) => new EDMSampling(p.p_mean as number, p.p_std as number) },
  {
    target: `${DM}.sigma_sampling.DiscreteSampling`,
    params: {
      discretization_config: config('the discretization that makes the sigma grid'),
      num_idx: int(undefined, 'number of grid sigmas'),
      do_append_zero: bool(false),
      flip: bool(true),
    },
    create: (p, ctx) => {
      const disc = sub<DiscretizationLike>(ctx, p, 'discretization_config');
      return atPath(ctx, 'DiscreteSampling', () => new DiscreteSampling(disc, p.num_idx as number, p.do_append_zero as boolean, p.flip as boolean));
    },
  },
  // loss
  {
    target: `${DM}.loss.StandardDiffusionLoss`,
    params: {
      sigma_sampler_config: config('the training sigma sampler'),
      loss_weighting_config: config('the loss weighting'),
      loss_type: { type: 'string', default: 'l2', doc: "'l2' or 'l1' ('lpips' is not supported)" },
      offset_noise_level: num(0.0),
      batch2model_keys: { type: ['list', 'string'], default: null, doc: 'batch keys passed to the network' },
    },
    create: (p, ctx) => {
      const lossType = p.loss_type as string;
      const keys = stringList(ctx, p, 'batch2model_keys');
      // The reference asserts the loss type before building the parts.
      atPath(ctx, 'StandardDiffusionLoss', () => checkLossType(lossType));
      const sampler = sub<SigmaSampler>(ctx, p, 'sigma_sampler_config');
      const weighting = sub<DiffusionLossWeighting>(ctx, p, 'loss_weighting_config');
      return atPath(ctx, 'StandardDiffusionLoss', () => new StandardDiffusionLoss(sampler, weighting, lossType, p.offset_noise_level as number, keys));
    },
  },
  // LR schedulers
  {
    target: 'sgm.lr_scheduler.LambdaWarmUpCosineScheduler',
    params: {
      warm_up_steps: num(),
      lr_min: num(),
      lr_max: num(),
      lr_start: num(),
      max_decay_steps: num(),
      verbosity_interval: int(0),
    },
    create: (p) =>
      new LambdaWarmUpCosineScheduler(
        p.warm_up_steps as number,
        p.lr_min as number,
        p.lr_max as number,
        p.lr_start as number,
        p.max_decay_steps as number,
        p.verbosity_interval as number,
      ),
  },
  ...(
    [
      ['sgm.lr_scheduler.LambdaWarmUpCosineScheduler2', LambdaWarmUpCosineScheduler2],
      ['sgm.lr_scheduler.LambdaLinearScheduler', LambdaLinearScheduler],
    ] as const
  ).map(
    ([target, Cls]): TargetDef => ({
      target,
      params: {
        warm_up_steps: numList('warm-up steps, one per cycle'),
        f_min: numList('final multiplier, one per cycle'),
        f_max: numList('peak multiplier, one per cycle'),
        f_start: numList('initial multiplier, one per cycle'),
        cycle_lengths: numList('cycle lengths in steps'),
        verbosity_interval: int(0),
      },
      create: (p, ctx) =>
        atPath(
          ctx,
          target.slice(target.lastIndexOf('.') + 1),
          () =>
            new Cls(
              numbers(ctx, p, 'warm_up_steps'),
              numbers(ctx, p, 'f_min'),
              numbers(ctx, p, 'f_max'),
              numbers(ctx, p, 'f_start'),
              numbers(ctx, p, 'cycle_lengths'),
              p.verbosity_interval as number,
            ),
        ),
    }),
  ),
];

/**
 * Replaces the placeholders of the framework targets on `registry` with their implementations.
 * (The samplers register in this file too, in their own function.)
 */
export function registerFrameworkTargets(registry: Registry): void {
  for (const def of FRAMEWORK_TARGETS) {
    if (registry.has(def.target) && !registry.isPlaceholder(def.target)) continue; // already implemented (called twice)
    if (registry.has(def.target)) registry.replace(def);
    else registry.register(def);
  }
}
