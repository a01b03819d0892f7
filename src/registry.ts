// The project's targets: every class the reference's configs (and the reference code's default
// configs) name, registered on the default registry when this module is imported. Targets not
// implemented yet are placeholders that say which issue brings them; the module that implements
// one replaces its placeholder:
//
//   import { registry } from '../../registry.js';
//   registry.replace({ target: 'sgm.modules.diffusionmodules.discretizer.EDMDiscretization', params: {...}, create: ... });
//
// (importing this module first guarantees the placeholder exists; registerPlaceholders skips
// targets that are already registered, so the order of imports does not matter otherwise).
import { Registry, placeholder, registry } from './config/registry.js';
import type { TargetDef } from './config/registry.js';
import * as nn from './nn/index.js';
import { registerFrameworkTargets } from './modules/diffusionmodules/targets.js';
import { registerSamplerTargets } from './modules/diffusionmodules/sampling_targets.js';
import { registerUNetTargets } from './modules/diffusionmodules/openaimodel_targets.js';
import { registerAutoencoderTargets } from './models/autoencoder_targets.js';
import { registerVideoTargets } from './modules/video_targets.js';
import { registerEncoderTargets } from './modules/encoders/targets.js';
import { registerDataTargets } from './data/targets.js';
import { registerOptimizerTargets } from './training/optim.js';
import { registerDiffusionTargets } from './models/diffusion_targets.js';

export interface PlaceholderGroup {
  /** Which part of the project implements these targets. */
  issue: string;
  /** What that part is. */
  what: string;
  targets: string[];
}

const DM = 'sgm.modules.diffusionmodules';

