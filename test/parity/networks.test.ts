// Parity: every case in fixtures/networks, dispatched on its kind.
//   module:          build target(params) from the registry, load NAME.weights.safetensors strictly,
//                    run the `call` steps (methods, sub-module paths, functions) and compare outputs
//                    and traced sub-module outputs with the per-output tolerances;
//   function:        the same for a plain function (timestep_embedding);
//   checkpoint_keys: build a reference config's network and first stage at full size (no weights)
//                    and compare every state-dict key and shape with the released layout.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import * as T from '../../src/tensor/index.js';
import * as nn from '../../src/nn/index.js';
import { SafetensorsFile, type SafetensorsDType } from '../../src/io/safetensors.js';
import { stateSourceFromSafetensors } from '../../src/io/checkpoint.js';
import { instantiateFromConfig, loadConfigFile, NotImplementedTargetError } from '../../src/config/index.js';
import '../../src/registry.js';
import { loadIo, parityArea, type IoTensor, type ParityCase } from '../helpers/fixtures.js';
import { assertClose, type Tolerance } from '../helpers/close.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const IO_DTYPE: Partial<Record<SafetensorsDType, T.DType>> = {
  F32: 'float32',
  F64: 'float64',
  F16: 'float16',
  I64: 'int64',
  I32: 'int32',
  U8: 'uint8',
  BOOL: 'bool',
};

function toTensor(io: IoTensor, name: string): T.Tensor {
  const dtype = IO_DTYPE[io.dtype];
  if (!dtype) throw new Error(`io tensor ${name} has unsupported dtype ${io.dtype}`);
  return T.constant(io.data as T.TypedArray, io.shape, dtype);
}

/** Module-level functions and classes the cases call by dotted name. */
const FUNCTIONS: Record<string, (kw: Record<string, unknown>) => Promise<unknown>> = {
  'sgm.modules.diffusionmodules.util.timestep_embedding': async (kw) => {
    const { timestep_embedding } = await import('../../src/modules/diffusionmodules/util.js');
    return timestep_embedding(kw.timesteps as T.Tensor, kw.dim as number, (kw.max_period as number | undefined) ?? 10000, (kw.repeat_only as boolean | undefined) ?? false);
  },
  'sgm.modules.distributions.distributions.DiagonalGaussianDistribution': async (kw) => {
    const { DiagonalGaussianDistribution } = await import('../../src/modules/distributions/distributions.js');
    return new DiagonalGaussianDistribution(kw.parameters as T.Tensor, (kw.deterministic as boolean | undefined) ?? false);
  },
};

type AnyFn = (...args: unknown[]) => unknown;

/** Python kwargs -> positional arguments, by the class's ARGS table (or a single argument). */
function positional(obj: object, method: string, kwargs: Record<string, unknown>): unknown[] {
  const names = Object.keys(kwargs);
  let ctor = obj.constructor as { ARGS?: Record<string, string[]>; name: string } | undefined;
  while (ctor) {
    const order = Object.prototype.hasOwnProperty.call(ctor, 'ARGS') ? ctor.ARGS?.[method] : undefined;
    if (order) {
      // A Python **kwargs parameter is a trailing options object: unnamed kwargs gather there.
      const star = order.findIndex((n) => n.startsWith('**'));
      const extra = names.filter((n) => !order.includes(n));
      if (star < 0) for (const n of extra) throw new Error(`${ctor.name}.${method} has no parameter "${n}" (ARGS: ${order.join(', ')})`);
      const args = order.map((n, i) => (i === star ? Object.fromEntries(extra.map((k) => [k, kwargs[k]])) : kwargs[n]));
      while (args.length > 0 && args[args.length - 1] === undefined) args.pop();
      return args;
    }
    ctor = Object.getPrototypeOf(ctor) as typeof ctor;
    if (!ctor || ctor === (Function.prototype as unknown)) break;
  }
  if (names.length <= 1) return names.map((n) => kwargs[n]);
  throw new Error(`${obj.constructor.name}.${method} is called with ${names.join(', ')} but declares no static ARGS order`);
}

