// sgm/inference/api.py: a typed sampling API. A SamplingPipeline loads an engine from a preset (or
// a config + checkpoint) and samples txt2img, img2img, the refiner stage and Turbo, with the
// reference's SamplingParams defaults. Samplers are built as scripts/demo/streamlit_helpers'
// get_sampler builds them (api.py's own guider config cannot be instantiated in the seed version:
// it passes dyn_thresh_config to VanillaCFG).
import sharp from 'sharp';
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/index.js';
import '../registry.js';
import { instantiateFromConfig, loadConfigs } from '../config/index.js';
import { loadModelFromConfig, type CheckpointLoadReport, type LoadCheckpointOptions } from '../models/load.js';
import type { DiffusionEngine } from '../models/diffusion.js';
import type { BaseDiffusionSampler } from '../modules/diffusionmodules/sampling.js';
import { Img2ImgDiscretizationWrapper, Txt2NoisyDiscretizationWrapper } from '../modules/diffusionmodules/discretizer.js';
import { SubstepSampler } from '../modules/diffusionmodules/turbo.js';
import { LegacyDDPMDiscretization } from '../modules/diffusionmodules/discretizer.js';
import { useClipTokenizer } from '../modules/encoders/modules.js';
import { ClipTokenizer } from '../tokenizers/clip.js';
import { readImageRgb } from '../io/image.js';
import { doImg2Img, doSample, getUniqueEmbedderKeysFromConditioner, turboSample, checkSize, type SampleResult, type SamplingRunOptions, type ValueDict } from './helpers.js';
import {
  DEFAULT_SAMPLING_PARAMS,
  DISCRETIZATION_NAMES,
  GUIDER_NAMES,
  SAMPLER_NAMES,
  checkCheckpointPresent,
  findPresetVocab,
  presetConfigPath,
  resolvePreset,
  type Preset,
  type SamplingParams,
} from './presets.js';

const DM = 'sgm.modules.diffusionmodules';

/**
 * The image-size multiples a config supports, read from the config alone (no model is built):
 * F = the first stage's downsampling (2^(levels-1) of its ddconfig.ch_mult; 1 without one), and
 * `multiple` = F times the UNet's downsampling (2^(levels-1) of channel_mult), because every UNet
 * level halves the latent and the skip connections need the halves to match on the way up.
 */
export function sizeMultiples(config: Record<string, unknown>): { F: number; multiple: number; C: number } {
  const params = ((config['model'] as Record<string, unknown> | undefined)?.['params'] ?? {}) as Record<string, any>;
  const fs = params['first_stage_config']?.params;
  const dd = fs?.ddconfig ?? fs?.encoder_config?.params;
  const F = Array.isArray(dd?.ch_mult) ? 2 ** (dd.ch_mult.length - 1) : 1;
  const net = params['network_config']?.params;
  const cm = net?.channel_mult;
  const U = Array.isArray(cm) ? 2 ** (cm.length - 1) : 1;
  // Latent channels: the autoencoder's embed_dim (z_channels), or the network's input channels
  // for a pixel-space model (IdentityFirstStage).
  const C = Number(fs?.embed_dim ?? dd?.z_channels ?? net?.in_channels ?? 4);
  return { F, multiple: F * U, C };
}

