// sgm/inference/helpers.py (and the demos' variants): building the conditioning batch from a value
// dict, do_sample (txt2img), do_img2img (img2img and the refiner stage), and scripts/demo/turbo.py's
// sample. Same order of random draws as the reference, so a seed gives the reference's image.
import * as T from '../tensor/index.js';
import type { Generator, Tensor } from '../tensor/index.js';
import type { DiffusionEngine } from '../models/diffusion.js';
import type { Batch } from '../modules/encoders/modules.js';
import type { BaseDiffusionSampler, NoiseSource, SampleOptions } from '../modules/diffusionmodules/sampling.js';
import { SeededNoise, seededRandn, type SubstepSampler } from '../modules/diffusionmodules/turbo.js';
import { savedPngPixels } from './output.js';

const f = Math.fround;

/** The values the demos collect from the user (prompt, sizes, crop, aesthetic scores, ...). */
export type ValueDict = Record<string, unknown>;

export type Conditioning = Record<string, Tensor>;

/** list({e.input_key for e in conditioner.embedders}) (order does not matter). */
export function getUniqueEmbedderKeysFromConditioner(model: DiffusionEngine): string[] {
  const keys = new Set<string>();
  for (const e of model.conditioner.embedders.items) {
    if (e.input_key !== null) keys.add(e.input_key);
    for (const k of e.input_keys ?? []) keys.add(k);
  }
  return [...keys];
}

function need(valueDict: ValueDict, key: string, forKey: string): number {
  const v = valueDict[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`get_batch: value_dict['${key}'] must be a number (needed for the conditioner key '${forKey}'), got ${JSON.stringify(v)}`);
  return v;
}

function pairTensor(a: number, b: number, n: number): Tensor {
  const data = new BigInt64Array(2 * n);
  for (let i = 0; i < n; i++) {
    data[2 * i] = BigInt(Math.trunc(a));
    data[2 * i + 1] = BigInt(Math.trunc(b));
  }
  return T.constant(data, [n, 2], 'int64');
}

function scalarColumn(v: number, n: number): Tensor {
  return T.constant(new Float32Array(n).fill(v), [n, 1], 'float32');
}

/**
 * get_batch(keys, value_dict, N): `txt` -> [prompt] * N (uc: [negative_prompt] * N), sizes and crop
 * coordinates -> int64 (N, 2) tensors (height first / top first), aesthetic_score -> float32
 * (N, 1) (uc: negative_aesthetic_score), other keys taken from value_dict as given. Tensor
 * entries missing from batch_uc are shared with it.
 */
export function getBatch(keys: readonly string[], valueDict: ValueDict, N: readonly number[]): [Batch, Batch] {
  const n = N.reduce((a, b) => a * b, 1);
  const batch: Batch = {};
  const batchUc: Batch = {};
  for (const key of keys) {
    switch (key) {
      case 'txt': {
        const p = valueDict['prompt'];
        const np = valueDict['negative_prompt'] ?? '';
        if (typeof p !== 'string') throw new Error(`get_batch: value_dict['prompt'] must be a string (the model has a text encoder), got ${JSON.stringify(p)}`);
        if (typeof np !== 'string') throw new Error(`get_batch: value_dict['negative_prompt'] must be a string, got ${JSON.stringify(np)}`);
        batch['txt'] = Array.from({ length: n }, () => p);
        batchUc['txt'] = Array.from({ length: n }, () => np);
        break;
      }
      case 'original_size_as_tuple':
        batch[key] = pairTensor(need(valueDict, 'orig_height', key), need(valueDict, 'orig_width', key), n);
        break;
      case 'crop_coords_top_left':
        batch[key] = pairTensor(need(valueDict, 'crop_coords_top', key), need(valueDict, 'crop_coords_left', key), n);
        break;
      case 'aesthetic_score':
        batch[key] = scalarColumn(need(valueDict, 'aesthetic_score', key), n);
        batchUc[key] = scalarColumn(need(valueDict, 'negative_aesthetic_score', key), n);
        break;
      case 'target_size_as_tuple':
        batch[key] = pairTensor(need(valueDict, 'target_height', key), need(valueDict, 'target_width', key), n);
        break;
      default:
        if (!(key in valueDict)) throw new Error(`get_batch: the conditioner needs '${key}', which the value dict does not have (it has ${Object.keys(valueDict).join(', ')})`);
        batch[key] = valueDict[key];
    }
  }
  for (const key of Object.keys(batch)) if (!(key in batchUc) && batch[key] instanceof T.Tensor) batchUc[key] = batch[key];
  return [batch, batchUc];
}

/** clamp((x + 1) / 2, 0, 1): the image in [0, 1] from the decoded [-1, 1] output. */
export function toUnitRange(x: Tensor): Tensor {
  return T.clamp(T.div(T.add(x, 1.0), 2.0), 0.0, 1.0);
}

