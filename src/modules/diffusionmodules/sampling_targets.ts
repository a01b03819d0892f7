// Config targets of the samplers (sgm.modules.diffusionmodules.sampling.*): the reference's
// constructor params, checked by the registry, with the nested discretization and guider configs
// instantiated through the context (so errors name their config path).
import { ConfigError, paramPath, type InstantiateContext, type ParamSpec, type Registry, type TargetDef } from '../../config/index.js';
import {
  DPMPP2MSampler,
  DPMPP2SAncestralSampler,
  EulerAncestralSampler,
  EulerEDMSampler,
  HeunEDMSampler,
  LinearMultistepSampler,
  type BaseDiffusionSamplerOptions,
  type SamplerDiscretization,
  type SamplerGuider,
} from './sampling.js';

const DM = 'sgm.modules.diffusionmodules';

const BASE_PARAMS: Record<string, ParamSpec> = {
  discretization_config: { type: 'config', required: true, doc: 'the discretization (sigma schedule) config' },
  num_steps: { type: 'int', default: null, doc: 'default number of sampling steps' },
  guider_config: { type: 'config', default: null, doc: 'the guider config (default IdentityGuider)' },
  verbose: { type: 'bool', default: false },
  device: { type: 'string', default: 'cuda', doc: "kept for compatibility; graphs run on the engine's runtime device" },
};

const EDM_PARAMS: Record<string, ParamSpec> = {
  s_churn: { type: 'number', default: 0 },
  s_tmin: { type: 'number', default: 0 },
  s_tmax: { type: 'number', default: Infinity },
  s_noise: { type: 'number', default: 1 },
};

const ANCESTRAL_PARAMS: Record<string, ParamSpec> = {
  eta: { type: 'number', default: 1 },
  s_noise: { type: 'number', default: 1 },
};

const LMS_PARAMS: Record<string, ParamSpec> = {
  order: { type: 'int', default: 4 },
};

/** A numeric param's value check (the type was checked by the registry). */
function check(ctx: InstantiateContext, target: string, name: string, v: unknown, ok: (n: number) => boolean, what: string): void {
  if (typeof v === 'number' && !ok(v)) {
    throw new ConfigError(`${paramPath(ctx, name)}: ${target.split('.').pop()} needs ${name} ${what}, got ${v}`, { path: paramPath(ctx, name) });
  }
}

function baseOptions(p: Record<string, unknown>, ctx: InstantiateContext, target: string): BaseDiffusionSamplerOptions {
  if (p['num_steps'] !== null) check(ctx, target, 'num_steps', p['num_steps'], (n) => n >= 1, '>= 1 (or null)');
  const discretization = ctx.instantiate<SamplerDiscretization>(p['discretization_config'], paramPath(ctx, 'discretization_config'));
  const guider = p['guider_config'] === null ? null : ctx.instantiate<SamplerGuider>(p['guider_config'], paramPath(ctx, 'guider_config'));
  return {
    discretization,
    guider,
    numSteps: p['num_steps'] as number | null,
    verbose: p['verbose'] as boolean,
    device: p['device'] as string,
  };
}

function edm(target: string, Cls: typeof EulerEDMSampler | typeof HeunEDMSampler): TargetDef {
  return {
    target,
    params: { ...BASE_PARAMS, ...EDM_PARAMS },
    create(p, ctx) {
      check(ctx, target, 's_churn', p['s_churn'], (n) => n >= 0, '>= 0');
      check(ctx, target, 's_noise', p['s_noise'], (n) => n >= 0, '>= 0');
      check(ctx, target, 's_tmin', p['s_tmin'], (n) => !Number.isNaN(n), 'to be a number');
      check(ctx, target, 's_tmax', p['s_tmax'], (n) => !Number.isNaN(n), 'to be a number');
      return new Cls({
        ...baseOptions(p, ctx, target),
        sChurn: p['s_churn'] as number,
        sTmin: p['s_tmin'] as number,
        sTmax: p['s_tmax'] as number,
        sNoise: p['s_noise'] as number,
      });
    },
  };
}

function ancestral(target: string, Cls: typeof EulerAncestralSampler | typeof DPMPP2SAncestralSampler): TargetDef {
  return {
    target,
    params: { ...BASE_PARAMS, ...ANCESTRAL_PARAMS },
    create(p, ctx) {
      check(ctx, target, 'eta', p['eta'], (n) => n >= 0, '>= 0');
      check(ctx, target, 's_noise', p['s_noise'], (n) => n >= 0, '>= 0');
      return new Cls({ ...baseOptions(p, ctx, target), eta: p['eta'] as number, sNoise: p['s_noise'] as number });
    },
  };
}

/** The sampler target definitions. */
export const SAMPLER_TARGETS: readonly TargetDef[] = [
  edm(`${DM}.sampling.EulerEDMSampler`, EulerEDMSampler),
  edm(`${DM}.sampling.HeunEDMSampler`, HeunEDMSampler),
  ancestral(`${DM}.sampling.EulerAncestralSampler`, EulerAncestralSampler),
  ancestral(`${DM}.sampling.DPMPP2SAncestralSampler`, DPMPP2SAncestralSampler),
  {
    target: `${DM}.sampling.DPMPP2MSampler`,
    params: { ...BASE_PARAMS },
    create: (p, ctx) => new DPMPP2MSampler(baseOptions(p, ctx, `${DM}.sampling.DPMPP2MSampler`)),
  },
  {
    target: `${DM}.sampling.LinearMultistepSampler`,
    params: { ...BASE_PARAMS, ...LMS_PARAMS },
    create(p, ctx) {
      const target = `${DM}.sampling.LinearMultistepSampler`;
      check(ctx, target, 'order', p['order'], (n) => n >= 1, '>= 1');
      return new LinearMultistepSampler({ ...baseOptions(p, ctx, target), order: p['order'] as number });
    },
  },
];

/**
 * Registers the samplers on `registry`: replaces their placeholders (registers them where the
 * registry has none). Targets already implemented are left alone, so calling it twice is safe.
 */
export function registerSamplerTargets(registry: Registry): void {
  for (const def of SAMPLER_TARGETS) {
    if (!registry.has(def.target)) registry.register(def);
    else if (registry.isPlaceholder(def.target)) registry.replace(def);
  }
}
