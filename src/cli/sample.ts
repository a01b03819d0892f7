// `sgm sample`: text-to-image, image-to-image, base + refiner and Turbo from a preset or a config +
// checkpoint, written as PNG files with text metadata and (by default) the invisible watermark.
// Every option is checked before any model loads, so a typo costs nothing.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/index.js';
import { SamplingPipeline, SamplingOptionError, checkSamplingParams, loadInitImage, sizeMultiples } from '../inference/api.js';
import { loadConfigs } from '../config/index.js';
import { mkdirSync } from 'node:fs';
import {
  SAMPLER_NAMES,
  presetConfigPath,
  checkCheckpointPresent,
  findPresetVocab,
  resolvePreset,
  type Preset,
  type SamplerName,
  type SamplingParams,
} from '../inference/presets.js';
import { canWatermark, saveSamples } from '../inference/output.js';
import { cachedSha256 } from '../inference/model_hash.js';
import { verifySha256 } from '../io/hash.js';
import { SafetensorsFile, SafetensorsWriter } from '../io/safetensors.js';
import { createProgress } from '../io/progress.js';
import type { SampleResult } from '../inference/helpers.js';

/** Short sampler names accepted besides the reference's class names. */
const SAMPLER_ALIASES: Record<string, SamplerName> = {
  euler: 'EulerEDMSampler',
  heun: 'HeunEDMSampler',
  euler_a: 'EulerAncestralSampler',
  'euler-ancestral': 'EulerAncestralSampler',
  dpmpp2s_a: 'DPMPP2SAncestralSampler',
  dpmpp2m: 'DPMPP2MSampler',
  lms: 'LinearMultistepSampler',
};

const DEVICES: readonly T.Device[] = ['cpu', 'cuda', 'tensorrt', 'coreml', 'dml', 'webgpu'];

export interface SampleCliOptions {
  preset?: string;
  config?: string;
  ckpt?: string;
  modelDir: string;
  vocab?: string;
  prompt?: string;
  negativePrompt?: string;
  class?: string;
  steps?: string;
  sampler?: string;
  discretization?: string;
  guider?: string;
  scale?: string;
  sChurn?: string;
  sTmin?: string;
  sTmax?: string;
  sNoise?: string;
  eta?: string;
  order?: string;
  sigmaMin?: string;
  sigmaMax?: string;
  rho?: string;
  seed?: string;
  width?: string;
  height?: string;
  nSamples: string;
  initImage?: string;
  strength?: string;
  refiner?: string;
  refinerConfig?: string;
  refinerCkpt?: string;
  refinerStrength?: string;
  refinerSteps?: string;
  refinerMode: string;
  latent?: string;
  saveLatent?: boolean;
  device: string;
  threads?: string;
  out: string;
  grid?: boolean;
  watermark: string | boolean;
  verify?: boolean;
  hash: boolean;
  allowMissing?: boolean;
}

function int(name: string, v: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new SamplingOptionError(`--${name}`, `must be an integer from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ' up'}, got '${v}'`);
  return n;
}

function num(name: string, v: string | undefined, check?: (n: number) => boolean, what = 'a number'): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (check && !check(n))) throw new SamplingOptionError(`--${name}`, `must be ${what}, got '${v}'`);
  return n;
}

function samplerName(v: string | undefined): SamplerName | undefined {
  if (v === undefined) return undefined;
  const alias = SAMPLER_ALIASES[v.toLowerCase()];
  if (alias) return alias;
  const exact = SAMPLER_NAMES.find((s) => s.toLowerCase() === v.toLowerCase() || s.toLowerCase() === `${v.toLowerCase()}sampler`);
  if (exact) return exact;
  throw new SamplingOptionError('--sampler', `unknown sampler '${v}'; choose one of ${SAMPLER_NAMES.join(', ')} (or ${Object.keys(SAMPLER_ALIASES).join(', ')})`);
}

/** Everything checked and resolved before a model loads. */
interface Plan {
  preset: Preset | null;
  params: Partial<SamplingParams>;
  prompt: string;
  negativePrompt: string;
  /** Class labels per sample (cycled over the batch), for class-conditional models. */
  cls: number[] | null;
  seed: number;
  n: number;
  init: Tensor | null;
  strength: number;
  latent: Tensor | null;
  refiner: Preset | null;
  /** A refiner given as --refiner-config (+ --refiner-ckpt) instead of a preset. */
  refinerConfig: string | null;
  refinerStrength: number;
  refinerSteps: number | undefined;
  watermark: boolean | 'auto';
  width: number;
  height: number;
  turboSteps: number;
}