/** A bad sampling option (unknown sampler, steps < 1, ...): the message names the option. */
export class SamplingOptionError extends Error {
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}`);
    this.name = 'SamplingOptionError';
  }
}

function closest(name: string, options: readonly string[]): string {
  const n = name.toLowerCase();
  return options.find((o) => o.toLowerCase().includes(n) || n.includes(o.toLowerCase())) ?? options[0]!;
}

/** Checks sampling params before any model loads; returns the filled-in params. */
export function checkSamplingParams(params: Partial<SamplingParams>, base: Readonly<SamplingParams> = DEFAULT_SAMPLING_PARAMS, F = 8): SamplingParams {
  const p: SamplingParams = { ...base, ...params };
  if (!SAMPLER_NAMES.includes(p.sampler)) throw new SamplingOptionError('sampler', `unknown sampler '${p.sampler}' (did you mean ${closest(p.sampler, SAMPLER_NAMES)}?); choose one of ${SAMPLER_NAMES.join(', ')}`);
  if (!DISCRETIZATION_NAMES.includes(p.discretization)) throw new SamplingOptionError('discretization', `unknown discretization '${p.discretization}'; choose one of ${DISCRETIZATION_NAMES.join(', ')}`);
  if (!GUIDER_NAMES.includes(p.guider)) throw new SamplingOptionError('guider', `unknown guider '${p.guider}'; choose one of ${GUIDER_NAMES.join(', ')}`);
  if (!Number.isInteger(p.steps) || p.steps < 1) throw new SamplingOptionError('steps', `must be an integer >= 1, got ${p.steps}`);
  if (!Number.isFinite(p.scale)) throw new SamplingOptionError('scale', `must be a number, got ${p.scale}`);
  for (const k of ['width', 'height'] as const) {
    if (!Number.isInteger(p[k]) || p[k] < F || p[k] % F !== 0) throw new SamplingOptionError(k, `${p[k]} is not a positive multiple of ${F} (the autoencoder's downsampling factor)`);
  }
  if (p.sampler === 'LinearMultistepSampler' && (!Number.isInteger(p.order) || p.order < 1)) throw new SamplingOptionError('order', `must be an integer >= 1, got ${p.order}`);
  return p;
}

/** The discretization config of the params (api.py get_discretization_config). */
export function discretizationConfig(p: SamplingParams): Record<string, unknown> {
  if (p.discretization === 'EDMDiscretization') return { target: `${DM}.discretizer.EDMDiscretization`, params: { sigma_min: p.sigma_min, sigma_max: p.sigma_max, rho: p.rho } };
  return { target: `${DM}.discretizer.LegacyDDPMDiscretization` };
}

/** The guider config of the params (streamlit_helpers.get_guider: VanillaCFG(scale) or IdentityGuider). */
export function guiderConfig(p: SamplingParams): Record<string, unknown> {
  if (p.guider === 'IdentityGuider') return { target: `${DM}.guiders.IdentityGuider` };
  return { target: `${DM}.guiders.VanillaCFG`, params: { scale: p.scale } };
}

/** The sampler for the params (api.py get_sampler_config, with the demos' guider). */
export function getSampler(params: Partial<SamplingParams>): BaseDiffusionSampler {
  const p = checkSamplingParams(params, DEFAULT_SAMPLING_PARAMS, 1); // sizes are the caller's to check (they depend on the model)
  const common = { num_steps: p.steps, discretization_config: discretizationConfig(p), guider_config: guiderConfig(p), verbose: false };
  const extra: Record<string, Record<string, unknown>> = {
    EulerEDMSampler: { s_churn: p.s_churn, s_tmin: p.s_tmin, s_tmax: p.s_tmax, s_noise: p.s_noise },
    HeunEDMSampler: { s_churn: p.s_churn, s_tmin: p.s_tmin, s_tmax: p.s_tmax, s_noise: p.s_noise },
    EulerAncestralSampler: { eta: p.eta, s_noise: p.s_noise },
    DPMPP2SAncestralSampler: { eta: p.eta, s_noise: p.s_noise },
    DPMPP2MSampler: {},
    LinearMultistepSampler: { order: p.order },
  };
  return instantiateFromConfig<BaseDiffusionSampler>({ target: `${DM}.sampling.${p.sampler}`, params: { ...common, ...extra[p.sampler] } }, { path: 'sampler' });
}

