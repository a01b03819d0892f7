// The whole sampling pipeline at full size with random weights: SamplingPipeline.load from a
// random single-file fp16 checkpoint written with the released files' key layout, conditioner,
// sampler steps (one compiled graph per step variant), VAE decode; time and peak RSS per phase.
//   npm run bench -- pipeline                  preset builds + the default cases, one child process each
//   node --import tsx bench/pipeline.ts CASE   one case in this process (the checkpoint must exist)
// Environment:
//   SGM_BENCH_CASES=a,b      cases (default: all but the opt-in ones; see CASES)
//   SGM_BENCH_THREADS=N      ONNX Runtime intra-op threads (default 2)
//   SGM_BENCH_TINY=1         the tiny engines of ../shared/fixtures/pipeline at 64x64 px (plumbing check, seconds)
//   SGM_BENCH_SIZE=N         override the image size of every case (multiple of 64)
//   SGM_BENCH_STEPS=N        override the step count of the guided cases
//   SGM_BENCH_SAMPLER=NAME   override the guided cases' sampler (e.g. EulerEDMSampler: one step graph)
//   SGM_BENCH_PREPARE=1      only write the random checkpoints
//   SGM_BENCH_NO_PRESETS=1   skip the "every preset builds" table
//   SGM_BENCH_JOINT_COND=0   let the sampler evaluate the conditioning as the library does (folded
//                            into step 1) instead of evaluating it up front in one graph (default)
//   SGM_FIXTURES_DIR, SGM_VOCAB_DIR  the fixture root and CLIP vocabulary (default ../shared/...)
// Checkpoints: bench/out/pipeline_<config>_F16.safetensors (tiny: pipeline_tiny_...), written once,
// reused while their keys and shapes match the config. Results: bench/out/pipeline.json
// (tiny: pipeline.tiny.json), per case bench/out/pipeline.<case>.json.
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '../src/tensor/index.js';
import '../src/registry.js';
import { loadConfigs } from '../src/config/index.js';
import { loadModelFromConfig } from '../src/models/load.js';
import type { DiffusionEngine } from '../src/models/diffusion.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { COMPUTED_BUFFERS } from '../src/io/checkpoint_layouts.js';
import { SamplingPipeline } from '../src/inference/api.js';
import { PRESETS, inferenceConfigDir, resolvePreset, type SamplerName } from '../src/inference/presets.js';
import type { SampleResult } from '../src/inference/helpers.js';
import { BaseDiffusionSampler, type SamplingLoop, type SampleOptions, type DenoiserFn } from '../src/modules/diffusionmodules/sampling.js';
import { registerHFTextConfig, registerOpenCLIPModelConfig, type HFCLIPTextConfig, type OpenCLIPModelConfig } from '../src/modules/encoders/modules.js';
import { fmt, median, peakRssMiB, randomInitFor, runInChild, vmHwmMiB, writeRandomSafetensors, type RandomTensorSpec } from './util.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..');
const outDir = join(here, 'out');
const fixturesRoot = process.env.SGM_FIXTURES_DIR ? resolve(process.env.SGM_FIXTURES_DIR) : resolve(repoRoot, '..', 'shared', 'fixtures');
const vocabDir = process.env.SGM_VOCAB_DIR ? resolve(process.env.SGM_VOCAB_DIR) : resolve(repoRoot, '..', 'shared', 'vocab');
const TINY = !!process.env.SGM_BENCH_TINY && process.env.SGM_BENCH_TINY !== '0';
const THREADS = Number(process.env.SGM_BENCH_THREADS ?? 2);
const tag = TINY ? 'pipeline_tiny' : 'pipeline';