async function plan(o: SampleCliOptions): Promise<Plan> {
  if (!o.preset && !o.config) throw new SamplingOptionError('--preset', 'give a model preset (see `sgm presets`) or --config FILE with --ckpt FILE');
  if (o.config && !existsSync(o.config)) throw new SamplingOptionError('--config', `${o.config} does not exist`);
  if (o.config && !o.preset && !o.ckpt) throw new SamplingOptionError('--ckpt', `--config needs the checkpoint file (--ckpt FILE)`);
  if (!DEVICES.includes(o.device as T.Device)) throw new SamplingOptionError('--device', `unknown device '${o.device}'; choose one of ${DEVICES.join(', ')}`);
  const preset = o.preset ? resolvePreset(o.preset) : null;
  const isTurbo = preset?.turbo != null;
  // Sizes must suit the autoencoder and the UNet's levels (read from the config, no model built).
  const { F, multiple } = sizeMultiples(loadConfigs([o.config ?? presetConfigPath(preset!)]) as Record<string, unknown>);
  const base = { ...(preset?.sampling ?? {}) };
  const steps = int('steps', o.steps, 1);
  const params: Partial<SamplingParams> = {
    ...(steps !== undefined ? { steps } : {}),
    ...(o.sampler !== undefined ? { sampler: samplerName(o.sampler)! } : {}),
    ...(o.discretization !== undefined ? { discretization: o.discretization as SamplingParams['discretization'] } : {}),
    ...(o.scale !== undefined ? { scale: num('scale', o.scale)! } : {}),
    ...(o.guider !== undefined ? { guider: o.guider as SamplingParams['guider'] } : {}),
  };
  // The samplers' and discretizations' own parameters (api.py's SamplingParams fields).
  const extras: Array<[keyof SamplingParams, string, string | undefined, (n: number) => boolean, string]> = [
    ['s_churn', 's-churn', o.sChurn, (v) => v >= 0, 'a number >= 0'],
    ['s_tmin', 's-tmin', o.sTmin, (v) => v >= 0, 'a number >= 0'],
    ['s_tmax', 's-tmax', o.sTmax, (v) => v >= 0, 'a number >= 0'],
    ['s_noise', 's-noise', o.sNoise, (v) => v >= 0, 'a number >= 0'],
    ['eta', 'eta', o.eta, (v) => v >= 0, 'a number >= 0'],
    ['sigma_min', 'sigma-min', o.sigmaMin, (v) => v > 0, 'a number > 0'],
    ['sigma_max', 'sigma-max', o.sigmaMax, (v) => v > 0, 'a number > 0'],
    ['rho', 'rho', o.rho, (v) => v > 0, 'a number > 0'],
  ];
  for (const [key, flag, v, ok, what] of extras) if (v !== undefined) (params as Record<string, unknown>)[key] = num(flag, v, ok, what);
  if (o.order !== undefined) params.order = int('order', o.order, 1);
  if (!preset && F === 1 && (o.width === undefined || o.height === undefined)) {
    throw new SamplingOptionError(o.width === undefined ? '--width' : '--height', 'this model works on pixels (no autoencoder): give the image size it was trained on with --width and --height');
  }
  const width = int('width', o.width, 1) ?? preset?.W ?? base.width ?? 1024;
  const height = int('height', o.height, 1) ?? preset?.H ?? base.height ?? 1024;
  for (const [name, v] of [['width', width], ['height', height]] as const) {
    if (v % F !== 0 || v < F) throw new SamplingOptionError(`--${name}`, `${v} is not a positive multiple of ${F} (the autoencoder's downsampling factor)`);
    if (v % multiple !== 0) throw new SamplingOptionError(`--${name}`, `${v} is not a multiple of ${multiple}: this model's UNet halves the ${F}x smaller latent ${Math.log2(multiple / F)} times (try ${Math.max(multiple, Math.round(v / multiple) * multiple)})`);
  }
  params.width = width;
  params.height = height;
  if (!isTurbo) checkSamplingParams(params, { ...checkSamplingParams({}), ...base }, F);
  const turboSteps = isTurbo ? (steps ?? preset!.turbo!.steps) : 1;
  if (isTurbo && (turboSteps < 1 || turboSteps > preset!.turbo!.max_steps)) throw new SamplingOptionError('--steps', `${preset!.name} samples in 1 to ${preset!.turbo!.max_steps} steps, got ${turboSteps}`);
  if (isTurbo && o.sampler) throw new SamplingOptionError('--sampler', `${preset!.name} always samples with its own ancestral Euler on a fixed sigma subset (scripts/demo/turbo.py); leave --sampler out`);
  const n = int('n-samples', o.nSamples, 1)!;
  const seed = int('seed', o.seed, 0, 2 ** 32 - 1) ?? preset?.seed ?? 42;
  const strength = num('strength', o.strength, (v) => v >= 0 && v <= 1, 'a number in [0, 1]') ?? 0.75;
  const cls = parseClasses(o.class, preset, n);
  let init: Tensor | null = null;
  if (o.initImage) {
    if (isTurbo) throw new SamplingOptionError('--init-image', `${preset!.name} (Turbo) has no img2img mode here`);
    init = await loadInitImage(o.initImage, n); // reads the file now: an unreadable image fails before loading
  }
  let latent: Tensor | null = null;
  if (o.latent) latent = readLatent(o.latent);
  const refiner = o.refiner ? resolvePreset(o.refiner) : null;
  if (refiner && !refiner.refiner) throw new SamplingOptionError('--refiner', `${refiner.name} is not a refiner; use one of the SDXL-refiner presets`);
  if (o.refinerConfig && o.refiner) throw new SamplingOptionError('--refiner-config', 'give either --refiner PRESET or --refiner-config FILE (with --refiner-ckpt), not both');
  if (o.refinerConfig && !existsSync(o.refinerConfig)) throw new SamplingOptionError('--refiner-config', `${o.refinerConfig} does not exist`);
  if (o.refinerConfig && !o.refinerCkpt) throw new SamplingOptionError('--refiner-ckpt', '--refiner-config needs the refiner checkpoint (--refiner-ckpt FILE)');
  const refinerStrength = num('refiner-strength', o.refinerStrength, (v) => v > 0 && v <= 1, 'a number in (0, 1]') ?? refiner?.refiner?.strength ?? 0.15;
  const refinerSteps = int('refiner-steps', o.refinerSteps, 1);
  // Img2ImgDiscretizationWrapper keeps int(strength * (steps + 1)) sigmas: fewer than 2 is no step.
  const checkKept = (what: string, strength: number, steps: number): void => {
    if (Math.trunc(strength * (steps + 1)) < 2) throw new SamplingOptionError(what, `strength ${strength} with ${steps} steps leaves no denoising step (int(strength * (steps + 1)) must be at least 2): raise the strength or the steps`);
  };
  if (!['finish', 'img2img'].includes(o.refinerMode)) throw new SamplingOptionError('--refiner-mode', `must be 'finish' (the demo's default: the base stops early) or 'img2img' (the library's refiner on finished latents), got '${o.refinerMode}'`);
  const baseSteps = steps ?? base.steps ?? 50;
  if (init) checkKept('--strength', strength, baseSteps);
  if ((refiner || o.refinerConfig || latent) && !isTurbo) checkKept('--refiner-strength', refinerStrength, refinerSteps ?? baseSteps);
  let watermark: boolean | 'auto';
  if (o.watermark === false || o.watermark === 'off') watermark = false;
  else if (o.watermark === true || o.watermark === 'auto') watermark = 'auto';
  else if (o.watermark === 'on') watermark = true;
  else throw new SamplingOptionError('--watermark', `must be on, off or auto, got '${o.watermark}'`);
  if (watermark === true && !canWatermark(height, width)) throw new SamplingOptionError('--watermark', `${width}x${height} images are too small for the invisible watermark (it needs 256x256 pixels or more); use --watermark auto or --no-watermark`);
  return {
    preset,
    params,
    prompt: o.prompt ?? preset?.default_prompt ?? '',
    negativePrompt: o.negativePrompt ?? '',
    cls,
    seed,
    n,
    init,
    strength,
    latent,
    refiner,
    refinerConfig: o.refinerConfig ?? null,
    refinerStrength,
    refinerSteps,
    watermark,
    width,
    height,
    turboSteps,
  };
}

