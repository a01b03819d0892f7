// Parity: every case in fixtures/framework, dispatched on its kind.
import { parityArea } from '../helpers/fixtures.js';
import { rngRunners } from './framework/rng.js';
import { discretizationRunners } from './framework/discretization.js';
import { scalingRunners } from './framework/scaling.js';
import { denoiserRunners } from './framework/denoiser.js';
import { weightingRunners } from './framework/weighting.js';
import { sigmaSamplingRunners } from './framework/sigma_sampling.js';
import { guiderRunners } from './framework/guider.js';
import { lossRunners } from './framework/loss.js';
import { lrSchedulerRunners } from './framework/lr_scheduler.js';
import { samplerRunners } from './framework/sampler.js';

parityArea('framework', {
  ...rngRunners,
  ...discretizationRunners,
  ...scalingRunners,
  ...denoiserRunners,
  ...weightingRunners,
  ...sigmaSamplingRunners,
  ...guiderRunners,
  ...lossRunners,
  ...lrSchedulerRunners,
  ...samplerRunners,
});