/** One distinct config = one random checkpoint. */
interface CheckpointSpec {
  /** configs/inference/<config> at full size. */
  config: string;
  /** The tiny engine of fixtures/pipeline (<tiny>.yaml + the arch registrations in <tiny>.json). */
  tiny: string;
  /**
   * Engine prefix -> file prefix where the released file differs from sgm's names: the released
   * SD 2.x files (ldm layout) hold the OpenCLIP text tower under cond_stage_model.model.*.
   */
  filePrefixes?: Record<string, string>;
}

const CHECKPOINTS: Record<string, CheckpointSpec> = {
  sd_2_1: { config: 'sd_2_1.yaml', tiny: 'sd21_512', filePrefixes: { 'conditioner.embedders.0.model.': 'cond_stage_model.model.' } },
  sd_xl_base: { config: 'sd_xl_base.yaml', tiny: 'sdxl_base' },
  sd_xl_refiner: { config: 'sd_xl_refiner.yaml', tiny: 'sdxl_refiner' },
};

interface Case {
  ckpt: keyof typeof CHECKPOINTS;
  preset: string;
  mode: 'txt2img' | 'turbo';
  size: number;
  steps: number;
  /** txt2img: the sampler (CFG with the preset's scale; batch 2 through the UNet). */
  sampler?: SamplerName;
  /** Not run unless named in SGM_BENCH_CASES (with the reason). */
  optIn?: string;
  /** PyTorch 1.13 fp32 anchor of one UNet call at this size (shared/perf-anchors.md), for context. */
  anchor?: string;
}

const CASES: Record<string, Case> = {
  sd21_512: { ckpt: 'sd_2_1', preset: 'SD-2.1', mode: 'txt2img', size: 512, steps: 4, sampler: 'DPMPP2MSampler', anchor: 'UNet b2 13.3 s, VAE dec 17.4 s' },
  sdxl_512: { ckpt: 'sd_xl_base', preset: 'SDXL-base-1.0', mode: 'txt2img', size: 512, steps: 4, sampler: 'DPMPP2MSampler', anchor: 'UNet b2 23.8 s, VAE dec 17.4 s' },
  sdxl_turbo_512: { ckpt: 'sd_xl_base', preset: 'SDXL-Turbo', mode: 'turbo', size: 512, steps: 1, anchor: 'UNet b2 23.8 s (b1 ~half)' },
  sd_turbo_512: { ckpt: 'sd_2_1', preset: 'SD-Turbo', mode: 'turbo', size: 512, steps: 1, anchor: 'UNet b2 13.3 s (b1 ~half)' },
  sdxl_1024: {
    ckpt: 'sd_xl_base',
    preset: 'SDXL-base-1.0',
    mode: 'txt2img',
    size: 1024,
    steps: 4,
    sampler: 'DPMPP2MSampler',
    optIn: 'four UNet steps at 1024x1024 (batch 2) take ~2 min each on 2 cores, plus a ~1 min VAE decode: ~10 min and ~15+ GB',
    anchor: 'UNet b2 113.6 s, VAE dec 63.0 s',
  },
  sdxl_refiner_1024: {
    ckpt: 'sd_xl_refiner',
    preset: 'SDXL-refiner-1.0',
    mode: 'txt2img',
    size: 1024,
    steps: 4,
    sampler: 'DPMPP2MSampler',
    optIn: 'writes a third random checkpoint (~4.5 GB) and takes minutes; the refiner is normally run as an img2img stage',
  },
};

// ------------------------------------------------------------------------- configs & checkpoints

function tinyDir(): string {
  return join(fixturesRoot, 'pipeline');
}

/** Registers the tiny text-encoder architectures a fixture engine's YAML names. */
function registerTinyArchs(tiny: string): void {
  const spec = JSON.parse(readFileSync(join(tinyDir(), `${tiny}.json`), 'utf8')) as Record<string, any>;
  for (const [name, cfg] of Object.entries((spec.open_clip_model_configs ?? {}) as Record<string, OpenCLIPModelConfig>)) registerOpenCLIPModelConfig(name, cfg);
  for (const [name, cfg] of Object.entries((spec.hf_text_configs ?? {}) as Record<string, HFCLIPTextConfig>)) registerHFTextConfig(name, cfg);
}

