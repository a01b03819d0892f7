// Running a network parity case (../shared/fixtures/networks): the io tensors, Python keyword
// arguments to positional ones, the call steps with their trace points, and the comparison of every
// out.* tensor with its own tolerance, and the nodes a traced graph depends on. The unet and video
// unit tests share these.
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.js';
import type * as nn from '../../src/nn/index.js';
import type { SafetensorsTensor } from '../../src/io/safetensors.js';
import { assertClose, type Tolerance } from './close.js';

export const IO_DTYPE: Record<string, T.DType> = { F32: 'float32', I64: 'int64', BOOL: 'bool', F64: 'float64', I32: 'int32', U8: 'uint8' };

export function ioTensor(t: SafetensorsTensor): T.Tensor {
  return T.tensor(t.data as T.TypedArray, t.shape, IO_DTYPE[t.dtype]!);
}

export type Callable = nn.Module & { forward(...a: unknown[]): T.Tensor };

/**
 * Python kwargs to positional arguments by the class's ARGS; a `**kwargs` entry gathers the rest.
 * Single-argument methods without ARGS take the value.
 */
export function positional(target: object, method: string, kwargs: Record<string, unknown>): unknown[] {
  const names = (target.constructor as { ARGS?: Record<string, string[]> }).ARGS?.[method];
  const keys = Object.keys(kwargs);
  if (!names) {
    assert.ok(keys.length <= 1, `${target.constructor.name}.${method} declares no ARGS but is called with ${keys.join(', ')}`);
    return keys.map((k) => kwargs[k]);
  }
  const star = names.findIndex((n) => n.startsWith('**'));
  const extra = keys.filter((k) => !names.includes(k));
  if (star < 0) for (const k of extra) assert.fail(`${target.constructor.name}.${method}: unknown argument ${k} (ARGS ${names.join(', ')})`);
  const args = names.map((n, i) => (i === star ? Object.fromEntries(extra.map((k) => [k, kwargs[k]])) : kwargs[n]));
  while (args.length && args[args.length - 1] === undefined) args.pop();
  return args;
}

/** Worst |out - ref| / (atol + rtol |ref|) over the elements (<= 1 passes). */
export function worstRatio(got: ArrayLike<number>, ref: ArrayLike<number>, tol: Tolerance): number {
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(got[i]! - ref[i]!) / (tol.atol + tol.rtol * Math.abs(ref[i]!)));
  return worst;
}

/** A network whose forward reports its block outputs to `traceHook`. */
export interface Traceable {
  traceHook: ((path: string, out: T.Tensor) => void) | null;
}

export interface CaseRunner {
  /** Runs a `function` step (a module-level function called by dotted name). */
  callFunction(fn: string, kwargs: Record<string, unknown>): T.Tensor;
  /** The network class whose traceHook serves `trace` steps. */
  traced: abstract new (...args: any[]) => Traceable;
}

/**
 * Runs one case's call steps on `module` (null: function steps only) and compares every out.*
 * tensor with its own tolerance. Returns the worst error as a fraction of the tolerance, per
 * output, and reports it as a diagnostic of `t` when given.
 */
export async function runModuleCase(
  name: string,
  spec: Record<string, any>,
  io: Map<string, SafetensorsTensor>,
  module: Callable | null,
  runner: CaseRunner,
  t?: TestContext,
): Promise<Map<string, number>> {
  const values = new Map<string, T.Tensor>();
  for (const [k, v] of io) if (k.startsWith('in.')) values.set(k, ioTensor(v));
  const resolveArg = (v: unknown): unknown => (typeof v === 'string' && /^(in|out|noise)\./.test(v) ? values.get(v) ?? assert.fail(`${name}: ${v} not available`) : v);
  const produced: string[] = [];
  for (const step of spec.call as Array<Record<string, any>>) {
    const kwargs: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(step.kwargs as Record<string, unknown>)) kwargs[k] = resolveArg(v);
    let result: T.Tensor;
    const trace = new Map<string, T.Tensor>();
    if (step.function) {
      result = runner.callFunction(step.function as string, kwargs);
    } else {
      let target: Callable = module!;
      if (step.method !== 'forward') for (const part of (step.method as string).split('.')) target = (target as unknown as Record<string, Callable>)[part]!;
      assert.ok(target && typeof target.forward === 'function', `${name}: no module at ${step.method}`);
      if (step.trace) {
        assert.ok(module instanceof runner.traced, `${name}: tracing is implemented for ${runner.traced.name} only`);
        module.traceHook = (path, out) => trace.set(path, out);
      }
      try {
        result = target.forward(...positional(target, 'forward', kwargs));
      } finally {
        if (module instanceof runner.traced) module.traceHook = null;
      }
    }
    assert.equal(typeof step.output, 'string', `${name}: only single outputs are handled here`);
    values.set(step.output, result);
    produced.push(step.output);
    for (const p of step.trace ?? []) {
      assert.ok(trace.has(p), `${name}: trace point ${p} was not reported`);
      values.set(`out.trace.${p}`, trace.get(p)!);
      produced.push(`out.trace.${p}`);
    }
  }
  const outs = [...io.keys()].filter((k) => k.startsWith('out.'));
  assert.deepEqual([...produced].sort(), [...outs].sort(), `${name}: produced outputs vs the io file`);
  const data = await T.evaluate(outs.map((k) => values.get(k)!));
  const ratios = new Map<string, number>();
  outs.forEach((k, i) => {
    const ref = io.get(k)!;
    const got = values.get(k)!;
    assert.deepEqual([...got.shape], ref.shape, `${name}: ${k} shape`);
    assert.equal(got.dtype, IO_DTYPE[ref.dtype], `${name}: ${k} dtype`);
    const tol: Tolerance = spec.tolerance.per_output[k];
    assert.ok(tol, `${name}: no tolerance for ${k}`);
    assertClose(data[i] as Float32Array, ref.data as Float32Array, tol, `${name} ${k}`);
    ratios.set(k, worstRatio(data[i] as Float32Array, ref.data as Float32Array, tol));
  });
  if (t) {
    const worst = [...ratios].reduce((a, b) => (b[1] > a[1] ? b : a), ['', 0] as [string, number]);
    t.diagnostic(`${name}: worst ${worst[1].toFixed(3)} of tolerance (${worst[0]}); ${[...ratios].map(([k, r]) => `${k} ${r.toFixed(3)}`).join(', ')}`);
  }
  return ratios;
}

/** Every node the outputs depend on (iterative, the graph is deep). */
export function graphNodes(outs: readonly T.Tensor[]): T.Tensor[] {
  const seen = new Set<number>();
  const order: T.Tensor[] = [];
  const stack = [...outs];
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t.id)) continue;
    seen.add(t.id);
    order.push(t);
    for (const u of t.inputs) if (!seen.has(u.id)) stack.push(u);
  }
  return order;
}