function resolveTarget(root: nn.Module, path: string): { self: object; fn: AnyFn; name: string } {
  const modules = new Map(root.namedModules());
  if (path === 'forward') return { self: root, fn: (root as unknown as { forward: AnyFn }).forward, name: 'forward' };
  const sub = modules.get(path);
  if (sub) return { self: sub, fn: (sub as unknown as { forward: AnyFn }).forward, name: 'forward' };
  const fn = (root as unknown as Record<string, unknown>)[path];
  if (typeof fn === 'function') return { self: root, fn: fn as AnyFn, name: path };
  throw new Error(`${root.constructor.name} has no sub-module or method "${path}"`);
}

/** Replaces the forward of each traced sub-module by one that records its output. */
function withTraces(root: nn.Module, paths: string[], record: (path: string, out: T.Tensor) => void): () => void {
  const modules = new Map(root.namedModules());
  const restore: Array<() => void> = [];
  for (const p of paths) {
    const m = modules.get(p) as (nn.Module & { forward: AnyFn }) | undefined;
    if (!m) throw new Error(`trace path "${p}" is not a sub-module of ${root.constructor.name}`);
    const own = Object.prototype.hasOwnProperty.call(m, 'forward');
    const original = m.forward;
    m.forward = function (this: unknown, ...args: unknown[]) {
      const out = original.apply(this, args);
      if (out instanceof T.Tensor) record(p, out);
      return out;
    };
    restore.push(() => {
      if (own) m.forward = original;
      else delete (m as Partial<typeof m>).forward;
    });
  }
  return () => restore.forEach((r) => r());
}

function storeResult(store: Map<string, unknown>, spec: unknown, value: unknown): void {
  if (typeof spec === 'string') {
    store.set(spec, value);
  } else if (Array.isArray(spec)) {
    const arr = value as unknown[];
    spec.forEach((s, i) => storeResult(store, s, arr[i]));
  } else if (spec && typeof spec === 'object') {
    for (const [k, s] of Object.entries(spec as Record<string, unknown>)) storeResult(store, s, (value as Record<string, unknown>)[k]);
  }
}

function tolFor(c: ParityCase, name: string): Tolerance {
  const tol = c.spec.tolerance ?? {};
  const per = tol.per_output?.[name];
  return { atol: per?.atol ?? tol.atol, rtol: per?.rtol ?? tol.rtol };
}