/** The not-yet-implemented targets, by the part of the project that implements them. */
export const PLACEHOLDER_GROUPS: readonly PlaceholderGroup[] = [
  {
    issue: 'issue 3',
    what: 'denoisers, scalings, weightings, discretizers, guiders, samplers, sigma sampling, losses, LR schedulers',
    targets: [
      `${DM}.discretizer.EDMDiscretization`,
      `${DM}.discretizer.LegacyDDPMDiscretization`,
      `${DM}.denoiser.Denoiser`,
      `${DM}.denoiser.DiscreteDenoiser`,
      `${DM}.denoiser_scaling.EDMScaling`,
      `${DM}.denoiser_scaling.EpsScaling`,
      `${DM}.denoiser_scaling.VScaling`,
      `${DM}.denoiser_scaling.VScalingWithEDMcNoise`,
      `${DM}.denoiser_weighting.UnitWeighting`,
      `${DM}.denoiser_weighting.EDMWeighting`,
      `${DM}.denoiser_weighting.VWeighting`,
      `${DM}.denoiser_weighting.EpsWeighting`,
      `${DM}.loss_weighting.UnitWeighting`,
      `${DM}.loss_weighting.EDMWeighting`,
      `${DM}.loss_weighting.VWeighting`,
      `${DM}.loss_weighting.EpsWeighting`,
      `${DM}.guiders.IdentityGuider`,
      `${DM}.guiders.VanillaCFG`,
      `${DM}.guiders.LinearPredictionGuider`,
      `${DM}.sampling.EulerEDMSampler`,
      `${DM}.sampling.HeunEDMSampler`,
      `${DM}.sampling.EulerAncestralSampler`,
      `${DM}.sampling.DPMPP2SAncestralSampler`,
      `${DM}.sampling.DPMPP2MSampler`,
      `${DM}.sampling.LinearMultistepSampler`,
      `${DM}.sampling_utils.NoDynamicThresholding`,
      `${DM}.sigma_sampling.EDMSampling`,
      `${DM}.sigma_sampling.DiscreteSampling`,
      `${DM}.loss.StandardDiffusionLoss`,
      'sgm.lr_scheduler.LambdaWarmUpCosineScheduler',
      'sgm.lr_scheduler.LambdaWarmUpCosineScheduler2',
      'sgm.lr_scheduler.LambdaLinearScheduler',
    ],
  },
  {
    issue: 'issue 4',
    what: 'UNetModel, Encoder/Decoder, attention, distributions, regularizers, autoencoder models',
    targets: [
      `${DM}.openaimodel.UNetModel`,
      `${DM}.model.Encoder`,
      `${DM}.model.Decoder`,
      'sgm.models.autoencoder.AutoencodingEngine',
      'sgm.models.autoencoder.AutoencodingEngineLegacy',
      'sgm.models.autoencoder.AutoencoderKL',
      'sgm.models.autoencoder.AutoencoderKLModeOnly',
      'sgm.models.autoencoder.IdentityFirstStage',
      'sgm.modules.autoencoding.regularizers.DiagonalGaussianRegularizer',
    ],
  },
  {
    issue: 'issue 5',
    what: 'GeneralConditioner and the text/class/size embedders',
    targets: [
      'sgm.modules.GeneralConditioner',
      'sgm.modules.encoders.modules.GeneralConditioner',
      'sgm.modules.encoders.modules.ConcatTimestepEmbedderND',
      'sgm.modules.encoders.modules.ClassEmbedder',
      'sgm.modules.encoders.modules.FrozenCLIPEmbedder',
      'sgm.modules.encoders.modules.FrozenOpenCLIPEmbedder',
      'sgm.modules.encoders.modules.FrozenOpenCLIPEmbedder2',
    ],
  },
  {
    issue: 'issue 8',
    what: 'data, optimizers, main.py callbacks, trainer strategy and loggers, autoencoder training losses',
    targets: [
      'main.ImageLogger',
      'main.SetupCallback',
      'pytorch_lightning.callbacks.ModelCheckpoint',
      'pytorch_lightning.callbacks.LearningRateMonitor',
      'pytorch_lightning.loggers.WandbLogger',
      'pytorch_lightning.loggers.CSVLogger',
      'pytorch_lightning.strategies.DDPStrategy',
      'sgm.modules.autoencoding.losses.GeneralLPIPSWithDiscriminator',
      'sgm.modules.autoencoding.lpips.model.model.NLayerDiscriminator',
    ],
  },
  {
    issue: 'the video issue',
    what: 'Stable Video Diffusion (VideoUNet, temporal decoder, image/video conditioners)',
    targets: [
      `${DM}.video_model.VideoUNet`,
      `${DM}.video_model.VideoResBlock`,
      'sgm.modules.video_attention.VideoTransformerBlock',
      'sgm.modules.video_attention.SpatialVideoTransformer',
      'sgm.modules.autoencoding.temporal_ae.VideoDecoder',
      'sgm.modules.encoders.modules.VideoPredictionEmbedderWithEncoder',
      'sgm.modules.encoders.modules.FrozenOpenCLIPImageEmbedder',
      'sgm.modules.encoders.modules.FrozenOpenCLIPImagePredictionEmbedder',
    ],
  },
];

/** Targets implemented here because they have no dependencies. */
export const TRIVIAL_TARGETS: readonly TargetDef[] = [
  {
    // torch.nn.Identity(*args, **kwargs) ignores its arguments (the configs' `lossconfig`).
    target: 'torch.nn.Identity',
    params: {},
    acceptsExtra: true,
    create: () => new nn.Identity(),
  },
];

/**
 * Registers the trivial targets and a placeholder for every target in PLACEHOLDER_GROUPS that the
 * registry does not have yet (an implementation registered earlier is kept). Safe to call twice.
 */
export function registerPlaceholders(reg: Registry): void {
  for (const def of TRIVIAL_TARGETS) if (!reg.has(def.target)) reg.register(def);
  for (const group of PLACEHOLDER_GROUPS) {
    for (const target of group.targets) {
      if (!reg.has(target)) reg.register(placeholder(target, `arrives with ${group.issue}: ${group.what}`));
    }
  }
}

registerPlaceholders(registry);
registerFrameworkTargets(registry);
registerSamplerTargets(registry);
registerUNetTargets(registry);
registerAutoencoderTargets(registry);
registerVideoTargets(registry);
registerEncoderTargets(registry);
registerDataTargets(registry);
registerOptimizerTargets(registry);
registerDiffusionTargets(registry);

export { registry };
