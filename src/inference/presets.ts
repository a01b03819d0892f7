// Model presets: every model the reference's inference API (sgm/inference/api.py) and demos
// (scripts/demo/sampling.py, scripts/demo/turbo.py) offer, with the settings those scripts use:
// default size, latent channels and factor, whether the model is "legacy" (takes a negative
// prompt) and guided (classifier-free guidance), its config in configs/inference/, the checkpoint
// file the reference expects under checkpoints/, where the weights are published, the default
// sampling settings, refiner pairing, and the tokenizer vocabularies its text encoders need.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { editDistance } from '../config/errors.js';
import { OPEN_CLIP_VOCAB_FILE } from '../tokenizers/index.js';

// ------------------------------------------------------------------------- sampling settings

/** api.py's Sampler enum. */
export type SamplerName =
  | 'EulerEDMSampler'
  | 'HeunEDMSampler'
  | 'EulerAncestralSampler'
  | 'DPMPP2SAncestralSampler'
  | 'DPMPP2MSampler'
  | 'LinearMultistepSampler';
/** api.py's Discretization enum. */
export type DiscretizationName = 'LegacyDDPMDiscretization' | 'EDMDiscretization';
/** api.py's Guider enum. */
export type GuiderName = 'VanillaCFG' | 'IdentityGuider';
/** api.py's Thresholder enum (only 'None' exists). */
export type ThresholderName = 'None';

export const SAMPLER_NAMES: readonly SamplerName[] = [
  'EulerEDMSampler',
  'HeunEDMSampler',
  'EulerAncestralSampler',
  'DPMPP2SAncestralSampler',
  'DPMPP2MSampler',
  'LinearMultistepSampler',
];
export const DISCRETIZATION_NAMES: readonly DiscretizationName[] = ['LegacyDDPMDiscretization', 'EDMDiscretization'];
export const GUIDER_NAMES: readonly GuiderName[] = ['VanillaCFG', 'IdentityGuider'];

/**
 * api.py's SamplingParams, field for field (snake_case, so an object of these is the `value_dict`
 * the reference builds with `asdict(params)`).
 */
export interface SamplingParams {
  width: number;
  height: number;
  steps: number;
  sampler: SamplerName;
  discretization: DiscretizationName;
  guider: GuiderName;
  thresholder: ThresholderName;
  /** CFG scale (VanillaCFG). */
  scale: number;
  aesthetic_score: number;
  negative_aesthetic_score: number;
  img2img_strength: number;
  orig_width: number;
  orig_height: number;
  crop_coords_top: number;
  crop_coords_left: number;
  /** EDMDiscretization only. */
  sigma_min: number;
  sigma_max: number;
  rho: number;
  /** Euler/Heun EDM samplers only. */
  s_churn: number;
  s_tmin: number;
  s_tmax: number;
  /** EDM and ancestral samplers. */
  s_noise: number;
  /** Ancestral samplers only. */
  eta: number;
  /** LinearMultistepSampler only. */
  order: number;
}

/** The defaults of api.py's SamplingParams dataclass (1024x1024 whatever the model). */
export const DEFAULT_SAMPLING_PARAMS: Readonly<SamplingParams> = Object.freeze({
  width: 1024,
  height: 1024,
  steps: 50,
  sampler: 'DPMPP2MSampler',
  discretization: 'LegacyDDPMDiscretization',
  guider: 'VanillaCFG',
  thresholder: 'None',
  scale: 6.0,
  aesthetic_score: 5.0,
  negative_aesthetic_score: 5.0,
  img2img_strength: 1.0,
  orig_width: 1024,
  orig_height: 1024,
  crop_coords_top: 0,
  crop_coords_left: 0,
  sigma_min: 0.0292,
  sigma_max: 14.6146,
  rho: 3.0,
  s_churn: 0.0,
  s_tmin: 0.0,
  s_tmax: 999.0,
  s_noise: 1.0,
  eta: 1.0,
  order: 4,
});

/**
 * turbo.py's sampling: `SubstepSampler`, an EulerAncestralSampler (eta 1) over the 1000-step
 * LegacyDDPM schedule that only visits `steps_subset[:steps]` plus the final index, with no
 * guidance (uc = cond, so the IdentityGuider), starting from `sqrt(1 + sigma_0^2)`-scaled noise.
 * Noise is numpy's: the start noise is `np.random.RandomState(seed).randn(shape)`, and the k-th
 * ancestral step draws from `RandomState(seed + k)` (SeededNoise adds 1 before each draw).
 */
