// The training loop of a DiffusionEngine (the reference's DiffusionEngine.training_step under
// PyTorch Lightning): one compiled graph per batch shape computes the loss AND the gradients of
// every trainable parameter (forward + backward through the engine's autodiff); the optimizer,
// the learning-rate schedule and the EMA run on the host.
//
// Random numbers follow the reference's order within a step: the first stage's Gaussian sample
// (encode_first_stage), the conditioner's ucg dropout masks (torch.bernoulli per embedder), the
// sigma sampler's draw, the noise (and offset noise). They are drawn on the host from one
// torch-compatible generator and enter the graph as inputs, so a step is a pure function of its
// inputs and a resumed run repeats an uninterrupted one exactly.
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/index.js';
import type { Parameter } from '../nn/module.js';
import type { DiffusionEngine } from '../models/diffusion.js';
import { torchBernoulli, type AbstractEmbModel, type UcgDrawSource } from '../modules/encoders/modules.js';
import type { Optimizer, LambdaLR } from './optim.js';

/** A collated batch: typed arrays with shapes (the data layer's output). */
export interface HostBatch {
  [key: string]: { data: Float32Array | BigInt64Array | Int32Array; shape: number[] } | unknown;
}

export interface TrainerOptions {
  /** Source of every random draw of a step (default: a generator seeded with 0). */
  generator?: T.Generator;
  /** Gradient accumulation (Lightning's accumulate_grad_batches): the optimizer steps every k batches. */
  accumulateGradBatches?: number;
  /** Learning-rate schedule stepped after every optimizer step (LambdaLR). */
  scheduler?: LambdaLR | null;
}

export interface StepResult {
  /** The batch's mean loss. */
  loss: number;
  /** Whether the optimizer stepped after this batch (every accumulateGradBatches batches). */
  optimizerStepped: boolean;
  /** Optimizer steps so far (Lightning's global_step). */
  globalStep: number;
  /** The learning rate of the first parameter group. */
  lr: number;
}

function isHostTensor(v: unknown): v is { data: Float32Array | BigInt64Array | Int32Array; shape: number[] } {
  return typeof v === 'object' && v !== null && 'data' in v && 'shape' in v && ArrayBuffer.isView((v as { data: unknown }).data);
}

function dtypeOf(a: Float32Array | BigInt64Array | Int32Array): T.DType {
  return a instanceof Float32Array ? 'float32' : a instanceof BigInt64Array ? 'int64' : 'int32';
}

type StepFn = T.CompiledFunction<Tensor[]>;

/** A compiled step graph with one batch's inputs (image, batch tensors, masks, draws). */
export interface PreparedStep {
  run: StepFn;
  inputs: T.TypedArray[];
}

/** The parameters DiffusionEngine.configure_optimizers hands the optimizer, in its order. */
export function trainableParameters(engine: DiffusionEngine): Parameter[] {
  const params = [...engine.model.parameters()];
  for (const e of engine.conditioner.embedders.items) if (e.is_trainable) params.push(...e.parameters());
  return params.filter((p) => p.requiresGrad !== false);
}

export class DiffusionTrainer {
  readonly params: Parameter[];
  readonly generator: T.Generator;
  readonly accumulateGradBatches: number;
  scheduler: LambdaLR | null;
  /** Optimizer steps done (Lightning's global_step). */
  globalStep = 0;
  /** Batches seen since the last optimizer step. */
  private pending = 0;
  private accum: Float32Array[] | null = null;
  private readonly graphs = new Map<string, Promise<StepFn>>();

  constructor(
    readonly engine: DiffusionEngine,
    readonly optimizer: Optimizer,
    opts: TrainerOptions = {},
  ) {
    if (!engine.loss_fn) throw new Error('DiffusionTrainer: the engine has no loss_fn_config, so it cannot be trained');
    this.params = trainableParameters(engine);
    this.generator = opts.generator ?? new T.Generator().manualSeed(0);
    this.accumulateGradBatches = opts.accumulateGradBatches ?? 1;
    if (!Number.isInteger(this.accumulateGradBatches) || this.accumulateGradBatches < 1) throw new RangeError(`accumulate_grad_batches must be a positive integer, got ${this.accumulateGradBatches}`);
    this.scheduler = opts.scheduler ?? null;
    const optParams = new Set(optimizer.params());
    const missing = this.params.filter((p) => !optParams.has(p));
    if (missing.length) throw new Error(`DiffusionTrainer: ${missing.length} trainable parameter(s) are not in the optimizer`);
    for (const e of engine.conditioner.embedders.items) {
      if (e.legacy_ucg_val !== null && e.ucg_rate > 0) throw new Error(`DiffusionTrainer: legacy_ucg_value dropout (embedder ${e.constructor.name}, key ${e.input_key}) is not supported in compiled training steps; use ucg_rate without legacy_ucg_value`);
    }
  }

