// Batching: an async DataLoader over a map-style dataset (torch.utils.data.DataLoader with
// num_workers=0 semantics), torch's default_collate for dict samples, and a resumable state.
//
// Shuffling reproduces torch's order for `DataLoader(ds, batch_size, shuffle=True, generator=g)`:
// each epoch's iterator first draws the workers' base seed (`torch.empty((), dtype=torch.int64)
// .random_(generator=g)`: one random64()), then RandomSampler takes `torch.randperm(n,
// generator=g)`. Both follow torch's CPU kernels (randperm: for n < 2^32 / 20, start from 0..n-1
// and swap i with i + random() % (n - i)); this is derived from torch's source, not checked
// against a torch run here.
//
// Prefetching: up to `prefetch` batches are prepared ahead while the consumer works on the
// current one (in Node this overlaps with the consumer's awaits, e.g. an ONNX Runtime run;
// datasets whose get() is asynchronous, such as image decoding, load concurrently).
import { Generator } from '../tensor/random.js';
import { constant, type Tensor } from '../tensor/tensor.js';
import { dtypeOfArray } from '../tensor/dtype.js';
import { isArrayData, type ArrayData, type ArrayStorage, type Batch, type MapDataset, type Sample } from './types.js';

const RANDPERM_SMALL_LIMIT = Math.floor(4294967295 / 20);

/** torch.randperm(n, generator=g) on the CPU (int64 result as numbers), for n < 2^32 / 20. */
export function randperm(n: number, generator: Generator): Int32Array | Float64Array {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`randperm: n must be a non-negative integer, got ${n}`);
  if (n >= RANDPERM_SMALL_LIMIT) throw new RangeError(`randperm: n = ${n} is too large (torch switches algorithms at 2^32 / 20; not implemented)`);
  const r = n <= 0x7fffffff ? new Int32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) r[i] = i;
  for (let i = 0; i < n - 1; i++) {
    const z = generator.random() % (n - i);
    const save = r[i]!;
    r[i] = r[i + z]!;
    r[i + z] = save;
  }
  return r;
}

/** `torch.empty((), dtype=torch.int64).random_(generator=g)`: random64() mod 2^63. */
export function randomInt64(generator: Generator): bigint {
  return generator.random64() & 0x7fffffffffffffffn;
}

// ---------------------------------------------------------------------------------------------
// collation
// ---------------------------------------------------------------------------------------------

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function stackArrays(key: string, values: ArrayData[]): ArrayData {
  const first = values[0]!;
  const ctor = first.data.constructor as { new (n: number): ArrayStorage; name: string };
  const per = first.data.length;
  for (let i = 1; i < values.length; i++) {
    const v = values[i]!;
    if (v.data.constructor !== first.data.constructor) {
      throw new TypeError(`collate: key '${key}': sample ${i} holds ${v.data.constructor.name}, sample 0 ${ctor.name}`);
    }
    if (!sameShape(v.shape, first.shape)) {
      throw new TypeError(`collate: key '${key}': sample ${i} has shape [${v.shape.join(', ')}], sample 0 [${first.shape.join(', ')}] (resize or crop to one size first)`);
    }
  }
  const out = new ctor(per * values.length);
  for (let i = 0; i < values.length; i++) (out as unknown as { set(a: ArrayLike<unknown>, o: number): void }).set(values[i]!.data as ArrayLike<unknown>, i * per);
  return { data: out, shape: [values.length, ...first.shape] };
}

/**
 * torch's default_collate for dict samples: arrays are stacked along a new first axis (same
 * shape and type required), numbers become int64 (all integers: BigInt64Array) or float64
 * (Float64Array) arrays of shape [B], bigints int64, booleans uint8, strings and everything
 * else lists.
 */