async function runModuleCase(c: ParityCase, t: TestContext): Promise<void> {
  const io = loadIo(c);
  const store = new Map<string, unknown>();
  for (const [k, v] of io) if (!k.startsWith('out.')) store.set(k, toTensor(v, k));
  let module: nn.Module | null = null;
  if (c.spec.kind === 'module') {
    try {
      module = instantiateFromConfig<nn.Module>({ target: c.spec.target, params: c.spec.params ?? {} }, { path: c.name });
    } catch (e) {
      if (e instanceof NotImplementedTargetError) {
        t.todo(e.message);
        return;
      }
      throw e;
    }
    if (c.weightsPath) {
      const f = SafetensorsFile.open(c.weightsPath);
      module.loadStateDict(stateSourceFromSafetensors(f), { where: c.weightsPath });
    }
    module.eval();
  }
  for (const step of c.spec.call as Array<Record<string, any>>) {
    const kwargs: Record<string, unknown> = {};
    for (const [k, v] of Object.entries((step.kwargs ?? {}) as Record<string, unknown>)) {
      if (typeof v === 'string' && /^(in|out|noise)\./.test(v)) {
        if (!store.has(v)) throw new Error(`${c.name}: step needs ${v}, which no earlier step produced`);
        kwargs[k] = store.get(v);
      } else {
        kwargs[k] = v;
      }
    }
    if (step.seed !== undefined) T.manualSeed(step.seed as number);
    const traced = new Map<string, T.Tensor>();
    let result: unknown;
    if (step.function) {
      const fn = FUNCTIONS[step.function as string];
      if (!fn) throw new Error(`${c.name}: no implementation registered for function ${step.function}`);
      result = await fn(kwargs);
    } else {
      assert.ok(module, `${c.name}: a method step needs a module`);
      const target = resolveTarget(module, step.method as string);
      const restore = withTraces(module, (step.trace ?? []) as string[], (p, out) => traced.set(p, out));
      try {
        result = await target.fn.apply(target.self, positional(target.self, target.name, kwargs));
      } finally {
        restore();
      }
    }
    if (step.output !== undefined) storeResult(store, step.output, result);
    for (const [attr, name] of Object.entries((step.attrs ?? {}) as Record<string, string>)) {
      const v = (result as Record<string, unknown>)[attr];
      store.set(name, typeof v === 'function' ? (v as AnyFn).call(result) : v);
    }
    for (const [p, out] of traced) store.set(`out.trace.${p}`, out);
  }
  // Evaluate every produced output together, then compare.
  const names = [...io.keys()].filter((k) => k.startsWith('out.'));
  const missing = names.filter((n) => !(store.get(n) instanceof T.Tensor));
  assert.deepEqual(missing, [], `${c.name}: outputs never produced: ${missing.join(', ')}`);
  const tensors = names.map((n) => store.get(n) as T.Tensor);
  const values = await T.evaluate(tensors);
  names.forEach((n, i) => {
    const ref = io.get(n)!;
    const got = tensors[i]!;
    assert.deepEqual([...got.shape], ref.shape, `${c.name}: ${n} has shape [${got.shape}], expected [${ref.shape}]`);
    assertClose(values[i] as ArrayLike<number>, ref.data as ArrayLike<number>, tolFor(c, n), `${c.name}: ${n}`);
  });
}

function referenceConfigsRoot(): string {
  return process.env.SGM_REFERENCE_CONFIGS ? resolve(process.env.SGM_REFERENCE_CONFIGS) : resolve(repoRoot, '..', 'shared', 'reference-configs');
}

async function runKeysCase(c: ParityCase, t: TestContext): Promise<void> {
  const rel = String(c.spec.config).replace(/^configs\//, '');
  const path = join(referenceConfigsRoot(), rel);
  assert.ok(existsSync(path), `${c.name}: reference config ${path} not found (set SGM_REFERENCE_CONFIGS)`);
  const cfg = loadConfigFile(path) as Record<string, any>;
  const got: Array<[string, number[]]> = [];
  for (const [part, info] of Object.entries(c.spec.parts as Record<string, { prefix: string }>)) {
    let m: nn.Module;
    try {
      m = nn.withInitMode('none', () => instantiateFromConfig<nn.Module>(cfg.model.params[part], { path: `model.params.${part}` }));
    } catch (e) {
      if (e instanceof NotImplementedTargetError) {
        t.todo(e.message);
        return;
      }
      throw e;
    }
    for (const [k, v] of m.stateDict()) got.push([info.prefix + k, [...v.shape]]);
  }
  const expected = c.spec.keys as Array<[string, number[]]>;
  const exp = new Map(expected.map(([k, s]) => [k, s.join('x')]));
  const have = new Map(got.map(([k, s]) => [k, s.join('x')]));
  const missing = [...exp.keys()].filter((k) => !have.has(k));
  const extra = [...have.keys()].filter((k) => !exp.has(k));
  const misshaped = [...exp.keys()].filter((k) => have.has(k) && have.get(k) !== exp.get(k)).map((k) => `${k}: ${have.get(k)} vs ${exp.get(k)}`);
  assert.deepEqual({ missing, extra, misshaped }, { missing: [], extra: [], misshaped: [] }, `${c.name}: state-dict layout differs`);
  assert.equal(got.length, expected.length);
}

parityArea('networks', {
  module: runModuleCase,
  function: runModuleCase,
  checkpoint_keys: runKeysCase,
});