export interface SamplingRunOptions {
  /** The torch-compatible generator of every draw (default T.defaultGenerator; seed it first). */
  generator?: Generator;
  onProgress?: SampleOptions['onProgress'];
  onStep?: SampleOptions['onStep'];
  signal?: AbortSignal;
  /** The sampler's random draws (ancestral / churn noise); default from the generator. */
  noise?: NoiseSource;
}

export interface DoSampleOptions extends SamplingRunOptions {
  forceUcZeroEmbeddings?: string[];
  batch2modelInput?: string[];
  /** Replaces the first draw (the initial latent), e.g. turbo's numpy noise. */
  randn?: Float32Array;
}

export interface SampleResult {
  /** clamp((decoded + 1) / 2, 0, 1), (N, 3, H, W), evaluated. */
  samples: Tensor;
  /** The sampler's final latent, evaluated. */
  samplesZ: Tensor;
  /** The decoded image before the clamp, evaluated. */
  samplesX: Tensor;
  c: Conditioning;
  uc: Conditioning;
}

async function decode(model: DiffusionEngine, samplesZ: Tensor): Promise<{ samplesX: Tensor; samples: Tensor }> {
  const samplesX = await model.decodeFirstStageEval(samplesZ);
  const samples = T.constant(await toUnitRange(samplesX).data(), samplesX.shape, 'float32');
  return { samplesX, samples };
}

function sliceCond(c: Conditioning, n: number, skip: (k: string) => boolean): void {
  for (const k of Object.keys(c)) if (!skip(k)) c[k] = T.slice(c[k]!, 0, 0, Math.min(n, c[k]!.shape[0]!));
}

/**
 * do_sample: conditioning c / uc (force_uc_zero_embeddings zeroes those embedders in uc), the
 * initial latent torch.randn(N, C, H/F, W/F) — the first draw after seeding — then the sampler and
 * the first-stage decode.
 */
export async function doSample(
  model: DiffusionEngine,
  sampler: BaseDiffusionSampler,
  valueDict: ValueDict,
  numSamples: number,
  H: number,
  W: number,
  C: number,
  F: number,
  opts: DoSampleOptions = {},
): Promise<SampleResult> {
  checkSize(H, W, F);
  // with model.ema_scope(): an engine that keeps an EMA samples with the EMA weights.
  return model.ema_scope(async () => {
    const [batch, batchUc] = getBatch(getUniqueEmbedderKeysFromConditioner(model), valueDict, [numSamples]);
    const [c, uc] = model.conditioner.get_unconditional_conditioning(batch, batchUc, opts.forceUcZeroEmbeddings ?? []);
    sliceCond(c, numSamples, (k) => k === 'crossattn');
    sliceCond(uc, numSamples, (k) => k === 'crossattn');
    await model.evaluateConditionings(c, uc);
    const extra: Record<string, unknown> = {};
    for (const k of opts.batch2modelInput ?? []) extra[k] = batch[k];
    const shape = [numSamples, C, Math.floor(H / F), Math.floor(W / F)];
    const gen = opts.generator ?? T.defaultGenerator;
    const randn = opts.randn ?? gen.randnData(shape, 'float32');
    const x = T.constant(randn, shape, 'float32');
    const samplesZ = await sampler.sample(model.denoiserFn(extra), x, c, uc, runOpts(opts, gen));
    return { samplesZ, ...(await decode(model, samplesZ)), c, uc };
  });
}

function runOpts(opts: SamplingRunOptions, gen: Generator): SampleOptions {
  return { generator: gen, onProgress: opts.onProgress, onStep: opts.onStep, signal: opts.signal, noise: opts.noise };
}

export interface DoImg2ImgOptions extends SamplingRunOptions {
  forceUcZeroEmbeddings?: string[];
  /** Extra conditioning entries set on both c and uc (additional_kwargs). */
  additionalKwargs?: Conditioning;
  offsetNoiseLevel?: number;
  /** `img` is already a latent (the refiner stage on the base's latents). */
  skipEncode?: boolean;
  /**
   * false: the latent is NOT noised (the demo's finish-denoising refiner: z / sqrt(1 + sigma0^2));
   * the noise is drawn anyway, as the demo does. Default true.
   */
  addNoise?: boolean;
}

/** Host float32 arithmetic of the reference's noising: ((z + noise * sigma) / sqrt(1 + sigma^2)). */
function noiseLatent(z: Float32Array, noise: Float32Array | null, sigma: number): Float32Array {
  const s = f(sigma);
  const den = f(Math.sqrt(f(1 + f(s * s))));
  const out = new Float32Array(z.length);
  for (let i = 0; i < z.length; i++) {
    const v = noise ? f(z[i]! + f(noise[i]! * s)) : z[i]!;
    out[i] = f(v / den);
  }
  return out;
}

