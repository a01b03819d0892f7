// Parity: every case in fixtures/pipeline, dispatched on its kind. Engines are loaded from the
// case's YAML + ONE checkpoint with the project's loader (layout table, report), then sampled the
// way a user samples: doSample / doImg2Img / the refiner flows / turboSample / log_images, with a
// torch-compatible generator seeded as the reference seeds torch (so the draws are reproduced,
// not replayed; the recorded draws are checked against them).
//   pipeline_engine:     load report, conditioner output, one denoiser call, one decode
//   pipeline_txt2img:    doSample
//   pipeline_img2img:    doImg2Img (Img2ImgDiscretizationWrapper)
//   pipeline_refiner:    doSample on the base, then doImg2Img(skipEncode) on the refiner
//   pipeline_turbo:      turboSample (SubstepSampler, numpy-seeded noise)
//   pipeline_log_images: DiffusionEngine.log_images
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '../../src/tensor/index.js';
import { instantiateFromConfig, loadConfigs } from '../../src/config/index.js';
import '../../src/registry.js';
import { loadModelFromConfig, type CheckpointLoadReport } from '../../src/models/load.js';
import type { DiffusionEngine } from '../../src/models/diffusion.js';
import {
  FrozenCLIPEmbedder,
  FrozenOpenCLIPEmbedder,
  FrozenOpenCLIPEmbedder2,
  registerHFTextConfig,
  registerOpenCLIPModelConfig,
  useClipTokenizer,
  type HFCLIPTextConfig,
  type OpenCLIPModelConfig,
} from '../../src/modules/encoders/modules.js';
import { Img2ImgDiscretizationWrapper, Txt2NoisyDiscretizationWrapper } from '../../src/modules/diffusionmodules/discretizer.js';
import type { BaseDiffusionSampler } from '../../src/modules/diffusionmodules/sampling.js';
import { SubstepSampler } from '../../src/modules/diffusionmodules/turbo.js';
import { ClipTokenizer } from '../../src/tokenizers/clip.js';
import { doImg2Img, doSample, getBatch, getUniqueEmbedderKeysFromConditioner, turboSample, type SampleResult, type ValueDict } from '../../src/inference/helpers.js';
import { savedPngPixels, watermarkSamples } from '../../src/inference/output.js';
import { loadIo, parityArea, type IoTensor, type ParityCase } from '../helpers/fixtures.js';
import { assertClose, type Tolerance } from '../helpers/close.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const vocabDir = process.env.SGM_VOCAB_DIR ? resolve(process.env.SGM_VOCAB_DIR) : resolve(repoRoot, '..', 'shared', 'vocab');

let tokenizerReady = false;
function ensureTokenizer(): void {
  if (tokenizerReady) return;
  if (!existsSync(vocabDir)) throw new Error(`the CLIP vocabulary is needed for the pipeline cases: ${vocabDir} is absent (set SGM_VOCAB_DIR)`);
  useClipTokenizer(ClipTokenizer.fromFiles(vocabDir));
  tokenizerReady = true;
}

function tolFor(c: ParityCase, name: string): Tolerance {
  const tol = c.spec.tolerance ?? {};
  const per = tol.per_output?.[name];
  return { atol: per?.atol ?? tol.atol ?? 0, rtol: per?.rtol ?? tol.rtol ?? 0 };
}

async function check(c: ParityCase, io: Map<string, IoTensor>, name: string, got: T.Tensor | ArrayLike<number | bigint>, shape?: readonly number[], tol?: Tolerance): Promise<void> {
  const ref = io.get(name);
  assert.ok(ref, `${c.name}: io has no ${name}`);
  let data: ArrayLike<number | bigint>;
  if (got instanceof T.Tensor) {
    assert.deepEqual(got.shape, ref.shape, `${c.name}: ${name} shape`);
    data = (await got.data()) as ArrayLike<number | bigint>;
  } else {
    if (shape) assert.deepEqual([...shape], ref.shape, `${c.name}: ${name} shape`);
    data = got;
  }
  const a = Array.from(data as ArrayLike<number | bigint>, Number);
  const b = Array.from(ref.data as ArrayLike<number | bigint>, Number);
  assertClose(a, b, tol ?? tolFor(c, name), `${c.name}: ${name}`);
}

const EXACT: Tolerance = { atol: 0, rtol: 0 };

const ioTensor = (io: Map<string, IoTensor>, name: string): T.Tensor => {
  const t = io.get(name);
  if (!t) throw new Error(`io has no ${name}`);
  const dtype = t.dtype === 'I64' ? 'int64' : t.dtype === 'U8' ? 'uint8' : 'float32';
  return T.constant(t.data as T.TypedArray, t.shape, dtype);
};