function configPathOf(key: string): string {
  const c = CHECKPOINTS[key]!;
  if (TINY) {
    registerTinyArchs(c.tiny);
    return join(tinyDir(), `${c.tiny}.yaml`);
  }
  return join(inferenceConfigDir(), c.config);
}

function checkpointPathOf(key: string): string {
  return join(outDir, `${tag}_${key}_F16.safetensors`);
}

/** The file's tensors for an engine: its stateDict under the released names, without computed buffers. */
function checkpointSpecs(engine: DiffusionEngine, filePrefixes: Record<string, string>): RandomTensorSpec[] {
  const specs: RandomTensorSpec[] = [];
  for (const [key, v] of engine.stateDict()) {
    const last = key.split('.').pop()!;
    if (COMPUTED_BUFFERS.has(last)) continue; // denoiser.sigmas: computed from the config
    let name = key;
    for (const [from, to] of Object.entries(filePrefixes)) if (key.startsWith(from)) name = to + key.slice(from.length);
    const st = v.rawStorage;
    if (st.kind === 'host' && v.dtype === 'int64') {
      specs.push({ name, shape: v.shape, dtype: 'I64', data: st.data as BigInt64Array }); // position_ids, as released
    } else if (v.dtype === 'int64' || v.dtype === 'bool') {
      throw new Error(`${key}: unexpected ${v.dtype} state entry without host data`);
    } else {
      specs.push({ name, shape: v.shape, dtype: 'F16', ...randomInitFor(key, v.shape) });
    }
  }
  return specs;
}

/** True when the file at `path` has exactly these tensors (names, dtypes, shapes). */
function checkpointMatches(path: string, specs: RandomTensorSpec[]): boolean {
  if (!existsSync(path)) return false;
  try {
    const f = SafetensorsFile.open(path);
    const have = new Map(f.tensors().map((t) => [t.name, `${t.dtype}[${t.shape.join(',')}]`]));
    return have.size === specs.length && specs.every((s) => have.get(s.name) === `${s.dtype}[${s.shape.join(',')}]`);
  } catch {
    return false;
  }
}

/** Writes (or reuses) the random checkpoint of one config. */
function prepareCheckpoint(key: string): { path: string; bytes: number; writeMs: number | null } {
  const c = CHECKPOINTS[key]!;
  const path = checkpointPathOf(key);
  const config = loadConfigs([configPathOf(key)]) as Record<string, unknown>;
  const { engine } = loadModelFromConfig(config, null, { verbose: false });
  const specs = checkpointSpecs(engine, c.filePrefixes ?? {});
  if (checkpointMatches(path, specs)) return { path, bytes: statSync(path).size, writeMs: null };
  mkdirSync(outDir, { recursive: true });
  if (existsSync(path)) rmSync(path);
  const gb = specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1) * (s.dtype === 'I64' ? 8 : 2), 0) / 2 ** 30;
  console.log(`  writing ${path} (${specs.length} tensors, ${gb.toFixed(2)} GiB fp16) ...`);
  const t0 = performance.now();
  let lastPrint = t0;
  const bytes = writeRandomSafetensors(path, specs, {
    metadata: { format: 'pt', note: `random weights for benchmarking (${c.config}, released key layout)` },
    onTensor: (i, n) => {
      const now = performance.now();
      if (process.stdout.isTTY && now - lastPrint > 2000) {
        lastPrint = now;
        process.stdout.write(`    ${i}/${n} tensors\r`);
      }
    },
  });
  const writeMs = performance.now() - t0;
  console.log(`  wrote ${(bytes / 2 ** 30).toFixed(2)} GiB in ${fmt(writeMs)}`);
  return { path, bytes, writeMs };
}