export interface PipelineLoadOptions extends LoadCheckpointOptions {
  /** A model preset (SDXL-base-1.0, SD-2.1, SDXL-Turbo, ...). */
  preset?: string | Preset;
  /** A config file (the reference's YAML) instead of the preset's. */
  config?: string;
  /** The checkpoint file instead of the preset's `modelDir/<file>`. */
  ckpt?: string | null;
  /** Folder of the checkpoints and the CLIP vocabulary (default `checkpoints`). */
  modelDir?: string;
  /** Folder of the CLIP vocabulary (default: found in modelDir). */
  vocabDir?: string;
  /** Execution provider (cpu default). */
  device?: T.Device;
  threads?: number;
  /**
   * Whether the model's unconditional conditioning zeroes the text embedders (SDXL base); default
   * from the preset, else inferred from the conditioner (size conditioning without aesthetic score).
   */
  isLegacy?: boolean;
  /** Print the checkpoint report (stderr). Default true. */
  verbose?: boolean;
}

/** Seeds a fresh torch-compatible generator (torch.manual_seed(seed) right before sampling). */
function generatorFor(seed: number | undefined): T.Generator {
  const s = seed ?? Math.floor(Math.random() * 2 ** 32);
  return new T.Generator().manualSeed(s);
}

export interface RunOptions extends Omit<SamplingRunOptions, 'generator'> {
  /** torch.manual_seed(seed) before sampling (default: a random seed). */
  seed?: number;
  generator?: T.Generator;
  /** Extra value-dict entries, e.g. `cls` for class-conditional models. */
  valueDict?: ValueDict;
}

export class SamplingPipeline {
  private constructor(
    readonly engine: DiffusionEngine,
    readonly preset: Preset | null,
    readonly configPath: string,
    readonly ckptPath: string | null,
    readonly isLegacy: boolean,
    readonly report: CheckpointLoadReport | null,
    /** Latent channels C, first-stage factor F, and the size multiple the UNet needs (from the config). */
    readonly sizes: { C: number; F: number; multiple: number },
  ) {}

  /**
   * Loads the engine: the preset's (or the given) config, the checkpoint (`modelDir/<file>` or
   * `ckpt`; null builds random weights, for tests and benchmarks), the CLIP vocabulary.
   */
  static load(opts: PipelineLoadOptions): SamplingPipeline {
    const preset = opts.preset ? resolvePreset(opts.preset) : null;
    if (!preset && !opts.config) throw new SamplingOptionError('preset', 'give a model preset or a config file (and a checkpoint)');
    const configPath = opts.config ?? presetConfigPath(preset!);
    const modelDir = opts.modelDir ?? 'checkpoints';
    let ckpt: string | null;
    if (opts.ckpt === null) ckpt = null;
    else if (preset) ckpt = checkCheckpointPresent(preset, modelDir, { ckpt: opts.ckpt });
    else if (opts.ckpt) ckpt = opts.ckpt;
    else throw new SamplingOptionError('ckpt', `a config (${configPath}) needs a checkpoint file`);
    if (opts.device || opts.threads) T.setRuntimeDefaults({ ...(opts.device ? { device: opts.device } : {}), ...(opts.threads ? { threads: opts.threads } : {}) });
    const config = loadConfigs([configPath]) as Record<string, unknown>;
    const { engine, report } = loadModelFromConfig(config, ckpt, { ...opts, configPath });
    const hasText = getUniqueEmbedderKeysFromConditioner(engine).includes('txt');
    if (hasText) {
      const dir = opts.vocabDir ?? (preset ? findPresetVocab(preset, modelDir)[0]?.dir : modelDir);
      if (dir) useClipTokenizer(ClipTokenizer.fromFiles(dir));
    }
    const keys = getUniqueEmbedderKeysFromConditioner(engine);
    const isLegacy = opts.isLegacy ?? preset?.is_legacy ?? !(keys.includes('original_size_as_tuple') && !keys.includes('aesthetic_score'));
    return new SamplingPipeline(engine, preset, configPath, ckpt, isLegacy, report, sizeMultiples(config));
  }

  /** C and F of the first stage (latent channels and downsampling factor). */
  get latentSpec(): { C: number; F: number } {
    return { C: this.sizes.C, F: this.sizes.F };
  }

