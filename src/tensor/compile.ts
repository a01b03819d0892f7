// Running graphs on ONNX Runtime: `compile(fn, specs)` traces a function once into one ONNX model
// and one InferenceSession; `evaluate` (behind `await t.data()`) does the same for a pending
// subgraph. Sessions are cached by the plan's structural key plus the runtime options.
import { openSync, readSync, closeSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { checkArrayDType, viewBytes, type DType, type TypedArray } from './dtype.js';
import { emitModel } from './emit.js';
import './emitters.js';
import { plan, type Plan } from './graph.js';
import { fmtShape, symbolicInput, Tensor, Variable, constant, type Shape } from './tensor.js';

export type Device = 'cpu' | 'cuda' | 'tensorrt' | 'coreml' | 'dml' | 'webgpu';

export interface RuntimeOptions {
  /** Execution provider (default cpu). Others need an onnxruntime-node build that has them. */
  device?: Device;
  /** Intra-op threads (default: ONNX Runtime's choice, all cores). */
  threads?: number;
  /** ONNX Runtime graph optimisation level (default 'all'). */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
}

export interface CompileOptions extends RuntimeOptions {
  /** Variables baked into the session as initializers (inference, default) or fed each run (training). */
  variables?: 'initializers' | 'inputs';
  /** Name of the ONNX graph (shows up in profiles). */
  name?: string;
}

let runtimeDefaults: Required<Pick<RuntimeOptions, 'device'>> & RuntimeOptions = { device: 'cpu' };

/** Sets the device and thread count used when an option is not given. */
export function setRuntimeDefaults(o: RuntimeOptions): void {
  runtimeDefaults = { ...runtimeDefaults, ...o };
}

export function getRuntimeDefaults(): RuntimeOptions {
  return { ...runtimeDefaults };
}

const ORT_TYPE: Record<DType, ort.Tensor.Type | null> = {
  float32: 'float32',
  float16: 'float16',
  float64: 'float64',
  int64: 'int64',
  int32: 'int32',
  uint8: 'uint8',
  bool: 'bool',
  bfloat16: null,
};

interface SessionEntry {
  session: ort.InferenceSession;
  /** Graph input name and the plan index of the tensor that feeds it. */
  feeds: Array<{ name: string; index: number }>;
  outputNames: string[];
  createMs: number;
  modelBytes: number;
}

export const engineStats = { sessionsCreated: 0, sessionCreateMs: 0, runs: 0, emitMs: 0 };

const profiledSessions: ort.InferenceSession[] = [];

/** With SGM_ORT_PROFILE set: ends profiling of every session made so far (ORT writes the files). */
export async function endProfiling(): Promise<void> {
  for (const s of profiledSessions.splice(0)) await s.endProfiling();
}

async function createSession(p: Plan, opts: RuntimeOptions, name?: string): Promise<SessionEntry> {
  const t0 = performance.now();
  const em = emitModel(p, name);
  const t1 = performance.now();
  const device = opts.device ?? 'cpu';
  const so: ort.InferenceSession.SessionOptions = {
    executionProviders: device === 'cpu' ? ['cpu'] : [device, 'cpu'],
    graphOptimizationLevel: opts.optimization ?? 'all',
    // No memory pattern: with one, ONNX Runtime reserves the whole planned block outside its arena
    // on every run and returns it afterwards, so each run of a large graph page-faults its
    // activations in again (seconds of system time for a 512x512 VAE decode) and the block sits
    // beside the arena's own memory (about 0.9 GiB more peak). The arena alone reuses its buffers.
    enableMemPattern: false,
    ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
    ...(em.externalRoot ? { extra: { session: { model_external_initializers_file_folder_path: em.externalRoot } } } : {}),
    // SGM_ORT_PROFILE=<prefix>: ONNX Runtime writes a per-node timing profile (chrome trace JSON)
    // of every session when endProfiling() is called; a tool for finding slow kernels.
    ...(process.env.SGM_ORT_PROFILE ? { enableProfiling: true, profileFilePrefix: process.env.SGM_ORT_PROFILE } : {}),
  };
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(em.bytes, so);
  } catch (e) {
    throw new Error(`ONNX Runtime could not create a session for graph "${name ?? 'sgm'}" (${p.order.length} nodes): ${(e as Error).message}`);
  }
  if (process.env.SGM_ORT_PROFILE) profiledSessions.push(session);
  const createMs = performance.now() - t0;
  engineStats.sessionsCreated++;
  engineStats.sessionCreateMs += createMs;
  engineStats.emitMs += t1 - t0;
  return {
    session,
    feeds: em.feeds.map((f) => ({ name: f.name, index: p.index.get(f.tensor.id)! })),
    outputNames: em.outputNames,
    createMs,
    modelBytes: em.bytes.byteLength,
  };
}

// Eager evaluations share an LRU of sessions; compiled functions hold their own.
const EAGER_CACHE_SIZE = 64;
const eagerCache = new Map<string, Promise<SessionEntry>>();