/**
 * --class: one label, a comma list (cycled over the batch) or `all` (0, 1, ... cycled). A model
 * preset with class names checks the range before loading, and requires the option.
 */
function parseClasses(v: string | undefined, preset: Preset | null, n: number): number[] | null {
  const names = preset?.classes ?? null;
  if (v === undefined) {
    if (names) throw new SamplingOptionError('--class', `${preset!.name} is class-conditional: give --class N (${names.map((c, i) => `${i} ${c}`).join(', ')}), a list like 0,3,7, or all`);
    return null;
  }
  let labels: number[];
  if (v.trim().toLowerCase() === 'all') {
    if (!names) throw new SamplingOptionError('--class', "'all' needs a preset that names its classes; give the labels as a list");
    labels = Array.from({ length: n }, (_, i) => i % names.length);
  } else {
    labels = v.split(',').map((x) => {
      const k = Number(x.trim());
      if (x.trim() === '' || !Number.isInteger(k) || k < 0) throw new SamplingOptionError('--class', `labels must be integers >= 0, got '${v}'`);
      if (names && k >= names.length) throw new SamplingOptionError('--class', `${preset!.name} has classes 0 to ${names.length - 1}, got ${k}`);
      return k;
    });
  }
  return Array.from({ length: n }, (_, i) => labels[i % labels.length]!);
}