/**
 * do_img2img: conditioning (every key sliced to N), z = encode_first_stage(img) (its Gaussian
 * sample is a draw) unless skipEncode, noise = randn_like(z), sigmas of the sampler's (wrapped)
 * discretization, z noised at sigmas[0] and divided by sqrt(1 + sigmas[0]^2) (the sampler
 * multiplies it back), then the sampler and the decode.
 */
export async function doImg2Img(
  img: Tensor,
  model: DiffusionEngine,
  sampler: BaseDiffusionSampler,
  valueDict: ValueDict,
  numSamples: number,
  opts: DoImg2ImgOptions = {},
): Promise<SampleResult & { z: Tensor; noisedZ: Tensor; sigmas: Float32Array }> {
  return model.ema_scope(async () => {
    const [batch, batchUc] = getBatch(getUniqueEmbedderKeysFromConditioner(model), valueDict, [numSamples]);
    const [c, uc] = model.conditioner.get_unconditional_conditioning(batch, batchUc, opts.forceUcZeroEmbeddings ?? []);
    sliceCond(c, numSamples, () => false);
    sliceCond(uc, numSamples, () => false);
    for (const [k, v] of Object.entries(opts.additionalKwargs ?? {})) c[k] = uc[k] = v;
    await model.evaluateConditionings(c, uc);
    const gen = opts.generator ?? T.defaultGenerator;
    const z = opts.skipEncode ? img : await model.encodeFirstStageEval(img, { generator: gen });
    const zData = (await z.data()) as Float32Array;
    let noise: Float32Array = gen.randnData(z.shape, 'float32');
    const sigmas = sampler.getSigmas();
    const sigma = sigmas[0]!;
    const offset = opts.offsetNoiseLevel ?? 0;
    if (offset > 0) {
      const b = z.shape[0]!;
      const per = z.size / b;
      const o = gen.randnData([b], 'float32');
      const off = f(offset);
      noise = noise.map((v, i) => f(v + f(off * o[Math.floor(i / per)]!)));
    }
    const noised = noiseLatent(zData, (opts.addNoise ?? true) ? noise : null, sigma);
    const noisedZ = T.constant(noised, z.shape, 'float32');
    const samplesZ = await sampler.sample(model.denoiserFn(), noisedZ, c, uc, runOpts(opts, gen));
    return { samplesZ, ...(await decode(model, samplesZ)), c, uc, z, noisedZ, sigmas };
  });
}

export interface TurboSampleOptions extends Omit<SamplingRunOptions, 'noise' | 'generator'> {
  /** Value-dict fields for models with size conditioning (default: W/H, crop 0). */
  valueDict?: ValueDict;
}

/**
 * scripts/demo/turbo.py sample(): c = conditioner(batch) only (no CFG), the initial latent and
 * every ancestral draw from numpy RandomState(seed + k), the SubstepSampler's sigma subset.
 * Returns the float samples and turbo.py's uint8 HWC result ((255 * x).to(uint8): truncation).
 */
export async function turboSample(
  model: DiffusionEngine,
  sampler: SubstepSampler,
  prompt: string,
  H: number,
  W: number,
  seed: number,
  numSamples = 1,
  opts: TurboSampleOptions = {},
): Promise<SampleResult & { samplesUint8: Uint8Array }> {
  const F = 8;
  const C = 4;
  checkSize(H, W, F);
  const keys = getUniqueEmbedderKeysFromConditioner(model);
  const valueDict: ValueDict = {
    prompt,
    negative_prompt: '',
    orig_width: W,
    orig_height: H,
    crop_coords_top: 0,
    crop_coords_left: 0,
    target_width: W,
    target_height: H,
    aesthetic_score: 6.0,
    negative_aesthetic_score: 2.5,
    ...opts.valueDict,
  };
  const [batch] = getBatch(keys, valueDict, [numSamples]);
  const c = model.conditioner.forward(batch);
  await model.evaluateConditionings(c);
  const shape = [numSamples, C, Math.floor(H / F), Math.floor(W / F)];
  const x = T.constant(seededRandn(shape, seed), shape, 'float32');
  const noise = new SeededNoise(seed);
  const samplesZ = await sampler.sample(model.denoiserFn(), x, c, null, { onProgress: opts.onProgress, onStep: opts.onStep, signal: opts.signal, noise: noise.source });
  const { samplesX, samples } = await decode(model, samplesZ);
  return { samplesZ, samplesX, samples, c, uc: c, samplesUint8: savedPngPixels((await samples.data()) as Float32Array, samples.shape[0]!, samples.shape[2]!, samples.shape[3]!, false) };
}

/** Sizes the first stage can handle: positive multiples of the latent factor. */
export function checkSize(H: number, W: number, F: number): void {
  for (const [name, v] of [['height', H], ['width', W]] as const) {
    if (!Number.isInteger(v) || v < F || v % F !== 0) throw new RangeError(`${name} ${v} is not a positive multiple of ${F} (the autoencoder's downsampling factor)`);
  }
}
