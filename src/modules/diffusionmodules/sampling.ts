// The samplers of sgm.modules.diffusionmodules.sampling (partially ported from k-diffusion in the
// reference): Euler/Heun EDM, Euler ancestral, DPM++ 2S ancestral, DPM++ 2M and linear multistep.
//
// Samplers know nothing about the network: they take a `DenoiserFn` that BUILDS a graph
// (x, sigma, cond) -> denoised. One sampler step (guider input preparation, the denoiser call(s),
// guidance and the update) is traced into ONE compiled graph, and each sampler uses exactly ONE
// such graph for every step of a sample() call (per input shape and cond structure): a compiled
// graph holds the network's weights as initializers and ONNX Runtime keeps one copy of them per
// session, so a second step graph would double the memory of the weights (10 GB for SDXL's UNet).
// The step's scalars (sigma, sigma_hat, dt, sigma_up, DPM++ multipliers, LMS coefficients...), the
// noise and the cond/uc tensors are graph inputs, and so are the per-step differences that used to
// be separate variants: host-side float math decides what a step needs (churn or not, last step,
// first DPM++ 2M step, LMS order) and feeds values that make the one formula give exactly (bit for
// bit, in float32) the reference's result for that step: zero noise and multipliers (x + 0 = x,
// 1 * d = d, d - 0 * 0 = d), zero history with zero coefficients, or, where a step needs fewer
// network evaluations (Heun's last step, DPM++ 2S ancestral's Euler fallback), a `where` on a flag
// input that selects the cheaper branch's result; the graph then evaluates the network once more
// than the reference on that step (documented at each sampler).
//
// Host scalars follow the reference's float32 tensor arithmetic: every +, -, *, /, sqrt is rounded
// to float32 (Math.fround on float32 operands gives exactly torch's float32 result); log, exp and
// expm1 are correctly rounded here, within 1 ulp of torch's SLEEF routines.
import * as T from '../../tensor/index.js';
import { Tensor, type CompiledFunction, type DType } from '../../tensor/index.js';
import type { Cond } from './denoiser.js';
import { IdentityGuider } from './guiders.js';
import { linear_multistep_coeff } from './sampling_utils.js';

export type { Cond } from './denoiser.js';

/** Builds the graph of one denoiser evaluation: (x, sigma of shape (B,), cond) -> denoised. */
export type DenoiserFn = (x: Tensor, sigma: Tensor, cond: Cond) => Tensor;

/**
 * A source of the sampler's random draws (torch.randn_like(x) in the reference): returns
 * numel(shape) standard normal float32 values. `drawIndex` counts the draws of one sample() call
 * from 0; `stepIndex` is the step that draws.
 */
export type NoiseSource = (shape: number[], stepIndex: number, drawIndex: number) => Float32Array;

/** The guider interface the samplers use (guiders.ts: VanillaCFG, IdentityGuider, LinearPredictionGuider). */
export interface SamplerGuider {
  prepareInputs(x: Tensor, s: Tensor, c: Cond, uc: Cond): [Tensor, Tensor, Cond];
  call(x: Tensor, sigma: Tensor): Tensor;
}

/** The discretization interface the samplers use (discretizer.ts): host sigmas, descending. */
export interface SamplerDiscretization {
  call(n: number, opts?: { doAppendZero?: boolean; flip?: boolean }): Float32Array;
}

export interface StepInfo {
  /** 0-based index of the step just done. */
  step: number;
  /** Number of steps (num_sigmas - 1). */
  total: number;
  /** The step's sigma (sigmas[step]). */
  sigma: number;
  /** x after the step (evaluated). */
  x: Tensor;
}

export interface SampleOptions {
  /** Overrides the sampler's num_steps for this call. */
  numSteps?: number;
  /** Called after each step with (steps done, total steps, the sigma of the step just done). */
  onProgress?: (step: number, total: number, sigma: number) => void;
  /** Called after each step with the evaluated x (trajectories, previews). */
  onStep?: (info: StepInfo) => void | Promise<void>;
  /** Aborting it stops sampling between steps with a SamplingAbortedError. */
  signal?: AbortSignal;
  /** Where the random draws come from; default `generator.randnData(shape)` (torch.randn_like). */
  noise?: NoiseSource;
  /** The torch-compatible generator of the default noise source; default T.defaultGenerator. */
  generator?: T.Generator;
}

/** Thrown by sample() when its AbortSignal is aborted (between steps); `name` is 'AbortError'. */
export class SamplingAbortedError extends Error {
  constructor(
    readonly sampler: string,
    readonly step: number,
    readonly total: number,
    reason?: unknown,
  ) {
    super(`${sampler}: sampling aborted before step ${step + 1} of ${total}`, reason === undefined ? undefined : { cause: reason });
    this.name = 'AbortError';
  }
}

/** What prepare_sampling_loop returns. */
export interface SamplingLoop {
  /** x * sqrt(1 + sigmas[0]^2) (the reference scales the caller's tensor in place; ours is a new tensor). */
  x: Tensor;
  /** The discretization's sigmas, descending, with the appended zero. */
  sigmas: Float32Array;
  numSigmas: number;
  cond: Cond;
  uc: Cond;
}