export function collate(samples: readonly Sample[]): Batch {
  if (samples.length === 0) throw new RangeError('collate: empty batch');
  const batch: Batch = {};
  const keys = Object.keys(samples[0]!);
  for (const key of keys) {
    const values = samples.map((s, i) => {
      if (!(key in s)) throw new TypeError(`collate: sample ${i} lacks key '${key}' that sample 0 has`);
      return s[key];
    });
    const v0 = values[0];
    if (isArrayData(v0)) {
      if (!values.every(isArrayData)) throw new TypeError(`collate: key '${key}' mixes arrays and other values`);
      batch[key] = stackArrays(key, values as ArrayData[]);
    } else if (typeof v0 === 'number' && values.every((v) => typeof v === 'number')) {
      const nums = values as number[];
      if (nums.every((v) => Number.isSafeInteger(v))) batch[key] = { data: BigInt64Array.from(nums, (v) => BigInt(v)), shape: [nums.length] };
      else batch[key] = { data: Float64Array.from(nums), shape: [nums.length] };
    } else if (typeof v0 === 'bigint' && values.every((v) => typeof v === 'bigint')) {
      batch[key] = { data: BigInt64Array.from(values as bigint[]), shape: [values.length] };
    } else if (typeof v0 === 'boolean' && values.every((v) => typeof v === 'boolean')) {
      batch[key] = { data: Uint8Array.from(values as boolean[], (b) => (b ? 1 : 0)), shape: [values.length] };
    } else {
      batch[key] = values;
    }
  }
  return batch;
}