export interface TurboSampling {
  sampler: 'EulerAncestralSampler';
  eta: number;
  s_noise: number;
  discretization: 'LegacyDDPMDiscretization';
  /** Steps of the full discretization the subset is taken from. */
  discretization_steps: number;
  /** Indices into the discretization's sigmas: the first `steps`, then the last entry. */
  steps_subset: readonly number[];
  /** Default number of sampling steps (the demo's number input: 1, at most `max_steps`). */
  steps: number;
  max_steps: number;
  guider: 'IdentityGuider';
  noise: 'numpy';
  seed: number;
}

export const TURBO_SAMPLING: Readonly<TurboSampling> = Object.freeze({
  sampler: 'EulerAncestralSampler',
  eta: 1.0,
  s_noise: 1.0,
  discretization: 'LegacyDDPMDiscretization',
  discretization_steps: 1000,
  steps_subset: Object.freeze([0, 100, 200, 300, 1000]),
  steps: 1,
  max_steps: 4,
  guider: 'IdentityGuider',
  noise: 'numpy',
  seed: 0,
});

/**
 * sampling.py's two-stage pipeline (SDXL base, then a refiner on its latents).
 *   - `strength`: the refiner's img2img strength ("Refinement strength", default 0.15).
 *   - `finish_denoising` (default on): the base stops early at that strength (its discretization
 *     wrapped by Txt2NoisyDiscretizationWrapper) and the refiner finishes the still-noisy latents
 *     without adding noise; off: the base runs to the end and the refiner re-noises at `strength`.
 *   - the refiner's conditioning uses aesthetic score 6.0 / negative 2.5, crop (0, 0), and the
 *     latent size x 8 as original and target size.
 */
export interface RefinerDefaults {
  strength: number;
  finish_denoising: boolean;
  aesthetic_score: number;
  negative_aesthetic_score: number;
  /** Base presets this refiner refines (the demo offers refiners for every SDXL-base version). */
  refines: readonly string[];
}

/** sampling.py's SD_XL_BASE_RATIOS: width / height ratio -> [width, height]; default 1024x1024. */
export const SDXL_BASE_RESOLUTIONS: Readonly<Record<string, readonly [number, number]>> = Object.freeze({
  '0.5': [704, 1408],
  '0.52': [704, 1344],
  '0.57': [768, 1344],
  '0.6': [768, 1280],
  '0.68': [832, 1216],
  '0.72': [832, 1152],
  '0.78': [896, 1152],
  '0.82': [896, 1088],
  '0.88': [960, 1088],
  '0.94': [960, 1024],
  '1.0': [1024, 1024],
  '1.07': [1024, 960],
  '1.13': [1088, 960],
  '1.21': [1088, 896],
  '1.29': [1152, 896],
  '1.38': [1152, 832],
  '1.46': [1216, 832],
  '1.67': [1280, 768],
  '1.75': [1344, 768],
  '1.91': [1344, 704],
  '2.0': [1408, 704],
  '2.09': [1472, 704],
  '2.4': [1536, 640],
  '2.5': [1600, 640],
  '2.89': [1664, 576],
  '3.0': [1728, 576],
});

// ------------------------------------------------------------------------------ vocabularies

/** The tokenizer layouts the text embedders use (see src/modules/encoders/modules.ts). */
export type VocabKind = 'open_clip' | 'hf_clip';

/**
 * A vocabulary a preset's text encoders need, looked up in the model folder (also in its `clip/`
 * and `tokenizer/` subfolders, as ClipTokenizer.fromFiles does). Both layouts hold the same CLIP
 * BPE and give identical ids, so either satisfies either kind; `files` is the layout the
 * reference's embedder reads.
 */
export interface VocabRequirement {
  /** Tokenizer kind, as `setDefaultTokenizer(kind, ...)` takes it. */
  kind: VocabKind;
  /** The embedder targets (last name) that need it. */
  embedders: readonly string[];
  /** File names of the layout the reference reads. */
  files: readonly string[];
}