/** A latent saved with --save-latent (safetensors, tensor `samples_z`). */
function readLatent(path: string): Tensor {
  if (!existsSync(path)) throw new SamplingOptionError('--latent', `${path} does not exist`);
  const f = SafetensorsFile.open(path);
  try {
    if (!f.has('samples_z')) throw new SamplingOptionError('--latent', `${path} has no tensor 'samples_z' (write one with sgm sample --save-latent)`);
    const info = f.info('samples_z');
    const a = f.read('samples_z');
    if (!(a instanceof Float32Array) || info.shape.length !== 4) throw new SamplingOptionError('--latent', `${path}: samples_z must be a float32 (N, C, H, W) tensor`);
    return T.constant(a, info.shape, 'float32');
  } finally {
    f.close();
  }
}

function checkFilesBeforeLoading(o: SampleCliOptions, p: Plan): void {
  if (p.preset && o.ckpt === undefined) checkCheckpointPresent(p.preset, o.modelDir);
  if (o.ckpt && (!existsSync(o.ckpt) || !statSync(o.ckpt).isFile())) throw new SamplingOptionError('--ckpt', `${o.ckpt} is not a file`);
  if (p.preset && !o.vocab && p.preset.vocab.length > 0) findPresetVocab(p.preset, o.modelDir);
  if (p.refiner && !o.refinerCkpt) checkCheckpointPresent(p.refiner, o.modelDir);
}

async function verify(path: string, preset: Preset | null, write: (s: string) => void): Promise<void> {
  if (!preset?.sha256) {
    write(`sgm: --verify: no published SHA-256 for ${preset?.name ?? path}; nothing to compare\n`);
    return;
  }
  const size = statSync(path).size;
  const bar = createProgress({ label: `verifying ${path}`, total: size, unit: 'B' });
  const r = await verifySha256(path, preset.sha256, { onProgress: (d) => bar.update(d) });
  bar.done();
  if (r.ok) write(`sgm: ${path}: SHA-256 matches the published hash of ${preset.name}\n`);
  else write(`sgm: WARNING: ${path}: SHA-256 ${r.actual} does not match the published ${r.expected} of ${preset.name}; the file is corrupt, incomplete or another version\n`);
}

function load(o: SampleCliOptions, preset: Preset | null, ckpt: string | undefined, config: string | undefined): SamplingPipeline {
  const bar = createProgress({ label: `loading ${preset?.name ?? config}` });
  try {
    const pipe = SamplingPipeline.load({
      preset: preset ?? undefined,
      config,
      ckpt,
      modelDir: o.modelDir,
      vocabDir: o.vocab,
      device: o.device as T.Device,
      threads: o.threads ? int('threads', o.threads, 1) : undefined,
      allowMissing: o.allowMissing,
    });
    bar.done();
    return pipe;
  } catch (e) {
    bar.fail((e as Error).message.split('\n')[0]);
    throw e;
  }
}