  /** The params with the preset's defaults, checked against this model's sizes. */
  private check(params: Partial<SamplingParams>): SamplingParams {
    const p = checkSamplingParams(params, this.defaults(), this.sizes.F);
    for (const k of ['width', 'height'] as const) {
      if (p[k] % this.sizes.multiple !== 0) throw new SamplingOptionError(k, `${p[k]} is not a multiple of ${this.sizes.multiple} (this model's UNet halves the latent ${Math.log2(this.sizes.multiple / this.sizes.F)} times)`);
    }
    return p;
  }

  /**
   * The embedders zeroed in the unconditional conditioning: the preset's, else the reference's
   * rule (['txt'] for non-legacy models) plus 'cls' for class-conditional models (as log_images
   * zeroes every conditioner key, which makes classifier-free guidance work for them).
   */
  private forceUc(): string[] {
    if (this.preset) return [...this.preset.force_uc_zero_embeddings];
    const keys = getUniqueEmbedderKeysFromConditioner(this.engine);
    return [...(this.isLegacy ? [] : ['txt']), ...(keys.includes('cls') ? ['cls'] : [])];
  }

  /** The preset's sampling defaults (api.py's SamplingParams with the preset's size). */
  defaults(): SamplingParams {
    return { ...DEFAULT_SAMPLING_PARAMS, ...(this.preset?.sampling ?? {}) };
  }

  /** api.py text_to_image: do_sample with the value dict built from the params. */
  async textToImage(params: Partial<SamplingParams>, prompt: string, negativePrompt = '', samples = 1, opts: RunOptions = {}): Promise<SampleResult> {
    const p = this.check(params);
    return this.txt2img(p, getSampler(p), prompt, negativePrompt, samples, opts);
  }

  private txt2img(p: SamplingParams, sampler: BaseDiffusionSampler, prompt: string, negativePrompt: string, samples: number, opts: RunOptions): Promise<SampleResult> {
    const vd: ValueDict = { ...p, prompt, negative_prompt: negativePrompt, target_width: p.width, target_height: p.height, ...opts.valueDict };
    const { C, F } = this.latentSpec;
    return doSample(this.engine, sampler, vd, samples, p.height, p.width, C, F, {
      ...opts,
      forceUcZeroEmbeddings: this.forceUc(),
      generator: opts.generator ?? generatorFor(opts.seed),
    });
  }

  /**
   * api.py image_to_image: the image (a [-1, 1] (B, 3, H, W) tensor, or a file read and cut down
   * to multiples of 64 as get_input_image_tensor does) noised to `strength` and denoised.
   */
  async imageToImage(params: Partial<SamplingParams>, image: Tensor | string, prompt: string, negativePrompt = '', samples = 1, strength = 1.0, opts: RunOptions = {}): Promise<SampleResult> {
    const p = this.check(params);
    if (!(strength >= 0 && strength <= 1)) throw new SamplingOptionError('strength', `must be in [0, 1], got ${strength}`);
    const img = typeof image === 'string' ? await loadInitImage(image, samples) : image;
    const sampler = getSampler(p);
    if (strength < 1.0) sampler.discretization = new Img2ImgDiscretizationWrapper(sampler.discretization, strength);
    const [h, w] = [img.shape[2]!, img.shape[3]!];
    const vd: ValueDict = { ...p, prompt, negative_prompt: negativePrompt, target_width: w, target_height: h, ...opts.valueDict };
    return doImg2Img(img, this.engine, sampler, vd, samples, {
      ...opts,
      forceUcZeroEmbeddings: this.forceUc(),
      generator: opts.generator ?? generatorFor(opts.seed),
    });
  }