export interface BaseDiffusionSamplerOptions {
  discretization: SamplerDiscretization;
  /** Default number of steps (the reference's num_steps); sample() can override it. */
  numSteps?: number | null;
  /** Default IdentityGuider. */
  guider?: SamplerGuider | null;
  /** Print the sampling setting and per-step progress to stderr. */
  verbose?: boolean;
  /**
   * The reference's `device` (default "cuda"), kept for config compatibility. Graphs run on the
   * engine's runtime device (T.setRuntimeDefaults), which also runs the network.
   */
  device?: string;
}

const f = Math.fround;

/** torch.sum of B copies of a float32 value. */
function sumF32(v: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s = f(s + v);
  return s;
}

/** -log(sigma) in float32 (to_neg_log_sigma). */
function negLog(sigma: number): number {
  return f(-f(Math.log(sigma)));
}

/** exp(-t) in float32 (to_sigma). */
function toSigma(t: number): number {
  return f(Math.exp(f(-t)));
}

/**
 * get_ancestral_step on host float32 scalars (sampling_utils.get_ancestral_step builds the same
 * thing as a graph): [sigma_down, sigma_up] with
 * sigma_up = min(to, eta * (to^2 (from^2 - to^2) / from^2)^0.5), sigma_down = (to^2 - up^2)^0.5;
 * eta = 0 gives [to, 0].
 */
export function ancestralStepF32(sigmaFrom: number, sigmaTo: number, eta = 1): [sigmaDown: number, sigmaUp: number] {
  const from = f(sigmaFrom);
  const to = f(sigmaTo);
  if (!eta) return [to, 0];
  const to2 = f(to * to);
  const from2 = f(from * from);
  const inner = f(f(to2 * f(from2 - to2)) / from2);
  const up = Math.min(to, f(f(Math.sqrt(inner)) * f(eta)));
  const down = f(Math.sqrt(f(to2 - f(up * up))));
  return [down, up];
}

// ------------------------------------------------------------------ step graphs

export interface StepInput {
  name: string;
  shape: number[];
  value: Float32Array | Tensor;
  dtype?: DType;
}

export type Denoise = (x: Tensor, sigma: Tensor) => Tensor;
export type StepBody = (inp: Record<string, Tensor>, denoise: Denoise) => Record<string, Tensor>;

/** The cond/uc dicts split into their tensors (graph inputs) and a structural signature. */
export interface CondPlan {
  tensors: Tensor[];
  signature: string;
  /** The dicts again, with the tensors replaced by `symbols` (same object for cond and uc if they were). */
  rebuild(symbols: readonly Tensor[]): [Cond, Cond];
}

function describeValue(key: string, v: unknown): string {
  try {
    return JSON.stringify(v, (_k, val: unknown) => {
      if (val instanceof Tensor) throw new Error('nested tensor');
      if (typeof val === 'function') throw new Error('function');
      if (typeof val === 'bigint') return `${val}n`;
      if (typeof val === 'number' && !Number.isFinite(val)) return String(val);
      return val;
    }) ?? 'undefined';
  } catch {
    throw new TypeError(
      `sampler: cond key '${key}' holds a value that is neither a tensor nor plain data (numbers, strings, lists); ` +
        'put tensors directly under a cond key',
    );
  }
}

/** True when two tensors are known (evaluated) and hold the same values. */
function sameKnownValues(a: Tensor, b: Tensor): boolean {
  if (a.dtype !== b.dtype || a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) return false;
  const x = a.value as ArrayLike<number | bigint> | undefined;
  const y = b.value as ArrayLike<number | bigint> | undefined;
  if (x === undefined || y === undefined || x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i] && !(Number.isNaN(x[i]) && Number.isNaN(y[i]))) return false;
  return true;
}

/**
 * Splits cond and uc into graph inputs. A tensor object used several times is one input; a uc
 * entry equal in value to the cond entry of the same key is the same input too (the guiders'
 * check that non-concatenated entries agree then still sees identical objects in the graph).
 */
function planCond(cond: Cond, uc: Cond): CondPlan {
  const tensors: Tensor[] = [];
  const index = new Map<Tensor, number>();
  const idOf = (t: Tensor, alias?: Tensor): number => {
    let i = index.get(t);
    if (i === undefined) {
      const j = alias !== undefined ? index.get(alias) : undefined;
      if (j !== undefined && sameKnownValues(t, alias!)) i = j;
      else {
        i = tensors.length;
        tensors.push(t);
      }
      index.set(t, i);
    }
    return i;
  };
  const sig = (c: Cond, other?: Cond): string =>
    Object.keys(c)
      .map((k) => {
        const v = c[k];
        if (v instanceof Tensor) {
          const o = other?.[k];
          return `${JSON.stringify(k)}:#${idOf(v, o instanceof Tensor ? o : undefined)}`;
        }
        return `${JSON.stringify(k)}=${describeValue(k, v)}`;
      })
      .join(',');
  const same = uc === cond;
  const sc = sig(cond);
  const su = same ? 'same' : sig(uc, cond);
  const shapes = tensors.map((t) => `${t.dtype}[${t.shape.join(',')}]`).join(';');
  const rebuild = (symbols: readonly Tensor[]): [Cond, Cond] => {
    const map = (c: Cond): Cond => {
      const out: Cond = {};
      for (const k of Object.keys(c)) {
        const v = c[k];
        out[k] = v instanceof Tensor ? symbols[index.get(v)!]! : v;
      }
      return out;
    };
    const c = map(cond);
    return [c, same ? c : map(uc)];
  };
  return { tensors, signature: `{${sc}}|{${su}}|${shapes}`, rebuild };
}