/** (N, 1, H, W) -> (N, 3, H, W) by repeating the channel; other channel counts are an error. */
function grayToRgb(x: Float32Array, n: number, c: number, hw: number): Float32Array {
  if (c !== 1) throw new SamplingOptionError('--config', `the model makes ${c}-channel images; only 1 (grayscale) or 3 (RGB) channels can be saved as PNG`);
  const out = new Float32Array(n * 3 * hw);
  for (let b = 0; b < n; b++) for (let k = 0; k < 3; k++) out.set(x.subarray(b * hw, (b + 1) * hw), (b * 3 + k) * hw);
  return out;
}

/** The checkpoint's SHA-256 (cached by path, size and mtime, so only a new file is read in full). */
async function hashWithProgress(path: string): Promise<string> {
  let bar: ReturnType<typeof createProgress> | null = null;
  const h = await cachedSha256(path, (done, total) => {
    bar ??= createProgress({ label: `hashing ${path} (once; --no-hash skips)`, total, unit: 'B' });
    bar.update(done);
  });
  (bar as ReturnType<typeof createProgress> | null)?.done();
  return h;
}

function stepBar(label: string): { onProgress: (step: number, total: number, sigma: number) => void; done: () => void } {
  let bar: ReturnType<typeof createProgress> | null = null;
  // The first step also builds the graphs and reads the weights into ONNX Runtime (a minute for
  // SDXL on a small CPU): say so, so that a silent first step is not taken for a hang.
  process.stderr.write(`${label}: preparing (the first step compiles the model and reads its weights)\n`);
  return {
    onProgress: (step, total, sigma) => {
      bar ??= createProgress({ label, total, unit: 'steps' });
      bar.update(step, `sigma ${sigma.toFixed(3)}`);
    },
    done: () => bar?.done(),
  };
}