// ------------------------------------------------------------------------------------- engines

interface LoadedEngine {
  engine: DiffusionEngine;
  report: CheckpointLoadReport | null;
}
const engines = new Map<string, LoadedEngine>();

function registerArchs(spec: Record<string, any>): void {
  for (const [name, cfg] of Object.entries((spec.open_clip_model_configs ?? {}) as Record<string, OpenCLIPModelConfig>)) registerOpenCLIPModelConfig(name, cfg);
  for (const [name, cfg] of Object.entries((spec.hf_text_configs ?? {}) as Record<string, HFCLIPTextConfig>)) registerHFTextConfig(name, cfg);
}

function engineFor(dir: string, role: Record<string, any>): LoadedEngine {
  const key = role.name as string;
  const hit = engines.get(key);
  if (hit) return hit;
  ensureTokenizer();
  registerArchs(role);
  const configPath = join(dir, role.files.config);
  const config = loadConfigs([configPath]);
  const loaded = loadModelFromConfig(config as Record<string, unknown>, join(dir, role.files.weights), {
    configPath,
    keyMap: role.checkpoint_key_map ?? {},
    verbose: false,
  });
  engines.set(key, loaded);
  return loaded;
}

// --------------------------------------------------------------------------------- samplers

function buildSampler(c: ParityCase, spec: Record<string, any>): BaseDiffusionSampler {
  let sampler: BaseDiffusionSampler;
  if (spec.target === 'scripts.demo.turbo.SubstepSampler') {
    const p = spec.params ?? {};
    sampler = new SubstepSampler({
      nSampleSteps: p.n_sample_steps ?? 1,
      numSteps: p.num_steps ?? 1000,
      eta: p.eta ?? 1,
      discretization: instantiateFromConfig(p.discretization_config, { path: `${c.name}.sampler.params.discretization_config` }),
    });
    const attrs = spec.attributes ?? {};
    if (attrs.n_sample_steps !== undefined) (sampler as SubstepSampler).nSampleSteps = attrs.n_sample_steps;
  } else {
    sampler = instantiateFromConfig<BaseDiffusionSampler>({ target: spec.target, params: { ...spec.params, verbose: false } }, { path: `${c.name}.sampler` });
  }
  const w = spec.discretization_wrapper;
  if (w) {
    const name = String(w.target).split('.').pop();
    if (name === 'Img2ImgDiscretizationWrapper') sampler.discretization = new Img2ImgDiscretizationWrapper(sampler.discretization, w.params?.strength ?? 1.0);
    else if (name === 'Txt2NoisyDiscretizationWrapper') sampler.discretization = new Txt2NoisyDiscretizationWrapper(sampler.discretization, w.params?.strength ?? 0.0, w.params?.original_steps ?? null);
    else throw new Error(`${c.name}: unknown discretization wrapper ${w.target}`);
  }
  return sampler;
}

function valueDictOf(spec: Record<string, any>, io: Map<string, IoTensor>, key = 'value_dict'): ValueDict {
  const vd: ValueDict = { ...(spec[key] ?? {}) };
  for (const [k, name] of Object.entries((spec.value_dict_tensors ?? {}) as Record<string, string>)) vd[k] = ioTensor(io, name);
  return vd;
}

function seededGenerator(spec: Record<string, any>): T.Generator {
  const seed = spec.seed?.torch_manual_seed;
  if (typeof seed !== 'number') throw new Error('case has no torch_manual_seed');
  return new T.Generator().manualSeed(seed);
}

/** Checks the recorded torch draws equal what the generator gives (replaying the case's order). */
function checkDraws(c: ParityCase, io: Map<string, IoTensor>): void {
  const draws = (c.spec.draws ?? []) as Array<{ key: string; fn: string; shape: number[] }>;
  if (draws.length === 0) return;
  const g = seededGenerator(c.spec);
  for (const d of draws) {
    const got = g.randnData(d.shape, 'float32');
    assert.deepEqual(Array.from(got), Array.from(io.get(d.key)!.data as Float32Array), `${c.name}: draw ${d.key} (${d.fn}) differs from torch's`);
  }
}

// ------------------------------------------------------------------------------ comparisons

