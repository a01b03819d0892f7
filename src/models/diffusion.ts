// sgm/models/diffusion.py: DiffusionEngine, the config-driven diffusion model. It owns the network
// (wrapped as the reference wraps it, so checkpoint keys read `model.diffusion_model.*`), the
// denoiser, the conditioner, the first stage (autoencoder), the sampler and the training loss.
//
// Everything here BUILDS graphs (lazy tensors); sampling and the chunked first-stage calls are
// async because they evaluate (one compiled graph per sampler step variant, one per decode chunk).
import * as T from '../tensor/index.js';
import type { Generator, Tensor } from '../tensor/index.js';
import * as nn from '../nn/index.js';
import type { Cond, DenoiserLike } from '../modules/diffusionmodules/denoiser.js';
import type { BaseDiffusionSampler, DenoiserFn, SampleOptions } from '../modules/diffusionmodules/sampling.js';
import type { GeneralConditioner, Batch } from '../modules/encoders/modules.js';
import type { StandardDiffusionLoss } from '../modules/diffusionmodules/loss.js';
import { VideoDecoder } from '../modules/autoencoding/temporal_ae.js';
import type { RegularizerOptions } from '../modules/autoencoding/regularizers/index.js';

/** The first stage as the engine uses it (AutoencodingEngine, AutoencoderKL, IdentityFirstStage, ...). */
export interface FirstStage extends nn.Module {
  encode(x: Tensor, ...args: any[]): Tensor | [Tensor, unknown];
  decode(z: Tensor, ...args: any[]): Tensor;
  decoder?: nn.Module;
}

/** The network as wrapped (OpenAIWrapper): forward(x, t, c, extra). */
export type WrappedNetwork = nn.Module & { forward(x: Tensor, t: Tensor, c: Cond, extra?: Record<string, unknown>): Tensor };

/** An EMA of the network's weights (modules/ema.ts LitEma) as the engine uses it. */
export interface EmaLike extends nn.Module {
  store(params: nn.Parameter[]): void;
  copyTo(model: nn.Module): void;
  restore(params: nn.Parameter[]): void;
  update(model: nn.Module): void;
}

export interface DiffusionEngineParts {
  model: WrappedNetwork;
  denoiser: nn.Module & DenoiserLike;
  first_stage_model: FirstStage;
  conditioner: GeneralConditioner;
  sampler?: BaseDiffusionSampler | null;
  loss_fn?: StandardDiffusionLoss | null;
  model_ema?: EmaLike | null;
}

export interface DiffusionEngineSettings {
  optimizer_config?: Record<string, unknown> | null;
  scheduler_config?: Record<string, unknown> | null;
  use_ema?: boolean;
  ema_decay_rate?: number;
  scale_factor?: number;
  disable_first_stage_autocast?: boolean;
  input_key?: string;
  log_keys?: string[] | null;
  no_cond_log?: boolean;
  compile_model?: boolean;
  en_and_decode_n_samples_a_time?: number | null;
}

export interface EngineSampleOptions extends SampleOptions {
  /** Extra keyword arguments for the network (the reference's **kwargs of sample). */
  extra?: Record<string, unknown>;
  /** The initial noise (numel = batch * prod(shape)); default generator.randnData (torch.randn). */
  randn?: Float32Array;
}

export interface LogImagesOptions {
  N?: number;
  sample?: boolean;
  ucg_keys?: string[] | null;
  generator?: Generator;
  onProgress?: SampleOptions['onProgress'];
  signal?: AbortSignal;
}

/** What log_images returns: tensors (evaluated) and, for conditionings, their text. */
export interface ImageLog {
  inputs?: Tensor;
  reconstructions?: Tensor;
  samples?: Tensor;
  /** The conditionings as text lines per sample (the reference renders them into images). */
  conditionings: Record<string, string[]>;
}

/** Slices dim 0 of a tensor or a list to [start, end). */
function sliceBatch(x: Tensor, start: number, end: number): Tensor {
  return T.slice(x, 0, start, end);
}