export async function runSample(o: SampleCliOptions, out: (s: string) => void): Promise<void> {
  const err = (s: string): void => void process.stderr.write(s);
  const p = await plan(o);
  checkFilesBeforeLoading(o, p);
  const ckptPath = o.ckpt ?? (p.preset ? join(o.modelDir, p.preset.checkpoint) : undefined);
  if (o.verify && ckptPath) await verify(ckptPath, p.preset, err);
  const pipe = load(o, p.preset, o.ckpt, o.config);
  // Class-conditional models take the label as value_dict['cls'] (get_batch passes it through).
  const valueDict = p.cls === null ? {} : { cls: T.constant(BigInt64Array.from(p.cls, (k) => BigInt(k)), [p.n], 'int64') };
  // One generator for the whole run: the refiner stage continues the base's random stream.
  const generator = new T.Generator().manualSeed(p.seed);

  let result: SampleResult;
  let mode: string;
  const bar = stepBar('sampling');
  if (p.preset?.turbo) {
    mode = 'turbo';
    result = await pipe.turbo(p.prompt, { steps: p.turboSteps, seed: p.seed, width: p.width, height: p.height, samples: p.n, onProgress: bar.onProgress });
  } else if (p.latent) {
    mode = 'refine-latent';
    result = await pipe.refiner(p.params, p.latent, p.prompt, p.negativePrompt, p.latent.shape[0]!, { generator, strength: p.refinerStrength, onProgress: bar.onProgress });
  } else if (p.init) {
    mode = 'img2img';
    result = await pipe.imageToImage(p.params, p.init, p.prompt, p.negativePrompt, p.n, p.strength, { generator, onProgress: bar.onProgress, valueDict });
  } else if ((p.refiner || p.refinerConfig) && o.refinerMode === 'finish') {
    mode = 'txt2img+refiner';
    result = await pipe.textToImageForRefiner(p.params, p.prompt, p.negativePrompt, p.n, p.refinerStrength, { generator, onProgress: bar.onProgress });
  } else {
    mode = 'txt2img';
    result = await pipe.textToImage(p.params, p.prompt, p.negativePrompt, p.n, { generator, onProgress: bar.onProgress, valueDict });
  }
  bar.done();

  let model = p.preset?.name ?? o.config!;
  let modelPath = pipe.ckptPath;
  if (p.refiner || p.refinerConfig) {
    // The refiner continues the same run (one seed, the RNG continuing) on the base's latents.
    const refPipe = load(o, p.refiner, o.refinerCkpt, p.refinerConfig ?? undefined);
    const rbar = stepBar('refining');
    const rp = { ...p.params, ...(p.refinerSteps ? { steps: p.refinerSteps } : {}) };
    result = await refPipe.refiner(rp, result.samplesZ, p.prompt, p.preset?.is_legacy ? p.negativePrompt : '', p.n, {
      strength: p.refinerStrength,
      finishDenoising: o.refinerMode === 'finish',
      generator,
      onProgress: rbar.onProgress,
    });
    rbar.done();
    model = `${model} + ${p.refiner?.name ?? p.refinerConfig}`;
    modelPath = refPipe.ckptPath;
  }

  if (o.saveLatent) {
    mkdirSync(o.out, { recursive: true });
    const path = join(o.out, `latent-${Date.now()}.safetensors`);
    const z = result.samplesZ;
    const w = SafetensorsWriter.create(path, [{ name: 'samples_z', dtype: 'F32', shape: z.shape }], { model, seed: String(p.seed) });
    w.write('samples_z', (await z.data()) as Float32Array);
    w.commit();
    out(`${path}\n`);
  }

  const hash = o.hash && modelPath ? await hashWithProgress(modelPath) : null;
  const s = result.samples;
  const [n, c, h, w] = s.shape as [number, number, number, number];
  const pr = { ...pipe.defaults(), ...p.params };
  const meta = (i: number): Record<string, string> => ({
    prompt: p.prompt,
    negative_prompt: p.negativePrompt,
    seed: String(p.seed),
    sample_index: String(i),
    mode,
    sampler: mode === 'turbo' ? 'SubstepSampler (EulerAncestral, numpy noise)' : pr.sampler,
    steps: String(mode === 'turbo' ? p.turboSteps : pr.steps),
    scale: mode === 'turbo' ? 'none (no CFG)' : String(pr.scale),
    ...(mode === 'turbo' ? {} : { discretization: pr.discretization, guider: pr.guider }),
    width: String(w),
    height: String(h),
    model,
    ...(hash ? { model_hash: `sha256:${hash}` } : {}),
    ...(modelPath ? { checkpoint: modelPath } : {}),
    ...(p.init ? { strength: String(p.strength) } : {}),
    ...(p.cls !== null ? { class: String(p.cls[i]), ...(p.preset?.classes ? { class_name: p.preset.classes[p.cls[i]!]! } : {}) } : {}),
    ...(p.refiner || p.refinerConfig ? { refiner_strength: String(p.refinerStrength), refiner_mode: o.refinerMode } : {}),
  });
  // Grayscale models (the toy ones) are saved as RGB with equal channels.
  const pixels = c === 3 ? ((await s.data()) as Float32Array) : grayToRgb((await s.data()) as Float32Array, n, c, h * w);
  const saved = await saveSamples(pixels, { n, h, w, outDir: o.out, watermark: p.watermark, metadata: meta, grid: o.grid ?? false, onWarning: (m) => err(`sgm: ${m}\n`) });
  for (const f of saved.files) out(`${f}\n`);
  if (saved.grid) out(`${saved.grid}\n`);
}