/** The per-call state of a sampling loop. */
export interface LoopState {
  denoiser: DenoiserFn;
  cond: Cond;
  uc: Cond;
  condPlan: CondPlan;
  /** Batch size (x.shape[0]). */
  batch: number;
  shape: number[];
  dtype: DType;
  noise: NoiseSource;
  draws: number;
  /** A zero-filled buffer of x's shape (fed for unused noise and history inputs); made on first use. */
  zeros?: Float32Array;
}

// ------------------------------------------------------------------ base class

export class BaseDiffusionSampler {
  numSteps: number | null;
  discretization: SamplerDiscretization;
  readonly guider: SamplerGuider;
  verbose: boolean;
  readonly device: string;
  /** Compiled step graphs: per denoiser function, by variant + shapes + cond structure. */
  private readonly graphs = new WeakMap<DenoiserFn, Map<string, Promise<CompiledFunction<Record<string, Tensor>>>>>();

  constructor(opts: BaseDiffusionSamplerOptions) {
    if (!opts || typeof opts.discretization?.call !== 'function') {
      throw new TypeError(`${new.target.name}: a discretization (with call(n)) is required`);
    }
    this.numSteps = opts.numSteps ?? null;
    if (this.numSteps !== null) checkSteps(new.target.name, this.numSteps);
    this.discretization = opts.discretization;
    this.guider = opts.guider ?? new IdentityGuider();
    this.verbose = opts.verbose ?? false;
    this.device = opts.device ?? 'cuda';
  }

  /** Name used in messages and graph names. */
  get name(): string {
    return this.constructor.name;
  }

  /** The sigmas of `numSteps` steps: the discretization's, descending, with the appended zero. */
  getSigmas(numSteps?: number | null): Float32Array {
    const n = numSteps ?? this.numSteps;
    if (n === null || n === undefined) {
      throw new Error(`${this.name}: num_steps is not set; give it in the sampler's config or as sample(..., { numSteps })`);
    }
    checkSteps(this.name, n);
    return this.discretization.call(n, { doAppendZero: true, flip: false });
  }

  /** prepare_sampling_loop: sigmas, x scaled by sqrt(1 + sigmas[0]^2), uc defaulting to cond. */
  prepareSamplingLoop(x: Tensor, cond: Cond, uc?: Cond | null, numSteps?: number | null): SamplingLoop {
    const sigmas = this.getSigmas(numSteps);
    return this.loopFromSigmas(x, sigmas, cond, uc ?? cond);
  }

  protected loopFromSigmas(x: Tensor, sigmas: Float32Array, cond: Cond, uc: Cond): SamplingLoop {
    // One sigma means no step (e.g. an img2img strength too small for the step count): the
    // reference's loop runs zero times and returns the scaled input; so does runLoop.
    if (sigmas.length < 1) throw new Error(`${this.name}: the discretization returned no sigmas`);
    const s0 = sigmas[0]!;
    // x *= torch.sqrt(1.0 + sigmas[0] ** 2.0), in float32.
    const scale = f(Math.sqrt(f(1 + f(s0 * s0))));
    return { x: T.mul(x, scale), sigmas, numSigmas: sigmas.length, cond, uc };
  }

  /** denoise(x, denoiser, sigma, cond, uc): guider(denoiser(*guider.prepare_inputs(...)), sigma), as a graph. */
  denoise(x: Tensor, denoiser: DenoiserFn, sigma: Tensor, cond: Cond, uc: Cond): Tensor {
    const [xi, si, ci] = this.guider.prepareInputs(x, sigma, cond, uc);
    return this.guider.call(denoiser(xi, si, ci), sigma);
  }

  /**
   * Runs the sampler (the reference's __call__): x is the initial noise (unscaled), cond/uc the
   * conditionings (uc defaults to cond). Returns the evaluated sample.
   */
  async sample(denoiser: DenoiserFn, x: Tensor, cond: Cond, uc?: Cond | null, opts: SampleOptions = {}): Promise<Tensor> {
    const loop = this.prepareSamplingLoop(x, cond, uc, opts.numSteps);
    return this.runLoop(denoiser, loop, opts);
  }