// ---------------------------------------------------------------------------- preset builds

interface PresetBuild {
  preset: string;
  config: string;
  buildMs: number;
  unet: number;
  vae: number;
  conditioner: number;
  total: number;
  error?: string;
}

/** Every preset's engine at full size, parameters created lazily (nothing drawn, nothing read). */
function buildPresets(): PresetBuild[] {
  const out: PresetBuild[] = [];
  for (const p of PRESETS) {
    const t0 = performance.now();
    try {
      const config = loadConfigs([join(inferenceConfigDir(), p.config)]) as Record<string, unknown>;
      const { engine } = loadModelFromConfig(config, null, { verbose: false });
      const buildMs = performance.now() - t0;
      const unet = engine.model.numParameters();
      const vae = engine.first_stage_model.numParameters();
      const conditioner = engine.conditioner.numParameters();
      out.push({ preset: p.name, config: p.config, buildMs, unet, vae, conditioner, total: engine.numParameters() });
    } catch (e) {
      out.push({ preset: p.name, config: p.config, buildMs: performance.now() - t0, unet: 0, vae: 0, conditioner: 0, total: 0, error: (e as Error).message });
    }
  }
  return out;
}

const M = (n: number): string => `${(n / 1e6).toFixed(1)} M`;

function printPresetTable(rows: PresetBuild[]): void {
  console.log('\nEvery preset at full size, random weights (lazy init):\n');
  console.log('| preset | config | build | UNet params | VAE params | conditioner params | total |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    if (r.error) console.log(`| ${r.preset} | ${r.config} | FAILED | ${r.error.replace(/\|/g, '/')} | | | |`);
    else console.log(`| ${r.preset} | ${r.config} | ${fmt(r.buildMs)} | ${M(r.unet)} | ${M(r.vae)} | ${M(r.conditioner)} | ${M(r.total)} |`);
  }
}

// ------------------------------------------------------------------------------- one case

interface CaseResult {
  case: string;
  preset: string;
  mode: string;
  size: number;
  steps: number;
  unetBatch: number;
  threads: number;
  tiny: boolean;
  checkpoint: string;
  checkpointGiB: number;
  /** SamplingPipeline.load: config, instantiate (lazy), checkpoint map, tokenizer. */
  loadMs: number;
  /** The conditioner's graphs (c and uc together), incl. their session creation. */
  conditionerMs: number | null;
  /** Per step, incl. trace + session creation the first time a step variant appears. */
  stepMs: number[];
  firstStepMs: number;
  /** ONNX Runtime sessions created (and emit + create ms) during each step. */
  stepSessions: number[];
  stepSessionMs: number[];
  /** Median of the steps that created no session (NaN when none). */
  steadyStepMs: number;
  /** Emit + session creation (engineStats.sessionCreateMs) over the whole sampling call (conditioner, steps, decode). */
  sessionMs: number;
  sessions: number;
  /** decodeFirstStageEval incl. its session creation. */
  decodeMs: number;
  /** The pipeline call (textToImage / turbo): conditioner + steps + decode + host post-processing. */
  sampleMs: number;
  /** load + sampleMs. */
  endToEndMs: number;
  peakRssMiB: number;
  vmHwmMiB: number | null;
  rssAfterLoadMiB: number;
  rssAfterConditionerMiB: number | null;
  /** Peak RSS when the decode started (load + conditioner + steps). */
  rssBeforeDecodeMiB: number;
  loadedTensors: number | null;
  outputFinite: string;
  outputMean: number;
  anchor?: string;
}

/** Collects the phase timings of a sampler run (hooks installed on the sampler base class). */
class PhaseClock {
  condMs: number | null = null;
  rssAfterCond: number | null = null;
  stepsStart = 0;
  stamps: number[] = [];
  sessions: Array<[number, number]> = [];
  installed = false;