  /** Embedders whose output is dropped at random (ucg_rate > 0), in conditioner order. */
  private ucgEmbedders(): AbstractEmbModel[] {
    return this.engine.conditioner.embedders.items.filter((e) => e.ucg_rate > 0 && e.legacy_ucg_val === null);
  }

  /** The batch's tensor entries the conditioner reads (plus the image key), in a fixed order. */
  private batchKeys(batch: HostBatch): string[] {
    const keys = new Set<string>();
    for (const e of this.engine.conditioner.embedders.items) {
      for (const k of e.input_key !== null ? [e.input_key] : e.input_keys ?? []) {
        if (!(k in batch)) throw new Error(`training batch has no '${k}' (needed by ${e.constructor.name}); it has ${Object.keys(batch).join(', ')}`);
        if (!isHostTensor(batch[k])) throw new Error(`training batch entry '${k}' must be a tensor (text conditioning is not supported by the compiled training step yet)`);
        keys.add(k);
      }
    }
    for (const k of this.engine.loss_fn!.batch2model_keys) if (k in batch) keys.add(k);
    keys.delete(this.engine.input_key);
    return [...keys].sort();
  }

  /** Builds (once per shape) the graph (x, batch tensors, ucg masks, rand, noise) -> [loss, grads...]. */
  private graph(x: { shape: number[] }, batch: HostBatch, keys: string[], randDtype: T.DType): Promise<StepFn> {
    const ucg = this.ucgEmbedders();
    const B = x.shape[0]!;
    const specs: T.InputSpec[] = [
      { name: 'x', shape: x.shape, dtype: 'float32' },
      ...keys.map((k) => {
        const v = batch[k] as { data: Float32Array | BigInt64Array | Int32Array; shape: number[] };
        return { name: `batch_${k}`, shape: v.shape, dtype: dtypeOf(v.data) };
      }),
      ...ucg.map((_, i) => ({ name: `ucg_mask_${i}`, shape: [B], dtype: 'float32' as const })),
      { name: 'rand', shape: [B], dtype: randDtype },
      { name: 'noise', shape: x.shape, dtype: 'float32' },
    ];
    const key = JSON.stringify(specs);
    let g = this.graphs.get(key);
    if (!g) {
      const engine = this.engine;
      const params = this.params;
      const fn = (...inp: Tensor[]): Tensor[] => {
        const [xs, ...rest] = inp;
        const tb: Record<string, unknown> = {};
        keys.forEach((k, i) => (tb[k] = rest[i]));
        const masks = rest.slice(keys.length, keys.length + ucg.length);
        const [rand, noise] = rest.slice(keys.length + ucg.length);
        // The conditioner takes its dropout masks from the graph inputs, in embedder order.
        const saved = engine.conditioner.draws;
        let m = 0;
        engine.conditioner.draws = { bernoulli: () => masks[m++]! };
        try {
          const [loss] = engine.forward(xs!, tb, { draws: { rand: rand!, noise: noise! } });
          const grads = T.gradients(loss, params);
          return [loss, ...grads];
        } finally {
          engine.conditioner.draws = saved;
        }
      };
      g = T.compile(fn, specs, { variables: 'inputs', name: 'training_step' });
      this.graphs.set(key, g);
      g.catch(() => this.graphs.delete(key));
    }
    return g;
  }

  /**
   * One training batch: draws, the compiled forward + backward, gradient accumulation, and (every
   * accumulateGradBatches batches) the optimizer and scheduler steps; the EMA is updated after
   * every batch, as the reference's on_train_batch_end does.
   */
  /**
   * Runs a prepared step graph with the parameters' CURRENT values: the batch mean loss and the
   * gradient of every trainable parameter (in `params` order). Also used to check the gradients
   * against finite differences.
   */
  async lossAndGrads(prepared: PreparedStep): Promise<{ loss: number; grads: Float32Array[] }> {
    const outs = await prepared.run(...prepared.inputs);
    const loss = ((await outs[0]!.data()) as Float32Array)[0]!;
    const grads = await Promise.all(outs.slice(1).map(async (t) => (await t.data()) as Float32Array));
    return { loss, grads };
  }