/** Token ids of text embedder i for the c / uc text of the case's conditioner calls. */
async function checkTokens(c: ParityCase, io: Map<string, IoTensor>, engine: DiffusionEngine, calls: Array<{ txt: string[] | null }>, prefix: string): Promise<void> {
  const text = engine.conditioner.embedders.items.map((e, i) => [i, e] as const).filter(([, e]) => e instanceof FrozenCLIPEmbedder || e instanceof FrozenOpenCLIPEmbedder || e instanceof FrozenOpenCLIPEmbedder2);
  for (const [i, e] of text) {
    for (const [which, call] of [['c', calls[0]], ['uc', calls[1]]] as const) {
      const name = `out.${prefix}tokens.${i}.${which}`;
      if (!io.has(name) || !call?.txt) continue;
      await check(c, io, name, (e as FrozenCLIPEmbedder).tokenIds(call.txt));
    }
  }
}

async function checkResult(c: ParityCase, io: Map<string, IoTensor>, r: SampleResult, prefix = ''): Promise<void> {
  for (const k of Object.keys(r.c)) if (io.has(`out.${prefix}c.${k}`)) await check(c, io, `out.${prefix}c.${k}`, r.c[k]!);
  for (const k of Object.keys(r.uc)) if (io.has(`out.${prefix}uc.${k}`)) await check(c, io, `out.${prefix}uc.${k}`, r.uc[k]!);
  await check(c, io, `out.${prefix}samples_z`, r.samplesZ);
  await check(c, io, `out.${prefix}samples`, r.samples);
}

async function checkBatches(c: ParityCase, io: Map<string, IoTensor>, engine: DiffusionEngine, vd: ValueDict, n: number, prefix = ''): Promise<void> {
  const [b, buc] = getBatch(getUniqueEmbedderKeysFromConditioner(engine), vd, [n]);
  for (const [which, batch] of [['batch_c', b], ['batch_uc', buc]] as const) {
    for (const [k, v] of Object.entries(batch)) {
      const name = `aux.${prefix}${which}.${k}`;
      if (io.has(name) && v instanceof T.Tensor) await check(c, io, name, v);
    }
  }
}

// ---------------------------------------------------------------------------------- runners

async function runEngine(c: ParityCase): Promise<void> {
  const io = loadIo(c);
  const { engine, report } = engineFor(c.dir, c.spec);
  const ref = c.spec.load.reported_by_reference as { missing: string[]; unexpected: string[] };
  const keyMap = (c.spec.checkpoint?.key_map_to_sgm ?? {}) as Record<string, string>;
  const mapped = (k: string): string => {
    for (const [from, to] of Object.entries(keyMap)) if (k.startsWith(from)) return to + k.slice(from.length);
    return k;
  };
  // The reference (strict=False, no key map) reports the keys the layout map fixes; with the map
  // nothing is missing but the computed buffer, and every leftover file key is a known unused one.
  assert.ok(report);
  assert.deepEqual(report.missing, [], `${c.name}: missing keys ${report.missing.join(', ')}`);
  assert.deepEqual(report.unexpected, [], `${c.name}: unexpected keys ${report.unexpected.join(', ')}`);
  const own = engine.stateDict();
  // Every key the reference calls unexpected is either loaded under its mapped name or ignored as
  // known-unused; every key it calls missing is either loaded through the map or a computed buffer.
  const expectIgnored = ref.unexpected.filter((k) => !own.has(mapped(k))).sort();
  assert.deepEqual(report.ignored.map((x) => x.key).sort(), expectIgnored, `${c.name}: ignored keys`);
  const expectComputed = ref.missing.filter((k) => !ref.unexpected.some((u) => mapped(u) === k));
  assert.deepEqual(report.computed, expectComputed, `${c.name}: computed buffers`);
  for (const [k, why] of Object.entries((c.spec.checkpoint?.keys_not_needed_by_sgm_inference ?? {}) as Record<string, string>)) {
    const inFile = report.ignored.some((x) => x.key === k) || own.has(mapped(k));
    assert.ok(inFile, `${c.name}: ${k} (${why}) neither ignored nor loaded`);
  }

  // Conditioner output for a get_batch batch (or the given cls), one denoiser call, one decode.
  let batch: Record<string, unknown>;
  if (c.spec.smoke_value_dict) {
    const vd = c.spec.smoke_value_dict as ValueDict;
    [batch] = getBatch(getUniqueEmbedderKeysFromConditioner(engine).sort(), vd, [2]);
    for (const [k, v] of Object.entries(batch)) if (io.has(`aux.smoke.batch_c.${k}`) && v instanceof T.Tensor) await check(c, io, `aux.smoke.batch_c.${k}`, v);
  } else {
    batch = { cls: ioTensor(io, 'in.smoke.cls') };
  }
  const [cond] = engine.conditioner.get_unconditional_conditioning(batch);
  for (const k of Object.keys(cond)) await check(c, io, `out.smoke.c.${k}`, cond[k]!);
  const denoised = engine.denoiser.forward(engine.model, ioTensor(io, 'in.smoke.x'), ioTensor(io, 'in.smoke.sigma'), cond);
  await check(c, io, 'out.smoke.denoised', denoised);
  if (io.has('out.smoke.decoded')) await check(c, io, 'out.smoke.decoded', await engine.decodeFirstStageEval(ioTensor(io, 'in.smoke.z')));
}