  static sessionStat(): [number, number] {
    return [T.engineStats.sessionsCreated, T.engineStats.sessionCreateMs]; // createMs includes the emit
  }

  install(joint: boolean): void {
    const orig = BaseDiffusionSampler.prototype.runLoop;
    const clock = this;
    BaseDiffusionSampler.prototype.runLoop = async function (this: BaseDiffusionSampler, denoiser: DenoiserFn, loop: SamplingLoop, opts: SampleOptions = {}) {
      if (joint) {
        // The conditioning as one graph (values memoised on the tensors, so the steps feed them).
        const ts = [...new Set([...Object.values(loop.cond), ...Object.values(loop.uc)].filter((v): v is T.Tensor => v instanceof T.Tensor))];
        const t0 = performance.now();
        await T.evaluate(ts);
        clock.condMs = performance.now() - t0;
        clock.rssAfterCond = peakRssMiB();
      }
      clock.stepsStart = performance.now();
      clock.sessions = [PhaseClock.sessionStat()];
      const onProgress = opts.onProgress;
      return orig.call(this, denoiser, loop, {
        ...opts,
        onProgress: (step, total, sigma) => {
          clock.stamps.push(performance.now());
          clock.sessions.push(PhaseClock.sessionStat());
          onProgress?.(step, total, sigma);
        },
      });
    };
    this.installed = true;
  }

  stepMs(): number[] {
    return this.stamps.map((t, i) => t - (i === 0 ? this.stepsStart : this.stamps[i - 1]!));
  }

  /** [sessions created, emit + create ms] per step. */
  stepSessions(): Array<[number, number]> {
    return this.sessions.slice(1).map((v, i) => [v[0] - this.sessions[i]![0], v[1] - this.sessions[i]![1]]);
  }
}

async function runCase(name: string): Promise<CaseResult> {
  const c = CASES[name];
  if (!c) throw new Error(`unknown case ${name}; known: ${Object.keys(CASES).join(', ')}`);
  T.setRuntimeDefaults({ threads: THREADS });
  const size = Number(process.env.SGM_BENCH_SIZE ?? (TINY ? 64 : c.size));
  const steps = c.mode === 'turbo' ? c.steps : Number(process.env.SGM_BENCH_STEPS ?? c.steps);
  const ckpt = checkpointPathOf(c.ckpt);
  if (!existsSync(ckpt)) throw new Error(`${ckpt} is missing: run \`npm run bench -- pipeline\` (or with SGM_BENCH_PREPARE=1) first`);
  const configPath = configPathOf(c.ckpt);
  const preset = resolvePreset(c.preset);
  const joint = process.env.SGM_BENCH_JOINT_COND !== '0';
  const clock = new PhaseClock();
  clock.install(joint);

  const tl = performance.now();
  const pipe = SamplingPipeline.load({ preset, config: configPath, ckpt, vocabDir, verbose: false });
  const loadMs = performance.now() - tl;
  const rssAfterLoad = peakRssMiB();
  const r = pipe.report;
  if (r && (r.missing.length || r.unexpected.length)) throw new Error(`${name}: checkpoint does not match: ${r.missing.length} missing, ${r.unexpected.length} unexpected`);

  let decodeMs = 0;
  let rssBeforeDecode = NaN;
  const engine = pipe.engine;
  const origDecode = engine.decodeFirstStageEval.bind(engine);
  engine.decodeFirstStageEval = async (z: T.Tensor) => {
    rssBeforeDecode = peakRssMiB();
    const t0 = performance.now();
    const out = await origDecode(z);
    decodeMs = performance.now() - t0;
    return out;
  };

  const prompt = preset.default_prompt;
  const ts = performance.now();
  const sess0 = PhaseClock.sessionStat();
  let res: SampleResult;
  if (c.mode === 'turbo') {
    res = await pipe.turbo(prompt, { steps, width: size, height: size, seed: 0 });
  } else {
    res = await pipe.textToImage({ width: size, height: size, steps, sampler: (process.env.SGM_BENCH_SAMPLER as SamplerName | undefined) ?? c.sampler ?? 'DPMPP2MSampler' }, prompt, '', 1, { seed: 42 });
  }
  const sampleMs = performance.now() - ts;
  const sess1 = PhaseClock.sessionStat();
  const x = (await res.samplesX.data()) as Float32Array;
  let finite = 0;
  let sum = 0;
  for (let i = 0; i < x.length; i++) if (Number.isFinite(x[i]!)) (finite++, (sum += x[i]!));
  const stepMs = clock.stepMs();
  const stepSess = clock.stepSessions();
  const result: CaseResult = {
    case: name,
    preset: preset.name,
    mode: c.mode,
    size,
    steps,
    unetBatch: c.mode === 'turbo' ? 1 : 2,
    threads: THREADS,
    tiny: TINY,
    checkpoint: ckpt,
    checkpointGiB: statSync(ckpt).size / 2 ** 30,
    loadMs,
    conditionerMs: clock.condMs,
    stepMs,
    firstStepMs: stepMs[0] ?? NaN,
    stepSessions: stepSess.map((v) => v[0]),
    stepSessionMs: stepSess.map((v) => v[1]),
    steadyStepMs: median(stepMs.filter((_, i) => stepSess[i]![0] === 0)),
    sessions: sess1[0] - sess0[0],
    sessionMs: sess1[1] - sess0[1],
    decodeMs,
    sampleMs,
    endToEndMs: loadMs + sampleMs,
    peakRssMiB: peakRssMiB(),
    vmHwmMiB: vmHwmMiB(),
    rssAfterLoadMiB: rssAfterLoad,
    rssAfterConditionerMiB: clock.rssAfterCond,
    rssBeforeDecodeMiB: rssBeforeDecode,
    loadedTensors: r?.loaded ?? null,
    outputFinite: `${finite}/${x.length}`,
    outputMean: finite ? sum / finite : NaN,
    ...(c.anchor ? { anchor: c.anchor } : {}),
  };
  return result;
}

