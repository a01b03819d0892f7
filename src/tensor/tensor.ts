// The lazy Tensor: a node of a computation graph (op, inputs, attributes, static shape, dtype).
// Building a tensor computes nothing; `await t.data()` compiles the pending subgraph to ONNX and
// runs it on ONNX Runtime (see compile.ts), `compile(fn, specs)` does the same for a whole function.
import { allocate, checkArrayDType, ITEMSIZE, type DType, type TypedArray } from './dtype.js';

export type Shape = readonly number[];
export type AttrValue = number | string | boolean | null | readonly AttrValue[] | { readonly [k: string]: AttrValue };
export type Attrs = { readonly [k: string]: AttrValue };

/** Thrown when an op is built with inputs of the wrong shape or dtype. */
export class ShapeError extends Error {
  constructor(op: string, message: string) {
    super(`${op}: ${message}`);
    this.name = 'ShapeError';
  }
}

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function fmtShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

let nextId = 1;

export class Tensor {
  readonly id: number;
  /** Host data once known: set for constants and for evaluated tensors (then a leaf for later graphs). */
  value: TypedArray | undefined;

  constructor(
    readonly op: string,
    readonly inputs: readonly Tensor[],
    readonly attrs: Attrs,
    readonly shape: Shape,
    readonly dtype: DType,
  ) {
    this.id = nextId++;
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new ShapeError(op, `invalid output shape ${fmtShape(shape)}`);
    }
  }

  get ndim(): number {
    return this.shape.length;
  }

  get size(): number {
    return numel(this.shape);
  }

  /** Dimension `axis` (negative counts from the end). */
  dim(axis: number): number {
    const a = axis < 0 ? axis + this.shape.length : axis;
    if (a < 0 || a >= this.shape.length) throw new ShapeError('dim', `axis ${axis} out of range for shape ${fmtShape(this.shape)}`);
    return this.shape[a]!;
  }

  /** Materialises the tensor: compiles (cached) and runs its pending graph, returns host data. */
  async data(): Promise<TypedArray> {
    if (this.value !== undefined) return this.value;
    const { evaluate } = await import('./compile.js');
    const [v] = await evaluate([this]);
    return v!;
  }

  /** Host data as a plain array of numbers (int64 converted with Number). */
  async toArray(): Promise<number[]> {
    const d = await this.data();
    return Array.from(d as ArrayLike<number | bigint>, (x) => Number(x));
  }

  /** A single element's value. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new ShapeError('item', `tensor has ${this.size} elements, not 1`);
    return (await this.toArray())[0]!;
  }

  toString(): string {
    return `Tensor(${this.op}, ${fmtShape(this.shape)}, ${this.dtype})`;
  }
}

/** A constant with host data. */
export function constant(data: TypedArray, shape: Shape, dtype: DType): Tensor {
  checkArrayDType(data, dtype, 'constant');
  if (data.length !== numel(shape)) {
    throw new ShapeError('constant', `data has ${data.length} elements but shape ${fmtShape(shape)} needs ${numel(shape)}`);
  }
  const t = new Tensor('const', [], {}, [...shape], dtype);
  t.value = data;
  return t;
}

/** A symbolic graph input (only meaningful while tracing a function for compile()). */
export function symbolicInput(name: string, shape: Shape, dtype: DType): Tensor {
  return new Tensor('input', [], { name }, [...shape], dtype);
}

/**
 * Where a variable's bytes live: in JavaScript memory, in a region of a file (a checkpoint),
 * not yet computed (an initialiser run on first use, so building a large model costs nothing
 * until it is used), or nowhere yet (to be loaded from a checkpoint).
 */
export type Storage =
  | { kind: 'host'; dtype: DType; data: TypedArray }
  | { kind: 'file'; dtype: DType; path: string; offset: number; byteLength: number }
  | { kind: 'lazy'; dtype: DType; init: () => TypedArray }
  | { kind: 'empty'; dtype: DType };

/** A storage whose bytes exist (host memory or a file region). */
export type ResolvedStorage = Exclude<Storage, { kind: 'lazy' } | { kind: 'empty' }>;

let nextVarUid = 1;

/**
 * A leaf whose value can change between runs: weights and buffers. Its storage dtype may differ
 * from its compute dtype (an fp16 checkpoint feeding an fp32 graph): a Cast is emitted after it,
 * which ONNX Runtime folds once at session creation.
 */
export class Variable extends Tensor {
  readonly uid: number;
  /** Bumped on every assign(); part of the session cache key when the variable is baked in. */
  version = 0;
  /** Its state-dict key once known (for error messages). */
  name: string | undefined;
  private _storage: Storage;

  constructor(shape: Shape, dtype: DType, storage?: Storage) {
    super('variable', [], {}, [...shape], dtype);
    this.uid = nextVarUid++;
    this._storage = storage ?? { kind: 'host', dtype, data: allocate(dtype, numel(shape)) };
    this.checkStorage(this._storage);
  }

  /** The storage, with a lazy initialiser run now (an empty one is an error naming the variable). */
  get storage(): ResolvedStorage {
    const s = this._storage;
    if (s.kind === 'lazy') {
      const data = s.init();
      this._storage = { kind: 'host', dtype: s.dtype, data };
      this.checkStorage(this._storage);
      return this._storage as { kind: 'host'; dtype: DType; data: TypedArray };
    }
    if (s.kind === 'empty') {
      throw new Error(`${this.name ?? `variable ${fmtShape(this.shape)}`} has no value: it was never initialised or loaded from a checkpoint`);
    }
    return s;
  }

  /** The storage as it is, without materialising it. */
  get rawStorage(): Storage {
    return this._storage;
  }

  /** Replaces the variable's contents (shape must match; the storage dtype may differ). */
  assign(storage: Storage | TypedArray): void {
    const s: Storage =
      ArrayBuffer.isView(storage) ? { kind: 'host', dtype: this.dtype, data: storage as TypedArray } : (storage as Storage);
    this.checkStorage(s);
    this._storage = s;
    this.version++;
  }

  private checkStorage(s: Storage): void {
    const n = numel(this.shape);
    if (s.kind === 'lazy' || s.kind === 'empty') return;
    if (s.kind === 'host') {
      checkArrayDType(s.data, s.dtype, 'Variable.assign');
      if (s.data.length !== n) {
        throw new ShapeError('Variable', `storage has ${s.data.length} elements, the variable ${fmtShape(this.shape)} needs ${n}`);
      }
    } else if (s.byteLength !== n * ITEMSIZE[s.dtype]) {
      throw new ShapeError('Variable', `file region of ${s.byteLength} bytes does not hold ${n} ${s.dtype} values`);
    }
  }
}