  /** Runs the steps of a prepared loop. */
  async runLoop(denoiser: DenoiserFn, loop: SamplingLoop, opts: SampleOptions = {}): Promise<Tensor> {
    if (typeof denoiser !== 'function') throw new TypeError(`${this.name}.sample: the denoiser must be a function (x, sigma, cond) => Tensor`);
    const x0 = loop.x;
    if (x0.ndim < 1) throw new TypeError(`${this.name}.sample: x must have a batch dimension, got shape [${x0.shape.join(', ')}]`);
    if (x0.dtype !== 'float32') {
      throw new TypeError(`${this.name}.sample: x must be float32 (the samplers compute in float32, like the reference), got ${x0.dtype}`);
    }
    if (loop.numSigmas < 2) return T.constant(await x0.data(), x0.shape, 'float32');
    const gen = opts.generator ?? T.defaultGenerator;
    const state: LoopState = {
      denoiser,
      cond: loop.cond,
      uc: loop.uc,
      condPlan: planCond(loop.cond, loop.uc),
      batch: x0.shape[0]!,
      shape: [...x0.shape],
      dtype: x0.dtype,
      noise: opts.noise ?? ((shape) => gen.randnData(shape, 'float32')),
      draws: 0,
    };
    const total = loop.numSigmas - 1;
    if (this.verbose) this.printSetting(loop.numSigmas);
    const hooks = {
      before: (i: number): void => {
        if (opts.signal?.aborted) throw new SamplingAbortedError(this.name, i, total, opts.signal.reason);
      },
      after: async (i: number, x: Tensor): Promise<void> => {
        const sigma = loop.sigmas[i]!;
        if (this.verbose) process.stderr.write(`${this.name}: step ${i + 1}/${total} (sigma ${sigma.toPrecision(5)})\n`);
        opts.onProgress?.(i + 1, total, sigma);
        if (opts.onStep) await opts.onStep({ step: i, total, sigma, x });
      },
    };
    return this.steps(state, loop, hooks);
  }

  /** The loop over the sigmas; implemented by each sampler. */
  protected async steps(_state: LoopState, _loop: SamplingLoop, _hooks: LoopHooks): Promise<Tensor> {
    throw new Error(`${this.name} does not implement sampling (BaseDiffusionSampler is abstract)`);
  }

  private printSetting(numSigmas: number): void {
    const line = '#'.repeat(30);
    process.stderr.write(
      `${line}  Sampling setting  ${line}\nSampler: ${this.name}\nDiscretization: ${this.discretization.constructor.name}\n` +
        `Guider: ${(this.guider as object).constructor.name}\nSampling with ${this.name} for ${numSigmas} steps\n`,
    );
  }

  // ---------------------------------------------------------------- helpers for subclasses

  /** Draws one noise tensor's values from the loop's source (checked). */
  protected draw(state: LoopState, step: number): Float32Array {
    const n = state.shape.reduce((a, b) => a * b, 1);
    const v = state.noise(state.shape, step, state.draws++);
    if (!(v instanceof Float32Array) || v.length !== n) {
      throw new TypeError(`${this.name}: the noise source returned ${v?.length ?? 'no'} values for shape [${state.shape.join(', ')}]; expected a Float32Array of ${n}`);
    }
    return v;
  }

  /** A (B,) float32 array of one value: s_in * value. */
  protected perSample(state: LoopState, v: number): Float32Array {
    return new Float32Array(state.batch).fill(v);
  }

  /** A step input holding a float32 scalar broadcast as (B, 1, ..., 1) (append_dims(s_in * v, x.ndim)). */
  protected scalarInput(state: LoopState, name: string, v: number): StepInput {
    const shape = [state.batch, ...new Array<number>(state.shape.length - 1).fill(1)];
    return { name, shape, value: new Float32Array(state.batch).fill(v) };
  }

  /** A step input holding s_in * v, shape (B,) (what the denoiser receives as sigma). */
  protected sigmaInput(state: LoopState, name: string, v: number): StepInput {
    return { name, shape: [state.batch], value: this.perSample(state, v) };
  }

  protected xInput(state: LoopState, name: string, x: Tensor): StepInput {
    return { name, shape: state.shape, value: x, dtype: state.dtype };
  }

  protected noiseInput(state: LoopState, name: string, data: Float32Array): StepInput {
    return { name, shape: state.shape, value: data };
  }

  /** A step input of x's shape holding zeros (an unused noise or history input). */
  protected zeroInput(state: LoopState, name: string): StepInput {
    state.zeros ??= new Float32Array(state.shape.reduce((a, b) => a * b, 1));
    return { name, shape: state.shape, value: state.zeros };
  }

  /** A (B, 1, ..., 1) float32 input holding 1 or 0; the graph reads it as a bool with T.gt(flag, 0.5). */
  protected flagInput(state: LoopState, name: string, on: boolean): StepInput {
    return this.scalarInput(state, name, on ? 1 : 0);
  }