const OPEN_CLIP_VOCAB: readonly string[] = Object.freeze([OPEN_CLIP_VOCAB_FILE]);
const HF_CLIP_VOCAB: readonly string[] = Object.freeze(['vocab.json', 'merges.txt']);
const VOCAB_LAYOUTS: readonly (readonly string[])[] = [OPEN_CLIP_VOCAB, HF_CLIP_VOCAB];

// ----------------------------------------------------------------------------------- presets

export type PresetFamily = 'sdxl-base' | 'sdxl-refiner' | 'sd-2.1' | 'sdxl-turbo' | 'sd-turbo' | 'toy';

export interface Preset {
  /** The demos' name (`SDXL-base-1.0`). */
  name: string;
  /** api.py's ModelArchitecture id (`stable-diffusion-xl-v1-base`), or null (the turbo models). */
  architecture: string | null;
  family: PresetFamily;
  /** Default image height and width in pixels. */
  H: number;
  W: number;
  /** Latent channels. */
  C: number;
  /** Downsampling factor of the first stage (pixels per latent). */
  F: number;
  /**
   * The reference's `is_legacy`: the model takes a negative prompt; when false, the unconditional
   * text embedding is zeros (`force_uc_zero_embeddings: ['txt']`).
   */
  is_legacy: boolean;
  /** Uses classifier-free guidance (false for the turbo models). */
  is_guided: boolean;
  /** `force_uc_zero_embeddings` of the reference's sampling calls. */
  force_uc_zero_embeddings: readonly string[];
  /** Config file name in the package's configs/inference/. */
  config: string;
  /** Checkpoint file name, looked for in the model folder (the reference's `checkpoints/`). */
  checkpoint: string;
  /** SHA-256 of the published checkpoint, where the reference publishes one. */
  sha256: string | null;
  /** Hugging Face repository the weights are published in (`stabilityai/...`). */
  repo: string;
  /** Its web address. */
  url: string;
  /** Anything a user must know to get the weights. */
  access_note: string | null;
  /** Vocabularies its text encoders need. */
  vocab: readonly VocabRequirement[];
  /** The demo's default prompt and seed. */
  default_prompt: string;
  seed: number;
  /** Default sampling settings (api.py's SamplingParams at this preset's size); null for turbo. */
  sampling: Readonly<SamplingParams> | null;
  /** turbo.py's sampling; null for the guided models. */
  turbo: Readonly<TurboSampling> | null;
  /** Two-stage defaults when this preset is a refiner; null otherwise. */
  refiner: Readonly<RefinerDefaults> | null;
  /** Refiner presets that can follow this base (demo order, first is the default); [] if none. */
  refiners: readonly string[];
  /** The size choices the demo offers ([width, height] by ratio); null: any multiple of 64. */
  resolutions: Readonly<Record<string, readonly [number, number]>> | null;
  /** Other names resolvePreset accepts. */
  aliases: readonly string[];
  /**
   * Models that ship inside this package (the toy models): config and weights as paths relative to
   * the package root; the model folder is not consulted.
   */
  bundled?: { config: string; checkpoint: string } | null;
  /** Class labels of a class-conditional model (index = the `--class` value). */
  classes?: readonly string[] | null;
}

const SAMPLING_DEMO_PROMPT = 'Astronaut in a jungle, cold color palette, muted colors, detailed, 8k';
const TURBO_DEMO_PROMPT = 'A cinematic shot of a baby racoon wearing an intricate italian priest robe.';

const VOCAB_SDXL: readonly VocabRequirement[] = Object.freeze([
  { kind: 'hf_clip', embedders: ['FrozenCLIPEmbedder'], files: HF_CLIP_VOCAB },
  { kind: 'open_clip', embedders: ['FrozenOpenCLIPEmbedder2'], files: OPEN_CLIP_VOCAB },
] as VocabRequirement[]);
const VOCAB_REFINER: readonly VocabRequirement[] = Object.freeze([
  { kind: 'open_clip', embedders: ['FrozenOpenCLIPEmbedder2'], files: OPEN_CLIP_VOCAB },
] as VocabRequirement[]);
const VOCAB_SD2: readonly VocabRequirement[] = Object.freeze([
  { kind: 'open_clip', embedders: ['FrozenOpenCLIPEmbedder'], files: OPEN_CLIP_VOCAB },
] as VocabRequirement[]);