export class DiffusionEngine extends nn.Module {
  // Property order = registration order = the reference's state-dict order.
  model: WrappedNetwork;
  denoiser: nn.Module & DenoiserLike;
  conditioner: GeneralConditioner;
  first_stage_model: FirstStage;
  loss_fn: StandardDiffusionLoss | null;
  model_ema: EmaLike | null;
  /** Not a module (no state), like the reference's sampler. */
  sampler: BaseDiffusionSampler | null;

  readonly optimizer_config: Record<string, unknown>;
  readonly scheduler_config: Record<string, unknown> | null;
  readonly use_ema: boolean;
  readonly ema_decay_rate: number;
  scale_factor: number;
  readonly disable_first_stage_autocast: boolean;
  readonly input_key: string;
  readonly log_keys: string[] | null;
  no_cond_log: boolean;
  en_and_decode_n_samples_a_time: number | null;
  /** Set by the trainer (the reference's LightningModule attributes). */
  learning_rate = 0;
  global_step = 0;

  constructor(parts: DiffusionEngineParts, settings: DiffusionEngineSettings = {}) {
    super();
    this.model = parts.model;
    this.denoiser = parts.denoiser;
    this.conditioner = parts.conditioner;
    // The first stage is frozen and always in eval mode (the reference's disabled_train).
    this.first_stage_model = parts.first_stage_model;
    this.first_stage_model.eval();
    for (const p of this.first_stage_model.parameters()) p.requiresGrad = false;
    this.loss_fn = parts.loss_fn ?? null;
    this.use_ema = settings.use_ema ?? false;
    this.ema_decay_rate = settings.ema_decay_rate ?? 0.9999;
    this.model_ema = parts.model_ema ?? null;
    if (this.use_ema && !this.model_ema) throw new Error('DiffusionEngine: use_ema is set but no EMA module was given');
    this.sampler = parts.sampler ?? null;
    this.optimizer_config = settings.optimizer_config ?? { target: 'torch.optim.AdamW' };
    this.scheduler_config = settings.scheduler_config ?? null;
    this.scale_factor = settings.scale_factor ?? 1.0;
    this.disable_first_stage_autocast = settings.disable_first_stage_autocast ?? false;
    this.input_key = settings.input_key ?? 'jpg';
    this.log_keys = settings.log_keys ?? null;
    this.no_cond_log = settings.no_cond_log ?? false;
    this.en_and_decode_n_samples_a_time = settings.en_and_decode_n_samples_a_time ?? null;
  }

  override train(mode = true): this {
    super.train(mode);
    this.first_stage_model.eval();
    return this;
  }

  get_input(batch: Batch): Tensor {
    const x = batch[this.input_key];
    if (!(x instanceof T.Tensor)) throw new Error(`DiffusionEngine: batch['${this.input_key}'] (input_key) must be an image tensor; batch keys: ${Object.keys(batch).join(', ')}`);
    return x;
  }

  /** The chunk size of encode/decode (en_and_decode_n_samples_a_time, default the whole batch). */
  private chunk(n: number): number {
    const c = this.en_and_decode_n_samples_a_time ?? n;
    if (!Number.isInteger(c) || c < 1) throw new RangeError(`DiffusionEngine: en_and_decode_n_samples_a_time must be a positive integer, got ${c}`);
    return c;
  }

  private isVideoDecoder(): boolean {
    return this.first_stage_model.decoder instanceof VideoDecoder;
  }

  /** decode_first_stage as one graph: decode(z / scale_factor), chunk by chunk, concatenated. */
  decode_first_stage(z: Tensor): Tensor {
    const zs = T.mul(z, 1.0 / this.scale_factor);
    const n = z.shape[0]!;
    const c = this.chunk(n);
    const outs: Tensor[] = [];
    for (let s = 0; s < n; s += c) {
      const part = c >= n ? zs : sliceBatch(zs, s, Math.min(n, s + c));
      const kwargs = this.isVideoDecoder() ? { timesteps: part.shape[0]! } : {};
      outs.push(this.first_stage_model.decode(part, kwargs));
    }
    return outs.length === 1 ? outs[0]! : T.concat(outs, 0);
  }

