// Module, Parameter, buffers and state dicts with PyTorch's names: children register under their
// property name and lists are numbered, so `stateDict()` keys are exactly PyTorch's for the same
// structure (`input_blocks.1.0.in_layers.2.weight`) and real checkpoints load unchanged.
import { fmtShape, Variable, type DType, type Shape, type Storage } from '../tensor/index.js';

/** A trainable weight. */
export class Parameter extends Variable {
  requiresGrad = true;
}

/** A non-trainable tensor that belongs to the module (running stats, schedules, ...). */
export class Buffer extends Variable {
  /** Non-persistent buffers are not part of the state dict (PyTorch's persistent=False). */
  persistent = true;
}

/** One entry of a state-dict source: its dtype, shape and where its bytes are. */
export interface StateEntry {
  dtype: DType;
  shape: Shape;
  storage: Storage;
}

/** Something to load a state dict from: a Map, or a lazy view of a checkpoint file. */
export interface StateSource {
  keys(): Iterable<string>;
  get(key: string): StateEntry | undefined;
}

export interface LoadReport {
  missing: string[];
  unexpected: string[];
  /** key: expected shape vs found shape (or dtype problem). */
  mismatched: Array<{ key: string; expected: Shape; found: Shape; reason?: string }>;
  loaded: number;
}

export class StateDictError extends Error {
  constructor(
    readonly report: LoadReport,
    where: string,
  ) {
    const parts: string[] = [];
    const list = (xs: string[]): string => (xs.length > 20 ? `${xs.slice(0, 20).join(', ')}, ... (${xs.length} in all)` : xs.join(', '));
    if (report.missing.length) parts.push(`missing keys (${report.missing.length}): ${list(report.missing)}`);
    if (report.unexpected.length) parts.push(`unexpected keys (${report.unexpected.length}): ${list(report.unexpected)}`);
    if (report.mismatched.length) {
      parts.push(
        `misshaped keys (${report.mismatched.length}): ${list(
          report.mismatched.map((m) => `${m.key} expected ${fmtShape(m.expected)} found ${fmtShape(m.found)}${m.reason ? ` (${m.reason})` : ''}`),
        )}`,
      );
    }
    super(`loading state dict${where ? ` from ${where}` : ''} failed:\n  ${parts.join('\n  ')}\nCheck that the checkpoint matches the config (or load with strict: false).`);
    this.name = 'StateDictError';
  }
}

const LOADABLE_DTYPES = new Set<DType>(['float32', 'float16', 'bfloat16', 'float64', 'int64', 'int32', 'uint8', 'bool']);

export abstract class Module {
  training = true;

  /** Children in registration (property) order; arrays of modules are numbered like ModuleList. */
  namedChildren(): Array<[string, Module]> {
    const out: Array<[string, Module]> = [];
    for (const [k, v] of Object.entries(this)) {
      if (v instanceof Module) out.push([k, v]);
      else if (Array.isArray(v) && v.length > 0 && v.every((x) => x instanceof Module || x === null)) {
        // A plain array of modules behaves like an nn.ModuleList property.
        v.forEach((m, i) => {
          if (m) out.push([`${k}.${i}`, m as Module]);
        });
      }
    }
    return out;
  }

  /** Own parameters and buffers (not recursive), in property order. */
  namedOwnVariables(): Array<[string, Variable]> {
    const out: Array<[string, Variable]> = [];
    for (const [k, v] of Object.entries(this)) if (v instanceof Parameter || v instanceof Buffer) out.push([k, v]);
    return out;
  }

  /** Every module below (and including) this one with its dotted path. */
  namedModules(prefix = ''): Array<[string, Module]> {
    const out: Array<[string, Module]> = [[prefix, this]];
    for (const [k, m] of this.namedChildren()) out.push(...m.namedModules(prefix ? `${prefix}.${k}` : k));
    return out;
  }