  /**
   * Runs one step graph: compiled once per (denoiser, variant, input shapes, cond structure) and
   * cached on this sampler. `body` must depend only on `variant` and the sampler's settings. The
   * samplers here use one variant for all their steps, so one sample() call compiles one graph.
   */
  protected async runStep(state: LoopState, variant: string, inputs: StepInput[], body: StepBody): Promise<Record<string, Tensor>> {
    let byDenoiser = this.graphs.get(state.denoiser);
    if (!byDenoiser) {
      byDenoiser = new Map();
      this.graphs.set(state.denoiser, byDenoiser);
    }
    const key = `${variant}|${inputs.map((i) => `${i.name}:${i.dtype ?? 'float32'}[${i.shape.join(',')}]`).join(';')}|${state.condPlan.signature}`;
    let compiled = byDenoiser.get(key);
    if (!compiled) {
      const condPlan = state.condPlan;
      const denoiser = state.denoiser;
      const specs: T.InputSpec[] = [
        ...inputs.map((i) => ({ name: i.name, shape: i.shape, dtype: i.dtype ?? 'float32' })),
        ...condPlan.tensors.map((t, k) => ({ name: `cond${k}`, shape: [...t.shape], dtype: t.dtype })),
      ];
      const fn = (...syms: Tensor[]): Record<string, Tensor> => {
        const inp: Record<string, Tensor> = {};
        inputs.forEach((i, k) => (inp[i.name] = syms[k]!));
        const [c, u] = condPlan.rebuild(syms.slice(inputs.length));
        return body(inp, (x, s) => this.denoise(x, denoiser, s, c, u));
      };
      compiled = T.compile(fn, specs, { name: `${this.name}.${variant}` });
      byDenoiser.set(key, compiled);
      compiled.catch(() => byDenoiser!.delete(key));
    }
    const run = await compiled;
    return run(...inputs.map((i) => i.value), ...state.condPlan.tensors);
  }

  /** Number of compiled step graphs this sampler holds for `denoiser`. */
  compiledGraphCount(denoiser: DenoiserFn): number {
    return this.graphs.get(denoiser)?.size ?? 0;
  }

  /** Releases the compiled step graphs held for `denoiser` (they are rebuilt on the next use). */
  async releaseGraphs(denoiser: DenoiserFn): Promise<void> {
    const m = this.graphs.get(denoiser);
    if (!m) return;
    this.graphs.delete(denoiser);
    await Promise.all([...m.values()].map(async (p) => (await p.catch(() => null))?.release()));
  }
}

export interface LoopHooks {
  /** Throws if the signal was aborted before step i. */
  before(i: number): void;
  /** Progress reporting after step i. */
  after(i: number, x: Tensor): Promise<void>;
}