  /**
   * encode_first_stage as one graph: scale_factor * encode(x), chunk by chunk. A sampling
   * regularizer (DiagonalGaussian) draws its noise per chunk in order, as the reference does.
   */
  encode_first_stage(x: Tensor, opts: RegularizerOptions = {}): Tensor {
    const n = x.shape[0]!;
    const c = this.chunk(n);
    const outs: Tensor[] = [];
    for (let s = 0; s < n; s += c) {
      const part = c >= n ? x : sliceBatch(x, s, Math.min(n, s + c));
      const r = this.first_stage_model.encode(part, false, false, opts);
      outs.push(Array.isArray(r) ? r[0] : r);
    }
    const z = outs.length === 1 ? outs[0]! : T.concat(outs, 0);
    return T.mul(z, this.scale_factor);
  }

  /**
   * decode_first_stage evaluated chunk by chunk (each chunk one session run; equal chunks share
   * the session), so a large batch never holds every chunk's activations at once.
   */
  async decodeFirstStageEval(z: Tensor): Promise<Tensor> {
    return this.evalInChunks(z, (part) => this.decode_first_stage(part));
  }

  /** encode_first_stage evaluated chunk by chunk (see decodeFirstStageEval). */
  async encodeFirstStageEval(x: Tensor, opts: RegularizerOptions = {}): Promise<Tensor> {
    return this.evalInChunks(x, (part) => this.encode_first_stage(part, opts));
  }

  private async evalInChunks(x: Tensor, fn: (part: Tensor) => Tensor): Promise<Tensor> {
    const n = x.shape[0]!;
    const c = this.chunk(n);
    const saved = this.en_and_decode_n_samples_a_time;
    this.en_and_decode_n_samples_a_time = null;
    try {
      const outs: Tensor[] = [];
      for (let s = 0; s < n; s += c) {
        const part = c >= n ? x : sliceBatch(x, s, Math.min(n, s + c));
        const y = fn(part);
        // The first stage's weights stay in the cached session: decoding again reads no weights.
        const [v] = await T.evaluate([y], { variables: 'initializers' });
        outs.push(T.constant(v!, y.shape, y.dtype));
      }
      if (outs.length === 1) return outs[0]!;
      return T.constant(await T.concat(outs, 0).data(), [n, ...outs[0]!.shape.slice(1)], outs[0]!.dtype);
    } finally {
      this.en_and_decode_n_samples_a_time = saved;
    }
  }

  /** The per-sample training loss graph (forward(x, batch) of the reference returns its mean). */
  forward(x: Tensor, batch: Batch, opts: Parameters<StandardDiffusionLoss['forward']>[5] = {}): [Tensor, Record<string, Tensor>] {
    if (!this.loss_fn) throw new Error('DiffusionEngine: no loss_fn_config, so the engine cannot compute a training loss');
    const loss = this.loss_fn.forward(this.model, this.denoiser, this.conditioner, x, batch, opts);
    const loss_mean = T.mean(loss);
    return [loss_mean, { loss: loss_mean }];
  }

  /**
   * Evaluates conditionings (c and uc together: the text encoders run once, in one session that
   * keeps their weights), so the sampler's step graphs receive them as plain values.
   */
  async evaluateConditionings(...conds: Array<Record<string, Tensor>>): Promise<void> {
    const ts = conds.flatMap((c) => Object.values(c));
    await T.evaluate(ts, { variables: 'initializers' });
  }

  /** The denoiser closure the samplers call: denoiser(model, x, sigma, c, **extra). */
  denoiserFn(extra: Record<string, unknown> = {}): DenoiserFn {
    return (x, sigma, c) => this.denoiser.forward(this.model, x, sigma, c, extra);
  }

  /**
   * Runs `fn` with the EMA weights in place of the training weights (ema_scope), restoring them
   * afterwards even when `fn` throws. Without EMA it just runs `fn`.
   */
  async ema_scope<R>(fn: () => Promise<R> | R, context: string | null = null): Promise<R> {
    if (!this.use_ema || !this.model_ema) return fn();
    const params = this.model.parameters();
    this.model_ema.store(params);
    this.model_ema.copyTo(this.model);
    if (context) process.stderr.write(`${context}: Switched to EMA weights\n`);
    try {
      return await fn();
    } finally {
      this.model_ema.restore(params);
      if (context) process.stderr.write(`${context}: Restored training weights\n`);
    }
  }