/** The array values of a batch as tensor constants (other values are left out). */
export function batchToTensors(batch: Batch): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [key, v] of Object.entries(batch)) {
    if (!isArrayData(v)) continue;
    const data = v.data instanceof Float64Array || v.data instanceof Float32Array || v.data instanceof Int32Array || v.data instanceof BigInt64Array || v.data instanceof Uint8Array ? v.data : null;
    if (data === null) continue;
    out[key] = constant(data, v.shape, dtypeOfArray(data));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// DataLoader
// ---------------------------------------------------------------------------------------------

export interface DataLoaderOptions<S> {
  batchSize: number;
  /** Reshuffle every epoch (default false, as torch). */
  shuffle?: boolean;
  /** Drop the last incomplete batch (default false). */
  dropLast?: boolean;
  /** The shuffling generator (used and advanced in place); default: a new one seeded with `seed`. */
  generator?: Generator;
  /** Seed of the default generator (default 0). */
  seed?: number | bigint;
  /** Batches prepared ahead of the consumer (default 2; 0: none). */
  prefetch?: number;
  /** Builds a batch from samples (default: collate). */
  collate?: (samples: S[]) => Batch;
}

/** Where a DataLoader stands: enough to resume and see exactly the batches an uninterrupted run sees. */
export interface DataLoaderState {
  /** Epochs completed. */
  epoch: number;
  /** Batches of the current epoch already delivered. */
  indexInEpoch: number;
  /** The generator's state (base64 of Generator.getState()) at the start of the current epoch. */
  generator: string;
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export class DataLoader<S extends Sample = Sample> implements AsyncIterable<Batch> {
  readonly dataset: MapDataset<S>;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly prefetch: number;
  readonly generator: Generator;
  private readonly collateFn: (samples: S[]) => Batch;
  private epochNo = 0;
  private index = 0;
  /** The current epoch's sample order (null between epochs). */
  private order: Int32Array | Float64Array | null = null;
  private epochStartState: Uint8Array | null = null;

  constructor(dataset: MapDataset<S>, options: DataLoaderOptions<S>) {
    const { batchSize } = options;
    if (!Number.isInteger(batchSize) || batchSize <= 0) throw new RangeError(`DataLoader: batchSize must be a positive integer, got ${batchSize}`);
    const prefetch = options.prefetch ?? 2;
    if (!Number.isInteger(prefetch) || prefetch < 0) throw new RangeError(`DataLoader: prefetch must be a non-negative integer, got ${prefetch}`);
    this.dataset = dataset;
    this.batchSize = batchSize;
    this.shuffle = options.shuffle ?? false;
    this.dropLast = options.dropLast ?? false;
    this.prefetch = prefetch;
    this.generator = options.generator ?? new Generator(options.seed ?? 0);
    this.collateFn = options.collate ?? (collate as (s: S[]) => Batch);
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Epochs completed. */
  get epoch(): number {
    return this.epochNo;
  }

  /** Batches of the current epoch already delivered. */
  get indexInEpoch(): number {
    return this.index;
  }

  state(): DataLoaderState {
    const gen = this.order !== null && this.epochStartState !== null ? this.epochStartState : this.generator.getState();
    return { epoch: this.epochNo, indexInEpoch: this.index, generator: b64(gen) };
  }

  /** Restores a state from state(); the next batches are those an uninterrupted run would see. */
  setState(state: DataLoaderState): void {
    if (!Number.isInteger(state.epoch) || state.epoch < 0) throw new RangeError(`DataLoader.setState: bad epoch ${state.epoch}`);
    if (!Number.isInteger(state.indexInEpoch) || state.indexInEpoch < 0 || state.indexInEpoch > this.length) {
      throw new RangeError(`DataLoader.setState: indexInEpoch ${state.indexInEpoch} is outside [0, ${this.length}] batches per epoch`);
    }
    this.generator.setState(new Uint8Array(Buffer.from(state.generator, 'base64')));
    this.epochNo = state.epoch;
    this.index = state.indexInEpoch;
    this.order = null;
    this.epochStartState = null;
    if (this.index > 0) this.beginEpoch();
  }

  private beginEpoch(): void {
    this.epochStartState = this.generator.getState();
    const n = this.dataset.length;
    if (this.shuffle) {
      randomInt64(this.generator); // the DataLoader iterator's worker base seed
      this.order = randperm(n, this.generator);
    } else {
      const o = new Int32Array(n);
      for (let i = 0; i < n; i++) o[i] = i;
      this.order = o;
    }
  }

  /** The dataset indices of batch `b` of the current epoch. */
  private batchIndices(b: number): number[] {
    const order = this.order!;
    const start = b * this.batchSize;
    const end = Math.min(order.length, start + this.batchSize);
    const out: number[] = [];
    for (let i = start; i < end; i++) out.push(order[i]!);
    return out;
  }

  private async makeBatch(indices: number[]): Promise<Batch> {
    // Yield first, so that preparing a batch runs after the consumer got the previous one.
    await new Promise<void>((r) => setImmediate(r));
    const samples = await Promise.all(indices.map((i) => this.dataset.get(i)));
    return this.collateFn(samples);
  }

  /**
   * The remaining batches of the current epoch (all of them, at the start of an epoch); the epoch
   * counts as complete when the last batch has been delivered.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<Batch, void, undefined> {
    if (this.order === null) this.beginEpoch();
    const total = this.length;
    const queue: Promise<Batch>[] = [];
    let next = this.index;
    const fill = (): void => {
      while (next < total && queue.length < this.prefetch + 1) {
        const p = this.makeBatch(this.batchIndices(next++));
        p.catch(() => {}); // surfaced when awaited; silenced if the consumer stops early
        queue.push(p);
      }
    };
    if (total === 0) {
      this.endEpoch();
      return;
    }
    for (;;) {
      fill();
      const batch = await queue.shift()!;
      this.index++;
      const last = this.index === total;
      if (last) this.endEpoch();
      else fill();
      yield batch;
      if (last) return;
    }
  }

  private endEpoch(): void {
    this.epochNo++;
    this.index = 0;
    this.order = null;
    this.epochStartState = null;
  }

  /** Batches across epochs until `epochs` epochs are complete (default: forever). */
  async *batches(epochs = Infinity): AsyncGenerator<{ batch: Batch; epoch: number; indexInEpoch: number }, void, undefined> {
    while (this.epochNo < epochs) {
      const epoch = this.epochNo;
      let i = this.index;
      let any = false;
      for await (const batch of this) {
        any = true;
        yield { batch, epoch, indexInEpoch: i++ };
      }
      if (!any && this.length === 0) return;
    }
  }
}