function optionsKey(o: RuntimeOptions): string {
  return `${o.device ?? 'cpu'}|${o.threads ?? 0}|${o.optimization ?? 'all'}`;
}

async function eagerSession(p: Plan): Promise<SessionEntry> {
  const key = `${p.key}|${optionsKey(runtimeDefaults)}`;
  let entry = eagerCache.get(key);
  if (entry) {
    eagerCache.delete(key);
    eagerCache.set(key, entry);
    return entry;
  }
  entry = createSession(p, runtimeDefaults, 'eager');
  eagerCache.set(key, entry);
  entry.catch(() => eagerCache.delete(key));
  while (eagerCache.size > EAGER_CACHE_SIZE) {
    const [oldKey, old] = eagerCache.entries().next().value as [string, Promise<SessionEntry>];
    eagerCache.delete(oldKey);
    old.then((s) => s.session.release()).catch(() => undefined);
  }
  return entry;
}

function readRegion(path: string, offset: number, byteLength: number): Uint8Array {
  const buf = new Uint8Array(new ArrayBuffer(byteLength));
  const fd = openSync(path, 'r');
  try {
    let done = 0;
    while (done < byteLength) {
      const n = readSync(fd, buf, done, byteLength - done, offset + done);
      if (n <= 0) throw new Error(`${path}: unexpected end of file reading ${byteLength} bytes at ${offset}`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return buf;
}

/** Host data of a variable in its storage dtype (file-backed storage is read). */
export function variableData(v: Variable): TypedArray {
  const st = v.storage;
  if (st.kind === 'host') return st.data;
  return viewBytes(readRegion(st.path, st.offset, st.byteLength), st.dtype);
}

function bf16ToF32Words(w: Uint16Array): Float32Array {
  const u = new Uint32Array(w.length);
  for (let i = 0; i < w.length; i++) u[i] = w[i]! << 16;
  return new Float32Array(u.buffer);
}

function feedTensor(t: Tensor, name: string): ort.Tensor {
  let data: TypedArray;
  let dtype: DType;
  if (t instanceof Variable) {
    data = variableData(t);
    dtype = t.storage.dtype;
    if (dtype === 'bfloat16') {
      data = bf16ToF32Words(data as Uint16Array);
      dtype = 'float32';
    }
  } else {
    data = t.value!;
    dtype = t.dtype;
  }
  const type = ORT_TYPE[dtype];
  if (!type) throw new Error(`cannot feed ${dtype} data to ONNX Runtime (input "${name}"); cast it to float32 first`);
  return new ort.Tensor(type, data as never, [...t.shape]);
}

function outputArray(t: Tensor, o: ort.Tensor): TypedArray {
  const d = o.data as unknown;
  if (t.dtype === 'bool' && !(d instanceof Uint8Array)) return new Uint8Array(d as ArrayLike<number>);
  if (t.dtype === 'float16' && !(d instanceof Uint16Array)) {
    const v = d as ArrayBufferView;
    return new Uint16Array(v.buffer, v.byteOffset, v.byteLength / 2);
  }
  return d as TypedArray;
}

async function runEntry(entry: SessionEntry, p: Plan): Promise<TypedArray[]> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const f of entry.feeds) feeds[f.name] = feedTensor(p.order[f.index]!, f.name);
  engineStats.runs++;
  const res = await entry.session.run(feeds);
  return p.outputs.map((t, i) => outputArray(t, res[entry.outputNames[i]!]!));
}

function immediate(t: Tensor): TypedArray | undefined {
  if (t instanceof Variable) return t.storage.kind === 'host' && t.storage.dtype === t.dtype ? t.storage.data : undefined;
  return t.value;
}

/**
 * Evaluates tensors eagerly: the pending subgraph is compiled (cached by structure; large
 * constants are fed so a session is reused across values) and run. Results are memoised on the
 * tensors (not on variables, whose contents may change), so later graphs start from them.
 */
export interface EvaluateOptions {
  /**
   * 'initializers': bake the weights into the (cached) session, so evaluating the same model again
   * reads nothing from JavaScript: use it for models evaluated repeatedly (text encoders, the
   * autoencoder). Default 'inputs': weights are fed on every run (no session holds a copy).
   */
  variables?: 'initializers' | 'inputs';
}

export async function evaluate(ts: readonly Tensor[], opts: EvaluateOptions = {}): Promise<TypedArray[]> {
  const out = ts.map(immediate);
  const pending = ts.filter((_, i) => out[i] === undefined);
  if (pending.length > 0) {
    const p = plan(pending, { mode: 'eager', variables: opts.variables ?? 'inputs' });
    for (const t of p.order) {
      if (p.roles.get(t.id) === 'input') {
        throw new Error(`cannot evaluate a tensor that depends on the traced input "${String(t.attrs.name)}" outside compile()`);
      }
    }
    const vals = await runEntry(await eagerSession(p), p);
    pending.forEach((t, i) => {
      if (!(t instanceof Variable)) t.value = vals[i];
    });
    let j = 0;
    ts.forEach((_, i) => {
      if (out[i] === undefined) out[i] = vals[j++];
    });
  }
  return out as TypedArray[];
}

// ---------------------------------------------------------------- compile

export interface InputSpec {
  shape: Shape;
  dtype?: DType;
  name?: string;
}

export type Traced = Tensor | readonly Tensor[] | { readonly [k: string]: Tensor };
export type InputValue = Tensor | TypedArray;

export interface CompiledFunction<R extends Traced> {
  (...inputs: InputValue[]): Promise<R>;
  /** Seconds spent emitting the model and creating the session. */
  readonly createMs: number;
  readonly modelBytes: number;
  readonly nodeCount: number;
  release(): Promise<void>;
}

function flattenTraced(r: Traced): Tensor[] {
  if (r instanceof Tensor) return [r];
  if (Array.isArray(r)) return [...(r as Tensor[])];
  return Object.values(r as Record<string, Tensor>);
}

function unflatten<R extends Traced>(shape: Traced, values: Tensor[]): R {
  if (shape instanceof Tensor) return values[0] as R;
  if (Array.isArray(shape)) return values as unknown as R;
  const out: Record<string, Tensor> = {};
  Object.keys(shape).forEach((k, i) => (out[k] = values[i]!));
  return out as R;
}

/**
 * Traces `fn` once on symbolic inputs of the given shapes and dtypes, emits one ONNX model and
 * creates one session. The returned function runs it: inputs are tensors (evaluated if lazy) or
 * typed arrays; outputs are evaluated tensors in the structure `fn` returned.
 */
export async function compile<R extends Traced>(
  fn: (...xs: Tensor[]) => R,
  specs: readonly InputSpec[],
  options: CompileOptions = {},
): Promise<CompiledFunction<R>> {
  const opts: CompileOptions = { ...runtimeDefaults, ...options };
  const names = specs.map((s, i) => s.name ?? `x${i}`);
  if (new Set(names).size !== names.length) throw new Error(`compile: input names must be unique, got ${names.join(', ')}`);
  const symbols = specs.map((s, i) => symbolicInput(names[i]!, s.shape, s.dtype ?? 'float32'));
  const traced = fn(...symbols);
  const outs = flattenTraced(traced);
  if (outs.length === 0) throw new Error('compile: the function returned no tensors');
  const p = plan(outs, { mode: 'compile', variables: opts.variables ?? 'initializers' });
  const baked = p.order.filter((t): t is Variable => t instanceof Variable && p.roles.get(t.id) === 'bake');
  let versions = baked.map((v) => v.version);
  let entry = await createSession(p, opts, opts.name);
  const inputIndex = new Map<string, number>();
  for (const t of p.order) if (t.op === 'input' && p.roles.get(t.id) === 'input') inputIndex.set(String(t.attrs.name), p.index.get(t.id)!);

  const run = async (...inputs: InputValue[]): Promise<R> => {
    if (inputs.length !== specs.length) throw new Error(`compiled function takes ${specs.length} inputs, got ${inputs.length}`);
    if (baked.some((v, i) => v.version !== versions[i])) {
      // Weights were reassigned since the session was made: rebuild it with the new values.
      await entry.session.release();
      entry = await createSession(p, opts, opts.name);
      versions = baked.map((v) => v.version);
    }
    const feeds: Record<string, ort.Tensor> = {};
    for (let i = 0; i < specs.length; i++) {
      const spec = specs[i]!;
      const dtype = spec.dtype ?? 'float32';
      const name = names[i]!;
      const v = inputs[i]!;
      let data: TypedArray;
      if (v instanceof Tensor) {
        if (v.dtype !== dtype || v.shape.length !== spec.shape.length || v.shape.some((d, j) => d !== spec.shape[j])) {
          throw new Error(`input "${name}": expected ${dtype}${fmtShape(spec.shape)}, got ${v.dtype}${fmtShape(v.shape)}`);
        }
        data = await v.data();
      } else {
        checkArrayDType(v, dtype, `input "${name}"`);
        const n = spec.shape.reduce((a, b) => a * b, 1);
        if (v.length !== n) throw new Error(`input "${name}": expected ${n} elements for ${fmtShape(spec.shape)}, got ${v.length}`);
        data = v;
      }
      if (!inputIndex.has(name)) continue; // unused by the graph
      feeds[`in_${name}`] = new ort.Tensor(ORT_TYPE[dtype]!, data as never, [...spec.shape]);
    }
    for (const f of entry.feeds) feeds[f.name] = feedTensor(p.order[f.index]!, f.name);
    engineStats.runs++;
    const res = await entry.session.run(feeds);
    const values = outs.map((t, i) => constant(outputArray(t, res[entry.outputNames[i]!]!), t.shape, t.dtype));
    return unflatten<R>(traced, values);
  };
  Object.defineProperties(run, {
    createMs: { get: () => entry.createMs },
    modelBytes: { get: () => entry.modelBytes },
    nodeCount: { value: p.order.length },
  });
  (run as unknown as { release: () => Promise<void> }).release = () => entry.session.release();
  return run as unknown as CompiledFunction<R>;
}