async function runTxt2Img(c: ParityCase): Promise<void> {
  const io = loadIo(c);
  checkDraws(c, io);
  const { engine } = engineFor(c.dir, c.spec.engines.model);
  const sampler = buildSampler(c, c.spec.sampler);
  const p = c.spec.params;
  const vd = valueDictOf(c.spec, io);
  await checkBatches(c, io, engine, vd, p.num_samples);
  if (io.has('aux.sigmas')) assert.deepEqual(Array.from(sampler.getSigmas()), Array.from(io.get('aux.sigmas')!.data as Float32Array), `${c.name}: sigmas`);
  const r = await doSample(engine, sampler, vd, p.num_samples, p.H, p.W, p.C, p.F, { forceUcZeroEmbeddings: p.force_uc_zero_embeddings, generator: seededGenerator(c.spec) });
  await checkTokens(c, io, engine, c.spec.conditioner_calls, '');
  await checkResult(c, io, r);
  await checkWatermark(c, io);
}

/**
 * perform_save_locally: the watermark applied to the RECORDED samples (it is discontinuous, so it
 * is checked on the reference's input) and the uint8 pixels of the saved PNG, both exact.
 */
async function checkWatermark(c: ParityCase, io: Map<string, IoTensor>): Promise<void> {
  if (!io.has('out.samples_watermarked')) return;
  const s = io.get('out.samples')!;
  const [n, , h, w] = s.shape as [number, number, number, number];
  await check(c, io, 'out.samples_watermarked', watermarkSamples(s.data as Float32Array, n, h, w), s.shape, EXACT);
  await check(c, io, 'out.saved_png', savedPngPixels(s.data as Float32Array, n, h, w, true), [n, h, w, 3], EXACT);
}

async function runImg2Img(c: ParityCase): Promise<void> {
  const io = loadIo(c);
  checkDraws(c, io);
  const { engine } = engineFor(c.dir, c.spec.engines.model);
  const sampler = buildSampler(c, c.spec.sampler);
  const p = c.spec.params;
  // get_input_image_tensor: uint8 HWC -> float32 / 127.5 - 1, (1, 3, H, W), repeated to the batch.
  const u8 = io.get('in.init_image_u8')!;
  const [h, w] = u8.shape as [number, number, number];
  const img = new Float32Array(p.num_samples * 3 * h * w);
  for (let b = 0; b < p.num_samples; b++)
    for (let ch = 0; ch < 3; ch++)
      for (let i = 0; i < h * w; i++) img[(b * 3 + ch) * h * w + i] = Math.fround(Math.fround((u8.data as Uint8Array)[i * 3 + ch]! / 127.5) - 1);
  assert.deepEqual(Array.from(img), Array.from(io.get('in.img')!.data as Float32Array), `${c.name}: init image tensor`);
  const vd = valueDictOf(c.spec, io);
  if (io.has('aux.sigmas')) assert.deepEqual(Array.from(sampler.getSigmas()), Array.from(io.get('aux.sigmas')!.data as Float32Array), `${c.name}: sigmas`);
  const r = await doImg2Img(T.constant(img, [p.num_samples, 3, h, w], 'float32'), engine, sampler, vd, p.num_samples, {
    forceUcZeroEmbeddings: p.force_uc_zero_embeddings,
    generator: seededGenerator(c.spec),
  });
  if (io.has('aux.z_init')) await check(c, io, 'aux.z_init', r.z);
  if (io.has('aux.noised_z')) await check(c, io, 'aux.noised_z', r.noisedZ);
  await checkTokens(c, io, engine, c.spec.conditioner_calls, '');
  await checkResult(c, io, r);
}