// --------------------------------------------------------------------------------- report

const s = (ms: number | null): string => (ms === null || !Number.isFinite(ms) ? '–' : (ms / 1000).toFixed(2));
const g = (mib: number | null): string => (mib === null ? '–' : (mib / 1024).toFixed(2));

function printCaseTable(rows: CaseResult[]): void {
  console.log(`\nPipeline cases${TINY ? ' (TINY engines: plumbing only, figures meaningless)' : ''}, ${THREADS} threads, seconds:\n`);
  console.log('| case | preset | px | steps | UNet batch | load | conditioner | first step | steady step | VAE decode | sample | end to end | peak RSS GiB | sessions (create s) | output finite | per-step times (session s) |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.case} | ${r.preset} | ${r.size} | ${r.steps} | ${r.unetBatch} | ${s(r.loadMs)} | ${s(r.conditionerMs)} | ${s(r.firstStepMs)} | ${s(r.steadyStepMs)} | ${s(r.decodeMs)} | ${s(r.sampleMs)} | ${s(r.endToEndMs)} | ${g(r.peakRssMiB)} | ${r.sessions} (${s(r.sessionMs)}) | ${r.outputFinite} | ${r.stepMs.map((m, i) => `${s(m)}${r.stepSessions[i] ? ` (${s(r.stepSessionMs[i]!)})` : ''}`).join(', ')} |`,
    );
  }
  console.log(
    '\nload = SamplingPipeline.load (config, lazy instantiate, checkpoint map, tokenizer); conditioner = c and uc evaluated as one graph (incl. session creation); ' +
      'first step includes tracing and ONNX Runtime session creation (DPM++ 2M compiles a second step variant at step 2, the first step with a history term); ' +
      'steady step = median of the steps that created no session; sessions = ONNX models emitted + sessions created during the sampling call (their ms, also in the step column in brackets); sample = the textToImage / turbo call; end to end = load + sample.',
  );
}