function checkSteps(name: string, n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name}: num_steps must be a positive integer, got ${n}`);
}

/** to_d(x, sigma, denoised) = (x - denoised) / append_dims(sigma, x.ndim). */
function toD(x: Tensor, sigma: Tensor, denoised: Tensor): Tensor {
  return T.div(T.sub(x, denoised), T.appendDims(sigma, x.ndim));
}

// ------------------------------------------------------------------ EDM samplers

export interface EDMSamplerOptions extends BaseDiffusionSamplerOptions {
  sChurn?: number;
  sTmin?: number;
  sTmax?: number;
  sNoise?: number;
}

/** EDMSampler: Euler steps with optional churn; HeunEDMSampler adds the correction. */
export class EDMSampler extends BaseDiffusionSampler {
  readonly sChurn: number;
  readonly sTmin: number;
  readonly sTmax: number;
  readonly sNoise: number;
  /** Heun's correction step. */
  protected readonly heun: boolean = false;

  constructor(opts: EDMSamplerOptions) {
    super(opts);
    this.sChurn = opts.sChurn ?? 0;
    this.sTmin = opts.sTmin ?? 0;
    this.sTmax = opts.sTmax ?? Infinity;
    this.sNoise = opts.sNoise ?? 1;
  }

  /** gamma of step i (Python floats; the sigma comparison is in float32, like the tensor's). */
  gamma(sigmas: Float32Array, i: number): number {
    const s = sigmas[i]!;
    const inRange = f(this.sTmin) <= s && s <= f(this.sTmax);
    return inRange ? Math.min(this.sChurn / (sigmas.length - 1), 2 ** 0.5 - 1) : 0;
  }

  /**
   * One graph for every step. Churn: the noise input is the draw and `churn` is
   * sqrt(sigma_hat^2 - sigma^2) on churned steps; on the others (no draw, as in the reference) the
   * noise is zeros and churn 0, so x + noise * s_noise * churn = x + 0 = x exactly, and sigma_hat =
   * sigma * (0 + 1) = sigma. Heun: the graph always evaluates the correction, and `heun` (a flag
   * input) selects between the corrected and the Euler result with `where`; on the step that is
   * Euler only in the reference (next sigma 0, the last step) `sigma_next` is fed as sigma_hat (a
   * valid sigma, so the unused evaluation stays finite) and its result is discarded. Cost: one
   * extra network evaluation per sample() call (Heun's last step), none for Euler.
   */
  protected override async steps(state: LoopState, loop: SamplingLoop, hooks: LoopHooks): Promise<Tensor> {
    let x = loop.x;
    const sigmas = loop.sigmas;
    const B = state.batch;
    const heun = this.heun;
    const sNoise = this.sNoise;
    for (let i = 0; i < loop.numSigmas - 1; i++) {
      hooks.before(i);
      const sigma = sigmas[i]!;
      const next = sigmas[i + 1]!;
      const gamma = this.gamma(sigmas, i);
      const sigmaHat = f(sigma * f(gamma + 1));
      const churn = gamma > 0;
      const correct = heun && !(sumF32(next, B) < 1e-14);
      const inputs: StepInput[] = [this.xInput(state, 'x', x)];
      if (churn) {
        inputs.push(this.noiseInput(state, 'noise', this.draw(state, i)));
        inputs.push(this.scalarInput(state, 'churn', f(Math.sqrt(f(f(sigmaHat * sigmaHat) - f(sigma * sigma))))));
      } else {
        inputs.push(this.zeroInput(state, 'noise'), this.scalarInput(state, 'churn', 0));
      }
      inputs.push(this.sigmaInput(state, 'sigma_hat', sigmaHat));
      inputs.push(this.scalarInput(state, 'dt', f(next - sigmaHat)));
      if (heun) {
        inputs.push(this.sigmaInput(state, 'sigma_next', correct ? next : sigmaHat), this.flagInput(state, 'heun', correct));
      }
      const out = await this.runStep(state, heun ? 'heun' : 'euler', inputs, (inp, denoise) => {
        const xs = T.add(inp['x']!, T.mul(T.mul(inp['noise']!, sNoise), inp['churn']!));
        const denoised = denoise(xs, inp['sigma_hat']!);
        const d = toD(xs, inp['sigma_hat']!, denoised);
        const dt = inp['dt']!;
        const euler = T.add(xs, T.mul(dt, d));
        if (!heun) return { x: euler };
        const next = inp['sigma_next']!;
        const denoised2 = denoise(euler, next);
        const dNew = toD(euler, next, denoised2);
        const dPrime = T.div(T.add(d, dNew), 2);
        return { x: T.where(T.gt(inp['heun']!, 0.5), T.add(xs, T.mul(dPrime, dt)), euler) };
      });
      x = out['x']!;
      await hooks.after(i, x);
    }
    return x;
  }
}

/** EulerEDMSampler: EDMSampler without correction. */
export class EulerEDMSampler extends EDMSampler {}

/** HeunEDMSampler: EDMSampler with Heun's second-order correction (skipped when next sigma is 0). */
export class HeunEDMSampler extends EDMSampler {
  protected override readonly heun: boolean = true;
}

// ------------------------------------------------------------------ ancestral samplers

export interface AncestralSamplerOptions extends BaseDiffusionSamplerOptions {
  eta?: number;
  sNoise?: number;
}

/**
 * Ancestral samplers draw randn_like(x) on every step, including the last one (to sigma 0) where
 * the reference's torch.where throws the draw away: it still consumes the generator.
 */
export class AncestralSampler extends BaseDiffusionSampler {
  readonly eta: number;
  readonly sNoise: number;

  constructor(opts: AncestralSamplerOptions) {
    super(opts);
    this.eta = opts.eta ?? 1;
    this.sNoise = opts.sNoise ?? 1;
  }

  /** [sigma_down, sigma_up] of a step, float32 like the reference's tensors. */
  ancestral(sigma: number, next: number): [number, number] {
    return ancestralStepF32(sigma, next, this.eta);
  }

  /** x + randn * s_noise * sigma_up, in the reference's operation order (graph part). */
  protected noiseStep(x: Tensor, inp: Record<string, Tensor>): Tensor {
    return T.add(x, T.mul(T.mul(inp['noise']!, this.sNoise), inp['sigma_up']!));
  }

  /**
   * The noise inputs of step i: drawn always; fed when next sigma > 0. On the last step (next sigma
   * 0, where the reference's torch.where keeps the noiseless x) zeros and sigma_up 0 are fed
   * instead, so the one graph's x + noise * s_noise * sigma_up is x + 0 = x exactly.
   */
  protected noiseInputs(state: LoopState, i: number, next: number, sigmaUp: number): StepInput[] {
    const data = this.draw(state, i);
    if (!(next > 0)) return [this.zeroInput(state, 'noise'), this.scalarInput(state, 'sigma_up', 0)];
    return [this.noiseInput(state, 'noise', data), this.scalarInput(state, 'sigma_up', sigmaUp)];
  }
}

export class EulerAncestralSampler extends AncestralSampler {
  protected override async steps(state: LoopState, loop: SamplingLoop, hooks: LoopHooks): Promise<Tensor> {
    let x = loop.x;
    const sigmas = loop.sigmas;
    for (let i = 0; i < loop.numSigmas - 1; i++) {
      hooks.before(i);
      const sigma = sigmas[i]!;
      const next = sigmas[i + 1]!;
      const [down, up] = this.ancestral(sigma, next);
      const inputs: StepInput[] = [
        this.xInput(state, 'x', x),
        this.sigmaInput(state, 'sigma', sigma),
        this.scalarInput(state, 'dt', f(down - sigma)),
        ...this.noiseInputs(state, i, next, up),
      ];
      // One graph for every step (the last one gets zero noise, see noiseInputs); no extra cost.
      const out = await this.runStep(state, 'step', inputs, (inp, denoise) => {
        const xs = inp['x']!;
        const denoised = denoise(xs, inp['sigma']!);
        const xe = T.add(xs, T.mul(inp['dt']!, toD(xs, inp['sigma']!, denoised)));
        return { x: this.noiseStep(xe, inp) };
      });
      x = out['x']!;
      await hooks.after(i, x);
    }
    return x;
  }
}

/**
 * One graph for every step: it always evaluates both the DPM++ 2S update (two network evaluations)
 * and the Euler update (which reuses the first evaluation), and `second` (a flag input) selects one
 * with `where`. On the Euler steps (sigma_down 0: the last step) the DPM++ inputs are fed as
 * mult1 = 1, mult2 = 0, sigma_s = sigma, mult3 = 1, mult4 = 0 (finite, result discarded); on the
 * DPM++ steps dt is 0 (result discarded). Cost: one extra network evaluation per sample() call
 * (the Euler fallback step).
 */
export class DPMPP2SAncestralSampler extends AncestralSampler {
  protected override async steps(state: LoopState, loop: SamplingLoop, hooks: LoopHooks): Promise<Tensor> {
    let x = loop.x;
    const sigmas = loop.sigmas;
    const B = state.batch;
    for (let i = 0; i < loop.numSigmas - 1; i++) {
      hooks.before(i);
      const sigma = sigmas[i]!;
      const next = sigmas[i + 1]!;
      const [down, up] = this.ancestral(sigma, next);
      const second = !(sumF32(down, B) < 1e-14);
      const inputs: StepInput[] = [this.xInput(state, 'x', x), this.sigmaInput(state, 'sigma', sigma)];
      if (second) {
        // get_variables / get_mult on float32 tensors.
        const t = negLog(sigma);
        const tNext = negLog(down);
        const h = f(tNext - t);
        const s = f(t + f(0.5 * h));
        const sigT = toSigma(t);
        inputs.push(
          this.scalarInput(state, 'mult1', f(toSigma(s) / sigT)),
          this.scalarInput(state, 'mult2', f(Math.expm1(f(-0.5 * h)))),
          this.scalarInput(state, 'mult3', f(toSigma(tNext) / sigT)),
          this.scalarInput(state, 'mult4', f(Math.expm1(f(-h)))),
          this.sigmaInput(state, 'sigma_s', toSigma(s)),
          this.scalarInput(state, 'dt', 0),
        );
      } else {
        inputs.push(
          this.scalarInput(state, 'mult1', 1),
          this.scalarInput(state, 'mult2', 0),
          this.scalarInput(state, 'mult3', 1),
          this.scalarInput(state, 'mult4', 0),
          this.sigmaInput(state, 'sigma_s', sigma),
          this.scalarInput(state, 'dt', f(down - sigma)),
        );
      }
      inputs.push(this.flagInput(state, 'second', second));
      inputs.push(...this.noiseInputs(state, i, next, up));
      const out = await this.runStep(state, 'step', inputs, (inp, denoise) => {
        const xs = inp['x']!;
        const denoised = denoise(xs, inp['sigma']!);
        const x2 = T.sub(T.mul(inp['mult1']!, xs), T.mul(inp['mult2']!, denoised));
        const denoised2 = denoise(x2, inp['sigma_s']!);
        const xDpm = T.sub(T.mul(inp['mult3']!, xs), T.mul(inp['mult4']!, denoised2));
        const xEuler = T.add(xs, T.mul(inp['dt']!, toD(xs, inp['sigma']!, denoised)));
        const xn = T.where(T.gt(inp['second']!, 0.5), xDpm, xEuler);
        return { x: this.noiseStep(xn, inp) };
      });
      x = out['x']!;
      await hooks.after(i, x);
    }
    return x;
  }
}

// ------------------------------------------------------------------ DPM++ 2M

export class DPMPP2MSampler extends BaseDiffusionSampler {
  /**
   * The step multipliers (get_variables + get_mult) on the host, float32. On the last step
   * -log(0) = inf gives mult1 = 0, mult2 = expm1(-inf) = -1 (and r = 0, 1/(2r) = inf), as in the
   * reference; nothing throws.
   */
  multipliers(sigma: number, next: number, previous: number | null): { mult1: number; mult2: number; mult3?: number; mult4?: number } {
    const t = negLog(sigma);
    const tNext = negLog(next);
    const h = f(tNext - t);
    const mult1 = f(toSigma(tNext) / toSigma(t));
    const mult2 = f(Math.expm1(f(-h)));
    if (previous === null) return { mult1, mult2 };
    const hLast = f(t - negLog(previous));
    const r = f(hLast / h);
    const mult4 = f(1 / f(2 * r));
    const mult3 = f(1 + mult4);
    return { mult1, mult2, mult3, mult4 };
  }

  protected override async steps(state: LoopState, loop: SamplingLoop, hooks: LoopHooks): Promise<Tensor> {
    let x = loop.x;
    let oldDenoised: Tensor | null = null;
    const sigmas = loop.sigmas;
    const B = state.batch;
    for (let i = 0; i < loop.numSigmas - 1; i++) {
      hooks.before(i);
      const sigma = sigmas[i]!;
      const next = sigmas[i + 1]!;
      const m = this.multipliers(sigma, next, i === 0 ? null : sigmas[i - 1]!);
      const advanced = oldDenoised !== null && !(sumF32(next, B) < 1e-14);
      const inputs: StepInput[] = [
        this.xInput(state, 'x', x),
        this.sigmaInput(state, 'sigma', sigma),
        this.scalarInput(state, 'mult1', m.mult1),
        this.scalarInput(state, 'mult2', m.mult2),
      ];
      // One graph for every step: the standard steps (the first and the last) are the advanced
      // formula with mult3 = 1, mult4 = 0 and a zero old_denoised, which gives exactly the standard
      // result in float32 (1 * d = d, 0 * 0 = 0, d - 0 = d). No extra cost.
      if (advanced) {
        inputs.push(
          this.xInput(state, 'old_denoised', oldDenoised!),
          this.scalarInput(state, 'mult3', m.mult3!),
          this.scalarInput(state, 'mult4', m.mult4!),
        );
      } else {
        inputs.push(this.zeroInput(state, 'old_denoised'), this.scalarInput(state, 'mult3', 1), this.scalarInput(state, 'mult4', 0));
      }
      const out = await this.runStep(state, 'step', inputs, (inp, denoise) => {
        const xs = inp['x']!;
        const denoised = denoise(xs, inp['sigma']!);
        const d = T.sub(T.mul(inp['mult3']!, denoised), T.mul(inp['mult4']!, inp['old_denoised']!));
        const xn = T.sub(T.mul(inp['mult1']!, xs), T.mul(inp['mult2']!, d));
        return { x: xn, denoised };
      });
      x = out['x']!;
      oldDenoised = out['denoised']!;
      await hooks.after(i, x);
    }
    return x;
  }
}

// ------------------------------------------------------------------ linear multistep

export interface LinearMultistepSamplerOptions extends BaseDiffusionSamplerOptions {
  order?: number;
}

export class LinearMultistepSampler extends BaseDiffusionSampler {
  readonly order: number;

  constructor(opts: LinearMultistepSamplerOptions) {
    super(opts);
    this.order = opts.order ?? 4;
    if (!Number.isInteger(this.order) || this.order < 1) throw new RangeError(`LinearMultistepSampler: order must be a positive integer, got ${this.order}`);
  }

  /** The float64 coefficients of step i (newest d first), from the float32 sigmas as in the reference. */
  coefficients(sigmas: Float32Array, i: number): number[] {
    const curOrder = Math.min(i + 1, this.order);
    return Array.from({ length: curOrder }, (_, j) => linear_multistep_coeff(curOrder, sigmas, i, j));
  }

  protected override async steps(state: LoopState, loop: SamplingLoop, hooks: LoopHooks): Promise<Tensor> {
    let x = loop.x;
    const sigmas = loop.sigmas;
    const ds: Tensor[] = [];
    const order = this.order;
    for (let i = 0; i < loop.numSigmas - 1; i++) {
      hooks.before(i);
      const coeffs = this.coefficients(sigmas, i);
      const n = coeffs.length;
      const inputs: StepInput[] = [this.xInput(state, 'x', x), this.sigmaInput(state, 'sigma', sigmas[i]!)];
      // One graph for every step, of the full order: the missing history of the first steps is
      // zeros with coefficient 0, and acc + 0 * 0 = acc exactly. No extra cost.
      // Each float64 coefficient is rounded to float32 where it multiplies the float32 d.
      for (let j = 0; j < order; j++) inputs.push({ name: `c${j}`, shape: [1], value: new Float32Array([j < n ? f(coeffs[j]!) : 0]) });
      // History, newest first (reversed(ds) without the d of this step).
      for (let j = 1; j < order; j++) inputs.push(j < n ? this.xInput(state, `d${j}`, ds[ds.length - j]!) : this.zeroInput(state, `d${j}`));
      const out = await this.runStep(state, 'step', inputs, (inp, denoise) => {
        const xs = inp['x']!;
        const denoised = denoise(xs, inp['sigma']!);
        const d = toD(xs, inp['sigma']!, denoised);
        // sum(coeff * d for ...) starts from 0: ((c0*d0 + c1*d1) + c2*d2) + ...
        let acc = T.mul(inp['c0']!, d);
        for (let j = 1; j < order; j++) acc = T.add(acc, T.mul(inp[`c${j}`]!, inp[`d${j}`]!));
        return { x: T.add(xs, acc), d };
      });
      x = out['x']!;
      ds.push(out['d']!);
      if (ds.length > this.order) ds.shift();
      await hooks.after(i, x);
    }
    return x;
  }
}