const SDXL_BASES = ['SDXL-base-1.0', 'SDXL-base-0.9'];
const SDXL_REFINERS = ['SDXL-refiner-1.0', 'SDXL-refiner-0.9'];
const SDXL_09_NOTE =
  'SDXL 0.9 was released under a research license: the Hugging Face repository is gated (accept its terms while signed in)';

function samplingAt(W: number, H: number, extra: Partial<SamplingParams> = {}): Readonly<SamplingParams> {
  return Object.freeze({ ...DEFAULT_SAMPLING_PARAMS, width: W, height: H, orig_width: W, orig_height: H, ...extra });
}

interface PresetSpec {
  name: string;
  architecture: string | null;
  family: PresetFamily;
  size: number;
  is_legacy: boolean;
  config: string;
  checkpoint: string;
  sha256?: string;
  repo: string;
  access_note?: string;
  extraAliases?: string[];
}

function makePreset(s: PresetSpec): Preset {
  const guided = s.family !== 'sdxl-turbo' && s.family !== 'sd-turbo';
  const refiner = s.family === 'sdxl-refiner';
  const vocab = s.family === 'sdxl-refiner' ? VOCAB_REFINER : s.family === 'sd-2.1' || s.family === 'sd-turbo' ? VOCAB_SD2 : VOCAB_SDXL;
  const aliases = [s.repo, s.repo.slice(s.repo.indexOf('/') + 1), ...(s.extraAliases ?? [])];
  if (s.architecture) aliases.unshift(s.architecture);
  return Object.freeze({
    name: s.name,
    architecture: s.architecture,
    family: s.family,
    H: s.size,
    W: s.size,
    C: 4,
    F: 8,
    is_legacy: s.is_legacy,
    is_guided: guided,
    force_uc_zero_embeddings: Object.freeze(s.is_legacy ? [] : ['txt']),
    config: s.config,
    checkpoint: s.checkpoint,
    sha256: s.sha256 ?? null,
    repo: s.repo,
    url: `https://huggingface.co/${s.repo}`,
    access_note: s.access_note ?? null,
    vocab,
    default_prompt: guided ? SAMPLING_DEMO_PROMPT : TURBO_DEMO_PROMPT,
    seed: guided ? 42 : TURBO_SAMPLING.seed,
    // The refiner's conditioning always uses aesthetic 6.0 / 2.5 (api.py refiner(), the demo).
    sampling: guided ? samplingAt(s.size, s.size, refiner ? { aesthetic_score: 6.0, negative_aesthetic_score: 2.5 } : {}) : null,
    turbo: guided ? null : TURBO_SAMPLING,
    refiner: refiner
      ? Object.freeze({ strength: 0.15, finish_denoising: true, aesthetic_score: 6.0, negative_aesthetic_score: 2.5, refines: Object.freeze([...SDXL_BASES]) })
      : null,
    refiners: Object.freeze(s.family === 'sdxl-base' ? [...SDXL_REFINERS] : []),
    resolutions: s.family === 'sdxl-base' ? SDXL_BASE_RESOLUTIONS : null,
    aliases: Object.freeze(aliases),
  });
}

/** Fashion-MNIST's ten classes, by label. */
export const FASHION_MNIST_CLASSES: readonly string[] = Object.freeze(['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']);

/**
 * The project's own class-conditional model, trained with `sgm train` on Fashion-MNIST in the
 * style of configs/example_training/toy/mnist_cond.yaml; config and fp16 weights ship with the
 * package (models/), so it samples without any download.
 */