export function registerSample(cmd: Command, out: (s: string) => void): void {
  cmd
    .command('sample')
    .description('generate images: text-to-image, image-to-image (--init-image), SDXL base + refiner (--refiner), Turbo (1-4 steps)')
    .option('--preset <name>', 'model preset: SDXL-base-1.0, SDXL-base-0.9, SDXL-refiner-1.0, SDXL-refiner-0.9, SD-2.1, SD-2.1-768, SDXL-Turbo, SD-Turbo (see `sgm presets`)')
    .option('--config <file>', "a model config (the reference's YAML) instead of the preset's")
    .option('--ckpt <file>', 'the .safetensors checkpoint (default: <model-dir>/<the preset\'s file name>)')
    .option('--model-dir <dir>', 'folder holding the checkpoints and the CLIP vocabulary', 'checkpoints')
    .option('--vocab <dir>', 'folder of the CLIP BPE vocabulary (default: found in --model-dir)')
    .option('--prompt <text>', "what to draw (default: the demo's prompt)")
    .option('--negative-prompt <text>', 'what to avoid (used by SD 2.x and the refiner; SDXL base zeroes its unconditional text as the reference does)')
    .option('--class <n>', 'class label(s) for class-conditional models: N, a list 0,3,7 (cycled over the batch) or all')
    .option('--steps <n>', 'sampling steps (default: the preset\'s; Turbo: 1-4)')
    .option('--sampler <name>', `sampler: ${SAMPLER_NAMES.join(', ')} (or euler, heun, euler_a, dpmpp2s_a, dpmpp2m, lms)`)
    .option('--discretization <name>', 'LegacyDDPMDiscretization (default) or EDMDiscretization')
    .option('--guider <name>', 'VanillaCFG (classifier-free guidance, default) or IdentityGuider (none)')
    .option('--s-churn <x>', 'EDM samplers: stochasticity (default 0)')
    .option('--s-tmin <x>', 'EDM samplers: churn from this sigma (default 0)')
    .option('--s-tmax <x>', 'EDM samplers: churn up to this sigma (default 999)')
    .option('--s-noise <x>', 'EDM and ancestral samplers: noise scale (default 1)')
    .option('--eta <x>', 'ancestral samplers: eta (default 1)')
    .option('--order <n>', 'LinearMultistepSampler: order (default 4)')
    .option('--sigma-min <x>', 'EDMDiscretization: sigma_min (default 0.0292)')
    .option('--sigma-max <x>', 'EDMDiscretization: sigma_max (default 14.6146)')
    .option('--rho <x>', 'EDMDiscretization: rho (default 3)')
    .option('--scale <x>', 'classifier-free guidance scale (default: the preset\'s)')
    .option('--seed <n>', 'random seed: the same seed and settings give the same image (default: the preset\'s)')
    .option('--width <px>', 'image width, a multiple of the model\'s size step (8 for the latent models, more with a deep UNet; default: the preset\'s)')
    .option('--height <px>', 'image height (as --width)')
    .option('--n-samples <n>', 'images per run (one batch)', '1')
    .option('--init-image <file>', 'image-to-image: start from this image (cut down to multiples of 64)')
    .option('--strength <x>', 'image-to-image: how much to change the image, 0-1', '0.75')
    .option('--refiner <preset>', 'refine with an SDXL refiner after the base (one run, one seed)')
    .option('--refiner-config <file>', 'a refiner given by its config (with --refiner-ckpt) instead of a preset')
    .option('--refiner-ckpt <file>', "the refiner's checkpoint (default: <model-dir>/<its file name>)")
    .option('--refiner-strength <x>', 'share of the noise schedule the refiner does (default 0.15)')
    .option('--refiner-steps <n>', "the refiner's steps (default: --steps)")
    .option('--refiner-mode <mode>', "finish: the base stops early and the refiner finishes (the demo's default); img2img: refine finished latents", 'finish')
    .option('--latent <file>', 'refine a latent saved with --save-latent (with a refiner --preset)')
    .option('--save-latent', 'also save the final latent (safetensors) for a later --latent run')
    .option('--device <name>', `execution provider: ${DEVICES.join(', ')}`, 'cpu')
    .option('--threads <n>', 'CPU threads (default: all cores)')
    .option('--out <dir>', 'output folder', 'outputs')
    .option('--grid', 'also write a grid of the batch')
    .option('--watermark <mode>', 'invisible watermark: auto (default: on where the image is 256x256 or larger), on, off', 'auto')
    .option('--no-watermark', 'do not embed the invisible watermark')
    .option('--verify', "check the checkpoint's SHA-256 against the published hash (progress shown; a mismatch is a warning)")
    .option('--no-hash', 'do not record the checkpoint SHA-256 in the PNG metadata (hashing a new checkpoint once takes a while)')
    .option('--allow-missing', 'load even if the checkpoint lacks weights the config needs (they stay random)')
    .action(async (opts: SampleCliOptions) => {
      await runSample(opts, out);
    });
}