  /** The last step's graph and inputs (for tests). */
  lastPrepared: PreparedStep | null = null;

  async step(batch: HostBatch): Promise<StepResult> {
    const engine = this.engine;
    const img = batch[engine.input_key];
    if (!isHostTensor(img) || !(img.data instanceof Float32Array)) throw new Error(`training batch['${engine.input_key}'] (the engine's input_key) must be a float32 image tensor`);
    engine.train();
    // encode_first_stage (frozen; its Gaussian sample is the step's first draw).
    const x = await engine.encodeFirstStageEval(T.constant(img.data, img.shape, 'float32'), { generator: this.generator });
    const xData = (await x.data()) as Float32Array;
    const keys = this.batchKeys(batch);
    const B = x.shape[0]!;
    // Host draws in the reference's order: ucg masks, sigmas, noise (offset noise: unsupported here).
    const masks = this.ucgEmbedders().map((e) => torchBernoulli(this.generator, 1 - e.ucg_rate, B));
    const loss_fn = engine.loss_fn!;
    if (loss_fn.offset_noise_level > 0) throw new Error('DiffusionTrainer: offset_noise_level > 0 is not supported yet');
    const rand = loss_fn.sigma_sampler.draw(B, this.generator);
    const noise = this.generator.randnData(x.shape, 'float32');
    const g = await this.graph({ shape: [...x.shape] }, batch, keys, rand instanceof BigInt64Array ? 'int64' : 'float32');
    const prepared: PreparedStep = { run: g, inputs: [xData, ...keys.map((k) => (batch[k] as { data: T.TypedArray }).data), ...masks, rand, noise] };
    this.lastPrepared = prepared;
    const { loss, grads } = await this.lossAndGrads(prepared);
    // Lightning scales the loss (hence the gradients) by 1/k and sums them over the k batches.
    const k = this.accumulateGradBatches;
    if (k === 1) this.accum = grads;
    else {
      const inv = Math.fround(1 / k);
      if (!this.accum) this.accum = grads.map((gr) => gr.map((v) => Math.fround(v * inv)));
      else this.accum.forEach((a, i) => grads[i]!.forEach((v, j) => (a[j] = Math.fround(a[j]! + Math.fround(v * inv)))));
    }
    this.pending++;
    let stepped = false;
    if (this.pending >= k) {
      this.optimizer.step(this.accum!);
      this.accum = null;
      this.pending = 0;
      this.globalStep++;
      engine.global_step = this.globalStep;
      this.scheduler?.step();
      stepped = true;
    }
    if (engine.use_ema && engine.model_ema) engine.model_ema.update(engine.model);
    return { loss, optimizerStepped: stepped, globalStep: this.globalStep, lr: this.optimizer.paramGroups[0]!.lr as number };
  }

  /** The host-side state a resumed run needs besides the weights (optimizer, schedule, counters, RNG). */
  state(): TrainerState {
    const { tensors, meta } = this.optimizer.toTensors();
    return {
      optimizer: { tensors, meta },
      scheduler: this.scheduler ? this.scheduler.stateDict() : null,
      globalStep: this.globalStep,
      pending: this.pending,
      accum: this.accum,
      generator: Buffer.from(this.generator.getState()).toString("base64"),
    };
  }

  loadState(s: TrainerState): void {
    this.optimizer.loadTensors(s.optimizer.tensors, s.optimizer.meta);
    if (this.scheduler && s.scheduler) this.scheduler.loadStateDict(s.scheduler);
    this.globalStep = s.globalStep;
    this.engine.global_step = s.globalStep;
    this.pending = s.pending;
    this.accum = s.accum;
    this.generator.setState(new Uint8Array(Buffer.from(s.generator, 'base64')));
  }
}

export interface TrainerState {
  optimizer: { tensors: ReadonlyMap<string, { dtype: string; data: unknown }>; meta: string };
  scheduler: ReturnType<LambdaLR['stateDict']> | null;
  globalStep: number;
  pending: number;
  accum: Float32Array[] | null;
  /** The draw generator's state (torch get_state layout), base64. */
  generator: string;
}

export type { UcgDrawSource };