  namedParameters(prefix = ''): Array<[string, Parameter]> {
    const out: Array<[string, Parameter]> = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [k, v] of m.namedOwnVariables()) {
        if (v instanceof Parameter) out.push([path ? `${path}.${k}` : k, v]);
      }
    }
    return dedupe(out);
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(prefix = ''): Array<[string, Buffer]> {
    const out: Array<[string, Buffer]> = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [k, v] of m.namedOwnVariables()) if (v instanceof Buffer) out.push([path ? `${path}.${k}` : k, v]);
    }
    return out;
  }

  /** Parameters and persistent buffers by their PyTorch state-dict key (live variables, not copies). */
  stateDict(prefix = ''): Map<string, Variable> {
    const out = new Map<string, Variable>();
    for (const [path, m] of this.namedModules()) {
      for (const [k, v] of m.namedOwnVariables()) {
        if (v instanceof Buffer && !v.persistent) continue;
        const key = `${prefix}${path ? `${path}.${k}` : k}`;
        v.name ??= key;
        out.set(key, v);
      }
    }
    return out;
  }

  /**
   * Points every parameter and buffer at the matching entry of `source` (`prefix` + key). No data
   * is copied: file-backed entries stay in the file until a session reads them, and a dtype that
   * differs from the compute dtype (an fp16 checkpoint) is cast inside the graph.
   * With strict (default), any missing, unexpected or misshaped key is an error naming them all.
   */
  loadStateDict(source: StateSource, opts: { strict?: boolean; prefix?: string; where?: string } = {}): LoadReport {
    const strict = opts.strict ?? true;
    const prefix = opts.prefix ?? '';
    const own = this.stateDict();
    const report: LoadReport = { missing: [], unexpected: [], mismatched: [], loaded: 0 };
    const plan: Array<[Variable, StateEntry]> = [];
    for (const [key, v] of own) {
      const e = source.get(prefix + key);
      if (!e) {
        report.missing.push(prefix + key);
        continue;
      }
      const sameShape = e.shape.length === v.shape.length && e.shape.every((d, i) => d === v.shape[i]);
      if (!sameShape) {
        report.mismatched.push({ key: prefix + key, expected: v.shape, found: e.shape });
        continue;
      }
      if (!LOADABLE_DTYPES.has(e.dtype)) {
        report.mismatched.push({ key: prefix + key, expected: v.shape, found: e.shape, reason: `dtype ${e.dtype} not loadable` });
        continue;
      }
      plan.push([v, e]);
    }
    const ownKeys = new Set([...own.keys()].map((k) => prefix + k));
    for (const k of source.keys()) if (k.startsWith(prefix) && !ownKeys.has(k)) report.unexpected.push(k);
    if (strict && (report.missing.length || report.unexpected.length || report.mismatched.length)) {
      throw new StateDictError(report, opts.where ?? '');
    }
    for (const [v, e] of plan) v.assign(e.storage);
    report.loaded = plan.length;
    return report;
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Number of parameter elements. */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }
}

function dedupe<T>(xs: Array<[string, T]>): Array<[string, T]> {
  const seen = new Set<T>();
  return xs.filter(([, v]) => (seen.has(v) ? false : (seen.add(v), true)));
}

/** nn.ModuleList: children numbered 0, 1, ... */
export class ModuleList<M extends Module = Module> extends Module {
  readonly items: M[];

  constructor(items: Iterable<M> = []) {
    super();
    this.items = [...items];
  }

  override namedChildren(): Array<[string, Module]> {
    return this.items.map((m, i) => [String(i), m]);
  }

  get length(): number {
    return this.items.length;
  }

  at(i: number): M {
    const m = this.items[i < 0 ? i + this.items.length : i];
    if (!m) throw new RangeError(`ModuleList index ${i} out of range (length ${this.items.length})`);
    return m;
  }

  push(m: M): void {
    this.items.push(m);
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}

/** A module with a single-tensor forward. */
export interface Forward<I = import('../tensor/index.js').Tensor, O = import('../tensor/index.js').Tensor> {
  forward(x: I): O;
}