  /**
   * sample(cond, uc, batch_size, shape): randn(batch_size, *shape) from the generator (torch.randn
   * on the default generator by default), then the engine's sampler.
   */
  async sample(cond: Cond, uc: Cond | null, batch_size: number, shape: readonly number[], opts: EngineSampleOptions = {}): Promise<Tensor> {
    if (!this.sampler) throw new Error('DiffusionEngine: no sampler_config, so the engine cannot sample (give the sampler to the pipeline instead)');
    const full = [batch_size, ...shape];
    const gen = opts.generator ?? T.defaultGenerator;
    const randn = opts.randn ?? gen.randnData(full, 'float32');
    const x = T.constant(randn, full, 'float32');
    const { extra, randn: _r, ...rest } = opts;
    return this.sampler.sample(this.denoiserFn(extra ?? {}), x, cond, uc, { generator: gen, ...rest });
  }

  /** The conditionings of a batch as text (log_conditionings; the reference renders the text into images). */
  log_conditionings(batch: Batch, n: number): Record<string, string[]> {
    const log: Record<string, string[]> = {};
    if (this.no_cond_log) return log;
    for (const e of this.conditioner.embedders.items) {
      const key = e.input_key;
      if (key === null || (this.log_keys !== null && !this.log_keys.includes(key))) continue;
      const x = batch[key];
      if (Array.isArray(x)) log[key] = x.slice(0, n).map(String);
      else if (x instanceof T.Tensor && x.value) {
        const v = x.value as ArrayLike<number | bigint>;
        const per = x.shape.slice(1).reduce((a, b) => a * b, 1);
        log[key] = Array.from({ length: Math.min(n, x.shape[0]!) }, (_, i) => Array.from({ length: per }, (_, j) => String(v[i * per + j])).join('x'));
      }
    }
    return log;
  }

  /**
   * log_images(batch, N): inputs, reconstructions and (sample=true) samples of the engine's own
   * sampler with uc = the conditioning with every `ucg_keys` embedder zeroed (default: all).
   */
  async log_images(batch: Batch, opts: LogImagesOptions = {}): Promise<ImageLog> {
    const inputKeys = this.conditioner.embedders.items.map((e) => e.input_key);
    let ucgKeys = opts.ucg_keys ?? null;
    if (ucgKeys && ucgKeys.length > 0) {
      const bad = ucgKeys.filter((k) => !inputKeys.includes(k));
      if (bad.length) throw new Error(`log_images: every ucg key must be a conditioner input key, but got ${ucgKeys.join(', ')} vs. ${inputKeys.join(', ')}`);
    } else {
      ucgKeys = inputKeys.filter((k): k is string => k !== null);
    }
    let x = this.get_input(batch);
    const [c, uc] = this.conditioner.get_unconditional_conditioning(batch, null, this.conditioner.embedders.items.length > 0 ? ucgKeys : []);
    const N = Math.min(x.shape[0]!, opts.N ?? 8);
    x = sliceBatch(x, 0, N);
    const z = await this.encodeFirstStageEval(x, { generator: opts.generator });
    const log: ImageLog = { inputs: x, reconstructions: await this.decodeFirstStageEval(z), conditionings: this.log_conditionings(batch, N) };
    for (const k of Object.keys(c)) {
      c[k] = sliceBatch(c[k]!, 0, N);
      uc[k] = sliceBatch(uc[k]!, 0, N);
    }
    if (opts.sample ?? true) {
      const samples = await this.ema_scope(
        () => this.sample(c, uc, N, z.shape.slice(1), { generator: opts.generator, onProgress: opts.onProgress, signal: opts.signal }),
        null,
      );
      log.samples = await this.decodeFirstStageEval(samples);
    }
    return log;
  }
}