function resultPath(name: string): string {
  return join(outDir, `${tag}.${name}.json`);
}

export async function run(): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  const defaults = Object.entries(CASES).filter(([, c]) => !c.optIn).map(([n]) => n);
  const wanted = process.env.SGM_BENCH_CASES ? process.env.SGM_BENCH_CASES.split(',').map((x) => x.trim()).filter(Boolean) : defaults;
  for (const n of wanted) if (!CASES[n]) throw new Error(`unknown case ${n}; known: ${Object.keys(CASES).join(', ')}`);
  for (const [n, c] of Object.entries(CASES)) {
    if (c.optIn && !wanted.includes(n)) console.log(`${n} is opt-in (SGM_BENCH_CASES=${n}): ${c.optIn}`);
  }
  console.log(`pipeline benchmark${TINY ? ' (TINY)' : ''}: cases ${wanted.join(', ')}; ${THREADS} threads`);

  const presets = process.env.SGM_BENCH_NO_PRESETS ? [] : buildPresets();
  if (presets.length) printPresetTable(presets);

  const checkpoints: Record<string, { path: string; bytes: number; writeMs: number | null }> = {};
  for (const key of [...new Set(wanted.map((n) => CASES[n]!.ckpt))]) {
    console.log(`\ncheckpoint ${key}:`);
    checkpoints[key] = prepareCheckpoint(key);
    const w = checkpoints[key]!;
    console.log(`  ${w.path}: ${(w.bytes / 2 ** 30).toFixed(2)} GiB${w.writeMs === null ? ' (reused)' : ` (written in ${fmt(w.writeMs)})`}`);
  }
  if (process.env.SGM_BENCH_PREPARE) return;

  const rows: CaseResult[] = [];
  const failed: string[] = [];
  for (const name of wanted) {
    console.log(`\n== ${name}`);
    const rp = resultPath(name);
    if (existsSync(rp)) rmSync(rp);
    const r = runInChild(fileURLToPath(import.meta.url), [name], { cwd: repoRoot });
    if (r.status === 0 && existsSync(rp)) rows.push(JSON.parse(readFileSync(rp, 'utf8')) as CaseResult);
    else {
      failed.push(name);
      console.log(`${name}: failed (exit ${r.status}${r.signal ? `, signal ${r.signal}` : ''})`);
    }
  }
  printPresetTable(presets);
  printCaseTable(rows);
  if (failed.length) console.log(`\nfailed: ${failed.join(', ')}`);
  const out = join(outDir, TINY ? 'pipeline.tiny.json' : 'pipeline.json');
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), threads: THREADS, tiny: TINY, presets, checkpoints, cases: rows, failed }, null, 1));
  console.log(`\nwrote ${out}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url) && process.argv[2]) {
  const name = process.argv[2];
  const r = await runCase(name);
  writeFileSync(resultPath(name), JSON.stringify(r, null, 1));
  console.log(
    `${name}: load ${fmt(r.loadMs)}, conditioner ${r.conditionerMs === null ? '–' : fmt(r.conditionerMs)}, steps ${r.stepMs.map(fmt).join(' / ')} (steady ${fmt(r.steadyStepMs)}), sessions ${r.sessions} (${fmt(r.sessionMs)}), ` +
      `decode ${fmt(r.decodeMs)}, sample ${fmt(r.sampleMs)}, end to end ${fmt(r.endToEndMs)}; peak RSS ${g(r.peakRssMiB)} GiB ` +
      `(after load ${g(r.rssAfterLoadMiB)}, after conditioner ${g(r.rssAfterConditionerMiB)}, before decode ${g(r.rssBeforeDecodeMiB)}); output finite ${r.outputFinite}, mean ${r.outputMean.toFixed(4)}`,
  );
}