export const TOY_FASHION_MNIST: Preset = Object.freeze({
  name: 'toy-fashion-mnist',
  architecture: null,
  family: 'toy',
  H: 28,
  W: 28,
  C: 1,
  F: 1,
  is_legacy: false,
  is_guided: true,
  // log_images zeroes the class embedding for the unconditional branch of CFG.
  force_uc_zero_embeddings: Object.freeze(['cls']),
  config: 'fashion_mnist_cond.yaml',
  checkpoint: 'toy-fashion-mnist.safetensors',
  sha256: null,
  repo: 'sgm-ts (bundled)',
  url: 'models/toy-fashion-mnist.safetensors in this package',
  access_note: null,
  vocab: Object.freeze([]),
  default_prompt: '',
  seed: 42,
  // The config's own sampler (EulerEDM on the EDM schedule, CFG 3), as log_images uses it.
  sampling: Object.freeze({
    ...DEFAULT_SAMPLING_PARAMS,
    width: 28,
    height: 28,
    orig_width: 28,
    orig_height: 28,
    steps: 50,
    sampler: 'EulerEDMSampler',
    discretization: 'EDMDiscretization',
    scale: 3.0,
    sigma_min: 0.002,
    sigma_max: 80.0,
    rho: 7.0,
  } as SamplingParams),
  turbo: null,
  refiner: null,
  refiners: Object.freeze([]),
  resolutions: null,
  aliases: Object.freeze(['fashion-mnist', 'toy']),
  bundled: Object.freeze({ config: 'configs/toy/fashion_mnist_cond.yaml', checkpoint: 'models/toy-fashion-mnist.safetensors' }),
  classes: FASHION_MNIST_CLASSES,
});

/** Every preset, in the demos' order (sampling.py, then turbo.py). */
export const PRESETS: readonly Preset[] = Object.freeze([
  makePreset({
    name: 'SDXL-base-1.0',
    architecture: 'stable-diffusion-xl-v1-base',
    family: 'sdxl-base',
    size: 1024,
    is_legacy: false,
    config: 'sd_xl_base.yaml',
    checkpoint: 'sd_xl_base_1.0.safetensors',
    sha256: '31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6120b893f7e5b',
    repo: 'stabilityai/stable-diffusion-xl-base-1.0',
    extraAliases: ['sdxl', 'sdxl-base'],
  }),
  makePreset({
    name: 'SDXL-base-0.9',
    architecture: 'stable-diffusion-xl-v0-9-base',
    family: 'sdxl-base',
    size: 1024,
    is_legacy: false,
    config: 'sd_xl_base.yaml',
    checkpoint: 'sd_xl_base_0.9.safetensors',
    repo: 'stabilityai/stable-diffusion-xl-base-0.9',
    access_note: SDXL_09_NOTE,
  }),
  makePreset({
    name: 'SD-2.1',
    architecture: 'stable-diffusion-v2-1',
    family: 'sd-2.1',
    size: 512,
    is_legacy: true,
    config: 'sd_2_1.yaml',
    checkpoint: 'v2-1_512-ema-pruned.safetensors',
    repo: 'stabilityai/stable-diffusion-2-1-base',
  }),
  makePreset({
    name: 'SD-2.1-768',
    architecture: 'stable-diffusion-v2-1-768',
    family: 'sd-2.1',
    size: 768,
    is_legacy: true,
    config: 'sd_2_1_768.yaml',
    checkpoint: 'v2-1_768-ema-pruned.safetensors',
    repo: 'stabilityai/stable-diffusion-2-1',
  }),
  makePreset({
    name: 'SDXL-refiner-0.9',
    architecture: 'stable-diffusion-xl-v0-9-refiner',
    family: 'sdxl-refiner',
    size: 1024,
    is_legacy: true,
    config: 'sd_xl_refiner.yaml',
    checkpoint: 'sd_xl_refiner_0.9.safetensors',
    repo: 'stabilityai/stable-diffusion-xl-refiner-0.9',
    access_note: SDXL_09_NOTE,
  }),
  makePreset({
    name: 'SDXL-refiner-1.0',
    architecture: 'stable-diffusion-xl-v1-refiner',
    family: 'sdxl-refiner',
    size: 1024,
    is_legacy: true,
    config: 'sd_xl_refiner.yaml',
    checkpoint: 'sd_xl_refiner_1.0.safetensors',
    sha256: '7440042bbdc8a24813002c09b6b69b64dc90fded4472613437b7f55f9b7d9c5f',
    repo: 'stabilityai/stable-diffusion-xl-refiner-1.0',
    extraAliases: ['sdxl-refiner'],
  }),
  makePreset({
    name: 'SDXL-Turbo',
    architecture: null,
    family: 'sdxl-turbo',
    size: 512,
    is_legacy: false,
    config: 'sd_xl_base.yaml',
    checkpoint: 'sd_xl_turbo_1.0.safetensors',
    repo: 'stabilityai/sdxl-turbo',
  }),
  makePreset({
    name: 'SD-Turbo',
    architecture: null,
    family: 'sd-turbo',
    size: 512,
    is_legacy: false,
    config: 'sd_2_1.yaml',
    checkpoint: 'sd_turbo.safetensors',
    repo: 'stabilityai/sd-turbo',
  }),
]);