  /**
   * api.py refiner: this (refiner) engine on a base model's latents, noised to `strength` (default:
   * the preset's 0.15 for a refiner); `finishDenoising` is the demo's mode that continues a base
   * run stopped early (no noise added; see txtToImageForRefiner).
   */
  async refiner(params: Partial<SamplingParams>, latents: Tensor, prompt: string, negativePrompt = '', samples = 1, opts: RunOptions & { strength?: number; finishDenoising?: boolean } = {}): Promise<SampleResult> {
    const p = this.check(params);
    const strength = opts.strength ?? this.preset?.refiner?.strength ?? 0.15;
    const sampler = getSampler(p);
    sampler.discretization = new Img2ImgDiscretizationWrapper(sampler.discretization, strength);
    const vd: ValueDict = {
      orig_width: latents.shape[3]! * 8,
      orig_height: latents.shape[2]! * 8,
      target_width: latents.shape[3]! * 8,
      target_height: latents.shape[2]! * 8,
      prompt,
      negative_prompt: negativePrompt,
      crop_coords_top: 0,
      crop_coords_left: 0,
      aesthetic_score: 6.0,
      negative_aesthetic_score: 2.5,
    };
    return doImg2Img(latents, this.engine, sampler, vd, samples, {
      ...opts,
      skipEncode: true,
      addNoise: !(opts.finishDenoising ?? false),
      generator: opts.generator ?? generatorFor(opts.seed),
    });
  }

  /**
   * The base stage of the demo's default refiner flow: sampling stops at the noise level where the
   * refiner takes over (Txt2NoisyDiscretizationWrapper(strength, original_steps)).
   */
  async textToImageForRefiner(params: Partial<SamplingParams>, prompt: string, negativePrompt = '', samples = 1, strength = 0.15, opts: RunOptions = {}): Promise<SampleResult> {
    const p = this.check(params);
    const sampler = getSampler(p);
    sampler.discretization = new Txt2NoisyDiscretizationWrapper(sampler.discretization, strength, p.steps);
    return this.txt2img(p, sampler, prompt, negativePrompt, samples, opts);
  }

  /** scripts/demo/turbo.py: 1-4 steps, ancestral Euler on the fixed sigma subset, no CFG, numpy noise from `seed`. */
  async turbo(prompt: string, opts: { steps?: number; seed?: number; width?: number; height?: number; samples?: number } & Omit<RunOptions, 'seed' | 'generator' | 'noise'> = {}): Promise<SampleResult & { samplesUint8: Uint8Array }> {
    const steps = opts.steps ?? 1;
    if (!Number.isInteger(steps) || steps < 1 || steps > 4) throw new SamplingOptionError('steps', `Turbo samples in 1 to 4 steps, got ${steps}`);
    const seed = opts.seed ?? 0;
    if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new SamplingOptionError('seed', `Turbo's numpy seed must be an integer in [0, 2^32), got ${seed}`);
    const W = opts.width ?? this.preset?.W ?? 512;
    const H = opts.height ?? this.preset?.H ?? 512;
    checkSize(H, W, 8);
    const sampler = new SubstepSampler({ nSampleSteps: steps, numSteps: 1000, eta: 1.0, discretization: new LegacyDDPMDiscretization() });
    return turboSample(this.engine, sampler, prompt, H, W, seed, opts.samples ?? 1, opts);
  }
}

/**
 * get_input_image_tensor: the image resized down to multiples of 64 (bicubic, as PIL's default),
 * uint8 RGB -> float32 / 127.5 - 1, (1, 3, H, W), repeated to `samples`.
 */
export async function loadInitImage(path: string, samples = 1): Promise<Tensor> {
  let img = await readImageRgb(path);
  const w = img.width - (img.width % 64);
  const h = img.height - (img.height % 64);
  if (w < 64 || h < 64) throw new SamplingOptionError('init-image', `${path} is ${img.width}x${img.height}; img2img needs at least 64x64 pixels`);
  if (w !== img.width || h !== img.height) {
    const buf = await sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.length), { raw: { width: img.width, height: img.height, channels: 3 } })
      .resize(w, h, { kernel: 'cubic', fit: 'fill' })
      .raw()
      .toBuffer();
    img = { data: new Uint8Array(buf.buffer, buf.byteOffset, buf.length), width: w, height: h };
  }
  const out = new Float32Array(samples * 3 * h * w);
  for (let b = 0; b < samples; b++)
    for (let c = 0; c < 3; c++)
      for (let i = 0; i < h * w; i++) out[(b * 3 + c) * h * w + i] = Math.fround(Math.fround(img.data[i * 3 + c]! / 127.5) - 1);
  return T.constant(out, [samples, 3, h, w], 'float32');
}