async function runRefiner(c: ParityCase): Promise<void> {
  const io = loadIo(c);
  checkDraws(c, io);
  const base = engineFor(c.dir, c.spec.engines.base).engine;
  const refiner = engineFor(c.dir, c.spec.engines.refiner).engine;
  const s1 = buildSampler(c, c.spec.sampler);
  const s2 = buildSampler(c, c.spec.sampler_refiner);
  const p = c.spec.params;
  const gen = seededGenerator(c.spec);
  const vd = valueDictOf(c.spec, io);
  await checkBatches(c, io, base, vd, p.num_samples, 'base.');
  assert.deepEqual(Array.from(s1.getSigmas()), Array.from(io.get('aux.base.sigmas')!.data as Float32Array), `${c.name}: base sigmas`);
  assert.deepEqual(Array.from(s2.getSigmas()), Array.from(io.get('aux.refiner.sigmas')!.data as Float32Array), `${c.name}: refiner sigmas`);
  const r1 = await doSample(base, s1, vd, p.num_samples, p.H, p.W, p.C, p.F, { forceUcZeroEmbeddings: p.force_uc_zero_embeddings, generator: gen });
  await checkTokens(c, io, base, c.spec.conditioner_calls.base, 'base.');
  await checkResult(c, io, r1, 'base.');
  // The refiner's value dict: apply_refiner's (the demo) or the recorded one (library mode).
  const pr = c.spec.params_refiner;
  const z = r1.samplesZ;
  const vd2: ValueDict = c.spec.value_dict_refiner ?? {
    orig_width: z.shape[3]! * 8,
    orig_height: z.shape[2]! * 8,
    target_width: z.shape[3]! * 8,
    target_height: z.shape[2]! * 8,
    prompt: pr.prompt,
    negative_prompt: pr.negative_prompt,
    crop_coords_top: 0,
    crop_coords_left: 0,
    aesthetic_score: 6.0,
    negative_aesthetic_score: 2.5,
  };
  await checkBatches(c, io, refiner, vd2, pr.num_samples, 'refiner.');
  const r2 = await doImg2Img(z, refiner, s2, vd2, pr.num_samples, {
    skipEncode: true,
    addNoise: !(pr.finish_denoising ?? false),
    forceUcZeroEmbeddings: pr.force_uc_zero_embeddings ?? [],
    generator: gen,
  });
  await check(c, io, 'aux.refiner.noised_z', r2.noisedZ);
  await checkTokens(c, io, refiner, c.spec.conditioner_calls.refiner, 'refiner.');
  await checkResult(c, io, r2, 'refiner.');
}

async function runTurbo(c: ParityCase): Promise<void> {
  const io = loadIo(c);
  const { engine } = engineFor(c.dir, c.spec.engines.model);
  const sampler = buildSampler(c, c.spec.sampler) as SubstepSampler;
  const p = c.spec.params;
  if (io.has('aux.sigmas')) assert.deepEqual(Array.from(sampler.getSigmas()), Array.from(io.get('aux.sigmas')!.data as Float32Array), `${c.name}: sigmas`);
  const r = await turboSample(engine, sampler, p.prompt, p.H, p.W, p.seed);
  await checkTokens(c, io, engine, c.spec.conditioner_calls, '');
  for (const k of Object.keys(r.c)) await check(c, io, `out.c.${k}`, r.c[k]!);
  await check(c, io, 'out.samples_z', r.samplesZ);
  await check(c, io, 'out.samples', r.samples);
  await check(c, io, 'out.samples_uint8', r.samplesUint8, [r.samples.shape[0]!, r.samples.shape[2]!, r.samples.shape[3]!, r.samples.shape[1]!]);
}

async function runLogImages(c: ParityCase): Promise<void> {
  const io = loadIo(c);
  checkDraws(c, io);
  const { engine } = engineFor(c.dir, c.spec.engines.model);
  engine.no_cond_log = true;
  const batch = { jpg: ioTensor(io, c.spec.batch.jpg), cls: ioTensor(io, c.spec.batch.cls) };
  const keys = engine.conditioner.embedders.items.map((e) => e.input_key!).filter(Boolean);
  const [cc, uc] = engine.conditioner.get_unconditional_conditioning(batch, null, keys);
  for (const k of Object.keys(cc)) await check(c, io, `out.c.${k}`, cc[k]!);
  for (const k of Object.keys(uc)) await check(c, io, `out.uc.${k}`, uc[k]!);
  const log = await engine.log_images(batch, { N: c.spec.params.N, generator: seededGenerator(c.spec) });
  if (io.has('aux.inputs')) await check(c, io, 'aux.inputs', log.inputs!);
  if (io.has('aux.reconstructions')) await check(c, io, 'aux.reconstructions', log.reconstructions!);
  await check(c, io, 'out.samples', log.samples!);
}

parityArea('pipeline', {
  pipeline_engine: runEngine,
  pipeline_txt2img: runTxt2Img,
  pipeline_img2img: runImg2Img,
  pipeline_refiner: runRefiner,
  pipeline_turbo: runTurbo,
  pipeline_log_images: runLogImages,
});