/** Models that ship with this package (not the reference's): the toy model(s). */
export const BUNDLED_PRESETS: readonly Preset[] = Object.freeze([TOY_FASHION_MNIST]);

/** The reference's presets, then the bundled ones. */
export function allPresets(): readonly Preset[] {
  return [...PRESETS, ...BUNDLED_PRESETS];
}

// ------------------------------------------------------------------------------ name lookup

/** An unknown preset name; the message lists every name and the closest one. */
export class PresetError extends Error {
  constructor(
    readonly requested: string,
    readonly closest: string | null,
  ) {
    super(
      `${requested.trim() === '' ? 'no model preset named' : `unknown model preset '${requested}'`}${closest ? ` (closest: '${closest}')` : ''}; known presets: ${allPresets().map((p) => p.name).join(', ')}` +
        ` (also accepted: any case, and api.py's ids such as ${PRESETS.filter((p) => p.architecture)
          .slice(0, 2)
          .map((p) => `'${p.architecture}'`)
          .join(', ')})`,
    );
    this.name = 'PresetError';
  }
}

const BY_KEY: ReadonlyMap<string, Preset> = (() => {
  const m = new Map<string, Preset>();
  for (const p of allPresets()) {
    for (const key of [p.name, ...p.aliases]) {
      const k = key.toLowerCase();
      const other = m.get(k);
      if (other && other !== p) throw new Error(`preset name '${key}' is used by both ${other.name} and ${p.name}`);
      m.set(k, p);
    }
  }
  return m;
})();

/** Every name and alias resolvePreset accepts, with the preset each means. */
export function presetNames(): Array<[string, string]> {
  return allPresets().flatMap((p) => [p.name, ...p.aliases].map((n): [string, string] => [n, p.name]));
}

/** A preset by its demo name, api.py id, Hugging Face repo name, or alias; any case. */
export function resolvePreset(name: string | Preset): Preset {
  if (typeof name !== 'string') return name;
  const key = name.trim().toLowerCase();
  const hit = BY_KEY.get(key);
  if (hit) return hit;
  if (key === '') throw new PresetError(name, null);
  let best: string | null = null;
  let bestD = Infinity;
  for (const [alias, canonical] of presetNames()) {
    const d = editDistance(key, alias.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = canonical;
    }
  }
  throw new PresetError(name, best);
}

/** All presets, in the demos' order. */
export function listPresets(): readonly Preset[] {
  return PRESETS;
}

/** Whether `refiner` can follow `base` in the two-stage pipeline. */
export function canRefine(refiner: string | Preset, base: string | Preset): boolean {
  const r = resolvePreset(refiner);
  const b = resolvePreset(base);
  return r.refiner !== null && r.refiner.refines.includes(b.name);
}

// ------------------------------------------------------------------------------------- paths

function findPackageRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/inference/presets.ts (tsx) and dist/inference/presets.js are both two levels down;
  // walk up to the package.json to be safe against other layouts.
  let dir = here;
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'sgm-ts') return dir;
      } catch {
        // not ours; keep walking
      }
    }
    const up = dirname(dir);
    if (up === dir) return resolve(here, '..', '..');
    dir = up;
  }
}

let packageRoot: string | null = null;

/** The package's root folder (the one holding configs/). */
export function presetPackageRoot(): string {
  packageRoot ??= findPackageRoot();
  return packageRoot;
}

/** The package's configs/inference/ folder. */
export function inferenceConfigDir(): string {
  return join(presetPackageRoot(), 'configs', 'inference');
}

/** Absolute path of the preset's config file in the package's configs/inference/. */
export function presetConfigPath(preset: string | Preset): string {
  const p = resolvePreset(preset);
  return p.bundled ? join(presetPackageRoot(), p.bundled.config) : join(inferenceConfigDir(), p.config);
}

/** Where the preset's checkpoint is expected: `modelDir/<checkpoint file>` (relative stays relative). */
export function presetCheckpointPath(preset: string | Preset, modelDir = 'checkpoints'): string {
  const p = resolvePreset(preset);
  return p.bundled ? join(presetPackageRoot(), p.bundled.checkpoint) : join(modelDir, p.checkpoint);
}

/** The checkpoint file a preset needs is not there; the message says where to get it. */
export class MissingCheckpointError extends Error {
  readonly preset: string;
  readonly url: string;
  constructor(
    readonly path: string,
    preset: Preset,
    reason = 'not found',
  ) {
    const abs = resolve(path);
    const where = abs === path ? path : `${path} (${abs})`;
    const sha = preset.sha256 ? `, sha256 ${preset.sha256}` : '';
    super(
      `checkpoint for model preset ${preset.name} ${reason}: expected ${where}. ` +
        `The weights are published at ${`https://huggingface.co/${preset.repo}`} (file ${preset.checkpoint}${sha})` +
        `${preset.access_note ? `; ${preset.access_note}` : ''}. ` +
        `Download it into that folder, or point elsewhere: --model-dir DIR (a folder holding ${preset.checkpoint}) or --ckpt FILE (the checkpoint file itself).`,
    );
    this.name = 'MissingCheckpointError';
    this.preset = preset.name;
    this.url = preset.url;
  }
}

export interface CheckpointLookup {
  /** An explicit checkpoint file (`--ckpt`), used instead of `modelDir/<checkpoint>`. */
  ckpt?: string | null;
}

/**
 * The preset's checkpoint path (`options.ckpt`, else `modelDir/<checkpoint>`), checked to be an
 * existing file; throws MissingCheckpointError otherwise.
 */
export function checkCheckpointPresent(preset: string | Preset, modelDir = 'checkpoints', options: CheckpointLookup = {}): string {
  const p = resolvePreset(preset);
  const path = options.ckpt ?? presetCheckpointPath(p, modelDir);
  if (!existsSync(path)) throw new MissingCheckpointError(path, p);
  if (!statSync(path).isFile()) throw new MissingCheckpointError(path, p, 'is not a file');
  return path;
}

/** One vocabulary found for a preset: the requirement and the file(s) that satisfy it. */
export interface VocabLocation {
  requirement: VocabRequirement;
  /** Paths of the files found (the gz, or vocab.json + merges.txt). */
  files: string[];
  /** The folder holding them: give it to ClipTokenizer.fromFiles. */
  dir: string;
}

/** The vocabularies a preset needs cannot be found in the model folder. */
export class MissingVocabError extends Error {
  constructor(
    readonly preset: string,
    readonly modelDir: string,
    readonly missing: readonly VocabRequirement[],
  ) {
    super(
      `model preset ${preset} needs the CLIP BPE vocabulary for ${missing.map((m) => `${m.embedders.join(', ')} (${m.files.join(' + ')})`).join(' and ')}` +
        ` but ${modelDir} holds none (looked in it and in its clip/ and tokenizer/ subfolders; either layout, ${OPEN_CLIP_VOCAB_FILE} or vocab.json + merges.txt, serves every encoder). ` +
        `Put the files there or point --model-dir at a folder that has them.`,
    );
    this.name = 'MissingVocabError';
  }
}

function findLayout(modelDir: string, files: readonly string[]): { dir: string; files: string[] } | null {
  for (const dir of [modelDir, join(modelDir, 'clip'), join(modelDir, 'tokenizer')]) {
    const paths = files.map((f) => join(dir, f));
    if (paths.every((f) => existsSync(f))) return { dir, files: paths };
  }
  return null;
}

/**
 * Finds each vocabulary the preset's text encoders need in `modelDir` (and its clip/, tokenizer/
 * subfolders): the layout the reference reads first, else the other layout (same ids). Throws
 * MissingVocabError naming what is missing.
 */
export function findPresetVocab(preset: string | Preset, modelDir = 'checkpoints'): VocabLocation[] {
  const p = resolvePreset(preset);
  const out: VocabLocation[] = [];
  const missing: VocabRequirement[] = [];
  for (const req of p.vocab) {
    let found = findLayout(modelDir, req.files);
    for (const layout of VOCAB_LAYOUTS) found ??= findLayout(modelDir, layout);
    if (found) out.push({ requirement: req, ...found });
    else missing.push(req);
  }
  if (missing.length > 0) throw new MissingVocabError(p.name, modelDir, missing);
  return out;
}
