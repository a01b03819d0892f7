// Forward correctness of every op against independent plain-JavaScript references (naive loops in
// float64), on deterministic random inputs and shapes that exercise broadcasting and edge cases.
// The semantics are PyTorch 1.13's (torch.nn.functional / torch.* of the same name).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.js';
import type { Tensor } from '../../src/tensor/index.js';
import { assertClose, type Tolerance } from '../helpers/close.js';
import { lcg, randomArray } from '../helpers/gradcheck.js';
import { fma32 } from '../../src/tensor/random.js';

// ---------------------------------------------------------------- reference helpers

type Arr = ArrayLike<number>;
interface Ref {
  shape: number[];
  data: number[];
}

const TOL: Tolerance = { atol: 1e-5, rtol: 1e-5 };
/** Sums of a few dozen products (conv, matmul, attention). */
const SUM_TOL: Tolerance = { atol: 5e-5, rtol: 2e-5 };
const EXACT: Tolerance = { atol: 0, rtol: 0 };

const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return idx;
}

function ravel(idx: readonly number[], shape: readonly number[]): number {
  let f = 0;
  for (let d = 0; d < shape.length; d++) f = f * shape[d]! + idx[d]!;
  return f;
}

function bcastShape(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const pa = [...new Array<number>(n - a.length).fill(1), ...a];
  const pb = [...new Array<number>(n - b.length).fill(1), ...b];
  return pa.map((d, i) => {
    const e = pb[i]!;
    if (d === e || e === 1) return d;
    if (d === 1) return e;
    throw new Error(`reference: ${a} and ${b} do not broadcast`);
  });
}

/** Element of `data` (shape `shape`) that broadcasts to output position `outIdx`. */
function bcastAt(data: Arr, shape: readonly number[], outIdx: readonly number[]): number {
  const off = outIdx.length - shape.length;
  let f = 0;
  for (let d = 0; d < shape.length; d++) f = f * shape[d]! + (shape[d] === 1 ? 0 : outIdx[off + d]!);
  return data[f]!;
}

/** N-ary elementwise map with broadcasting. */
function refMap(shapes: readonly (readonly number[])[], datas: readonly Arr[], f: (...v: number[]) => number): Ref {
  const shape = shapes.reduce<number[]>((s, t) => bcastShape(s, t), []);
  const data = new Array<number>(prod(shape));
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape);
    data[i] = f(...datas.map((d, k) => bcastAt(d, shapes[k]!, idx)));
  }
  return { shape, data };
}

/** Reduction over `axes` (all when undefined); `f` sees the values of one output position in order. */
function refReduce(x: Arr, shape: readonly number[], axes: readonly number[] | undefined, keepdim: boolean, f: (v: number[]) => number): Ref {
  const ax = (axes ?? shape.map((_, i) => i)).map((a) => (a < 0 ? a + shape.length : a));
  const keepShape = shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const buckets: number[][] = Array.from({ length: prod(keepShape) }, () => []);
  for (let i = 0; i < prod(shape); i++) {
    const idx = unravel(i, shape).map((v, d) => (ax.includes(d) ? 0 : v));
    buckets[ravel(idx, keepShape)]!.push(x[i]!);
  }
  const outShape = keepdim ? keepShape : shape.filter((_, i) => !ax.includes(i));
  return { shape: outShape, data: buckets.map(f) };
}

/** Applies `f` to every 1-d lane along `axis`, writing the lane it returns back in place. */
function refLanes(x: Arr, shape: readonly number[], axis: number, f: (lane: number[]) => number[]): Ref {
  const a = axis < 0 ? axis + shape.length : axis;
  const out = new Array<number>(prod(shape));
  const n = shape[a]!;
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, shape);
    if (idx[a] !== 0) continue;
    const positions = Array.from({ length: n }, (_, j) => {
      const p = [...idx];
      p[a] = j;
      return ravel(p, shape);
    });
    const lane = f(positions.map((p) => x[p]!));
    positions.forEach((p, j) => (out[p] = lane[j]!));
  }
  return { shape: [...shape], data: out };
}

/** Selects positions `idx` (a list, may repeat) along `axis`. */
function refTake(x: Arr, shape: readonly number[], axis: number, idx: readonly number[]): Ref {
  const a = axis < 0 ? axis + shape.length : axis;
  const outShape = [...shape];
  outShape[a] = idx.length;
  const data = new Array<number>(prod(outShape));
  for (let i = 0; i < data.length; i++) {
    const p = unravel(i, outShape);
    p[a] = idx[p[a]!]!;
    data[i] = x[ravel(p, shape)]!;
  }
  return { shape: outShape, data };
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** CPython's slice.indices() followed by the index walk. */
function pySlice(n: number, start: number | undefined, stop: number | undefined, step: number): number[] {
  const lower = step > 0 ? 0 : -1;
  const upper = step > 0 ? n : n - 1;
  const fix = (v: number | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    let r = v < 0 ? v + n : v;
    if (r < lower) r = lower;
    else if (r > upper) r = upper;
    return r;
  };
  const s = fix(start, step > 0 ? lower : upper);
  const e = fix(stop, step > 0 ? upper : lower);
  const out: number[] = [];
  for (let i = s; step > 0 ? i < e : i > e; i += step) out.push(i);
  return out;
}

/** erf by its Maclaurin series (float64; accurate to ~1e-11 for |x| <= 4). */
function erfRef(x: number): number {
  let term = x;
  let s = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    const add = term / (2 * n + 1);
    s += add;
    if (Math.abs(add) < 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * s;
}

const sigmoidRef = (x: number): number => 1 / (1 + Math.exp(-x));
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

// ---------------------------------------------------------------- test-data helpers

function gen(seed: number): (shape: readonly number[], lo?: number, hi?: number) => Float32Array {
  const r = lcg(seed);
  return (shape, lo = -1, hi = 1) => randomArray(prod(shape), r, lo, hi);
}

/** Random data quantised to multiples of 1/4 in [-1, 1] (ties for comparisons and argmax). */
function quantised(rnd: ReturnType<typeof gen>, shape: readonly number[]): Float32Array {
  return rnd(shape).map((v) => Math.round(v * 4) / 4);
}

const t32 = (data: Float32Array, shape: readonly number[]): Tensor => T.tensor(data, shape, 'float32');

async function expectRef(label: string, y: Tensor, ref: Ref, tol: Tolerance = TOL): Promise<void> {
  assert.deepEqual([...y.shape], ref.shape, `${label}: shape ${JSON.stringify(y.shape)}, expected ${JSON.stringify(ref.shape)}`);
  assertClose(await y.data(), ref.data, tol, label);
}

function assertShapeError(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof T.ShapeError, `expected a ShapeError, got ${String(e)}`);
    assert.match(e.message, re);
    return true;
  });
}

// ---------------------------------------------------------------- elementwise

test('broadcasting binary arithmetic', async () => {
  const rnd = gen(1);
  const pairs: Array<[number[], number[]]> = [
    [[2, 3, 4], [3, 1]],
    [[4], [2, 1, 4]],
    [[1, 3, 1], [2, 1, 5]],
    [[], [2, 3]],
    [[2, 3], [2, 3]],
  ];
  const ops: Array<[string, (a: Tensor, b: Tensor) => Tensor, (a: number, b: number) => number]> = [
    ['add', T.add, (a, b) => a + b],
    ['sub', T.sub, (a, b) => a - b],
    ['mul', T.mul, (a, b) => a * b],
    ['maximum', T.maximum, Math.max],
    ['minimum', T.minimum, Math.min],
  ];
  for (const [sa, sb] of pairs) {
    const a = rnd(sa, -2, 2);
    const b = rnd(sb, -2, 2);
    for (const [name, op, f] of ops) {
      await expectRef(`${name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`, op(t32(a, sa), t32(b, sb)), refMap([sa, sb], [a, b], f));
    }
    // div: denominators away from zero, either sign.
    const d = rnd(sb, 0.5, 2).map((v, i) => (i % 2 ? -v : v));
    await expectRef(`div ${JSON.stringify(sa)} ${JSON.stringify(sb)}`, T.div(t32(a, sa), t32(d, sb)), refMap([sa, sb], [a, d], (x, y) => x / y));
    // pow with a tensor exponent: positive bases.
    const p = rnd(sa, 0.2, 2);
    const e = rnd(sb, -2, 2);
    await expectRef(`pow ${JSON.stringify(sa)} ${JSON.stringify(sb)}`, T.pow(t32(p, sa), t32(e, sb)), refMap([sa, sb], [p, e], Math.pow));
  }
});

test('scalar operands', async () => {
  const rnd = gen(2);
  const s = [3, 4];
  const x = rnd(s, 0.5, 2).map((v, i) => (i % 3 === 0 ? -v : v));
  const X = t32(x, s);
  const cases: Array<[string, Tensor, (v: number) => number]> = [
    ['x + 2.5', T.add(X, 2.5), (v) => v + 2.5],
    ['2.5 + x', T.add(2.5, X), (v) => 2.5 + v],
    ['3 - x', T.sub(3, X), (v) => 3 - v],
    ['x - 3', T.sub(X, 3), (v) => v - 3],
    ['x * -0.5', T.mul(X, -0.5), (v) => v * -0.5],
    ['1 / x', T.div(1, X), (v) => 1 / v],
    ['x / 4', T.div(X, 4), (v) => v / 4],
    ['maximum(x, 0.75)', T.maximum(X, 0.75), (v) => Math.max(v, 0.75)],
    ['minimum(0.75, x)', T.minimum(0.75, X), (v) => Math.min(0.75, v)],
  ];
  for (const [label, y, f] of cases) await expectRef(label, y, { shape: s, data: Array.from(x, f) });
  // Integer tensors keep their dtype; a number operand takes the tensor's dtype.
  const xi = T.tensor([1, -2, 3, 4, -5, 6], [2, 3], 'int64');
  const yi = T.tensor([10, 20, 30], [3], 'int64');
  const sumI = T.add(T.mul(xi, 3), yi);
  assert.equal(sumI.dtype, 'int64');
  await expectRef('int64 x*3 + y', sumI, { shape: [2, 3], data: [13, 14, 39, 22, 5, 48] }, EXACT);
  assert.throws(() => T.add(1, 2 as unknown as Tensor), T.ShapeError);
});

test('comparisons, where and logical ops', async () => {
  const rnd = gen(3);
  const sa = [2, 3, 4];
  const sb = [3, 1];
  const a = quantised(rnd, sa);
  const b = quantised(rnd, sb);
  const A = t32(a, sa);
  const B = t32(b, sb);
  const cmps: Array<[string, (x: Tensor, y: Tensor) => Tensor, (x: number, y: number) => boolean]> = [
    ['eq', T.eq, (x, y) => x === y],
    ['ne', T.ne, (x, y) => x !== y],
    ['lt', T.lt, (x, y) => x < y],
    ['le', T.le, (x, y) => x <= y],
    ['gt', T.gt, (x, y) => x > y],
    ['ge', T.ge, (x, y) => x >= y],
  ];
  let ties = 0;
  for (const [name, op, f] of cmps) {
    const y = op(A, B);
    assert.equal(y.dtype, 'bool', name);
    const ref = refMap([sa, sb], [a, b], (x, z) => (f(x, z) ? 1 : 0));
    await expectRef(name, y, ref, EXACT);
    if (name === 'eq') ties = ref.data.reduce((p, v) => p + v, 0);
  }
  assert.ok(ties > 0, 'test data should contain ties');
  await expectRef('gt scalar', T.gt(A, 0.25), refMap([sa], [a], (x) => (x > 0.25 ? 1 : 0)), EXACT);
  await expectRef('int64 le', T.le(T.tensor([1, 5, 3], [3], 'int64'), T.tensor([3], [1], 'int64')), { shape: [3], data: [1, 0, 1] }, EXACT);

  // where: condition, branches all broadcasting; number branches.
  const sc = [2, 1, 4];
  const c = rnd(sc).map((v) => (v > 0 ? 1 : 0));
  const C = T.tensor(Uint8Array.from(c), sc, 'bool');
  await expectRef('where(c, a, b)', T.where(C, B, A), refMap([sc, sb, sa], [c, b, a], (k, x, y) => (k ? x : y)));
  await expectRef('where(c, a, 0)', T.where(C, A, 0), refMap([sc, sa], [c, a], (k, x) => (k ? x : 0)));
  await expectRef('where(c, 1.5, b)', T.where(C, 1.5, B), refMap([sc, sb], [c, b], (k, x) => (k ? 1.5 : x)));

  // logical ops with broadcasting
  const p = [1, 0, 1, 0, 1, 1];
  const q = [1, 0, 0];
  const P = T.tensor(Uint8Array.from(p), [2, 3], 'bool');
  const Q = T.tensor(Uint8Array.from(q), [3], 'bool');
  await expectRef('and', T.logicalAnd(P, Q), refMap([[2, 3], [3]], [p, q], (x, y) => (x && y ? 1 : 0)), EXACT);
  await expectRef('or', T.logicalOr(P, Q), refMap([[2, 3], [3]], [p, q], (x, y) => (x || y ? 1 : 0)), EXACT);
  await expectRef('not', T.logicalNot(P), { shape: [2, 3], data: p.map((v) => (v ? 0 : 1)) }, EXACT);
  await expectRef('lt & gt', T.logicalAnd(T.gt(A, -0.5), T.lt(A, 0.5)), refMap([sa], [a], (x) => (x > -0.5 && x < 0.5 ? 1 : 0)), EXACT);
});

test('unary math', async () => {
  const rnd = gen(4);
  const s = [5, 7];
  const x = rnd(s, -3, 3);
  const pos = rnd(s, 0.05, 4);
  const wide = rnd(s, -4, 4);
  const X = t32(x, s);
  const gelu = (v: number): number => 0.5 * v * (1 + erfRef(v / Math.SQRT2));
  const geluTanh = (v: number): number => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
  const cases: Array<[string, (t: Tensor) => Tensor, (v: number) => number, Float32Array]> = [
    ['exp', T.exp, Math.exp, x],
    ['log', T.log, Math.log, pos],
    ['sqrt', T.sqrt, Math.sqrt, pos],
    ['rsqrt', T.rsqrt, (v) => 1 / Math.sqrt(v), pos],
    ['reciprocal', T.reciprocal, (v) => 1 / v, pos],
    ['sin', T.sin, Math.sin, x],
    ['cos', T.cos, Math.cos, x],
    ['tanh', T.tanh, Math.tanh, x],
    ['sigmoid', T.sigmoid, sigmoidRef, wide],
    ['abs', T.abs, Math.abs, x],
    ['neg', T.neg, (v) => -v, x],
    ['square', T.square, (v) => v * v, x],
    ['erf', T.erf, erfRef, wide],
    ['relu', T.relu, (v) => Math.max(v, 0), x],
    ['floor', T.floor, Math.floor, x],
    ['ceil', T.ceil, Math.ceil, x],
    ['round', T.round, roundHalfEven, x],
    ['sign', T.sign, Math.sign, x],
    ['gelu', (t) => T.gelu(t), gelu, wide],
    ['gelu tanh', (t) => T.gelu(t, 'tanh'), geluTanh, wide],
    ['silu', T.silu, (v) => v * sigmoidRef(v), wide],
  ];
  for (const [name, op, f, data] of cases) {
    await expectRef(name, op(t32(data, s)), { shape: s, data: Array.from(data, f) });
  }

  // round: halves go to the even neighbour; floor/ceil/sign on exact values.
  const halves = Float32Array.from([-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 0.49999997, -0.49999997, 2.5000002, 0, -2]);
  await expectRef('round halves', T.round(t32(halves, [13])), { shape: [13], data: [-4, -2, -2, -0, 0, 2, 2, 4, 0, -0, 3, 0, -2] }, EXACT);
  const edges = Float32Array.from([-2, -1.5, -0, 0, 1, 1.5]);
  await expectRef('floor edges', T.floor(t32(edges, [6])), { shape: [6], data: [-2, -2, 0, 0, 1, 1] }, EXACT);
  await expectRef('ceil edges', T.ceil(t32(edges, [6])), { shape: [6], data: [-2, -1, 0, 0, 1, 2] }, EXACT);
  await expectRef('sign edges', T.sign(t32(edges, [6])), { shape: [6], data: [-1, -1, 0, 0, 1, 1] }, EXACT);
  await expectRef('abs/neg int64', T.neg(T.abs(T.tensor([-3, 0, 7], [3], 'int64'))), { shape: [3], data: [-3, 0, -7] }, EXACT);

  // pow with scalar exponents (special-cased ones and the general one).
  for (const p of [1.7, 2, 3, 0.5, -0.5, -1, -2, 1, 0.25]) {
    await expectRef(`pow(x, ${p}) positive`, T.pow(t32(pos, s), p), { shape: s, data: Array.from(pos, (v) => Math.pow(v, p)) }, { atol: 1e-5, rtol: 2e-5 });
  }
  const nz = x.map((v) => (Math.abs(v) < 0.2 ? v + Math.sign(v || 1) * 0.3 : v));
  for (const p of [2, 3, -1, -2]) {
    await expectRef(`pow(x, ${p}) signed`, T.pow(t32(nz, s), p), { shape: s, data: Array.from(nz, (v) => Math.pow(v, p)) }, { atol: 1e-5, rtol: 2e-5 });
  }

  // clamp with one or both bounds; min > max gives max (torch).
  await expectRef('clamp both', T.clamp(X, -0.5, 1.25), { shape: s, data: Array.from(x, (v) => Math.min(Math.max(v, -0.5), 1.25)) });
  await expectRef('clamp min', T.clamp(X, 0.3), { shape: s, data: Array.from(x, (v) => Math.max(v, 0.3)) });
  await expectRef('clamp max', T.clamp(X, null, -0.2), { shape: s, data: Array.from(x, (v) => Math.min(v, -0.2)) });
  await expectRef('clamp min>max', T.clamp(X, 1, 0), { shape: s, data: Array.from(x, () => 0) });
  await expectRef('clamp int64', T.clamp(T.tensor([-5, 0, 5, 9], [4], 'int64'), -1, 6), { shape: [4], data: [-1, 0, 5, 6] }, EXACT);
  assertShapeError(() => T.clamp(X), /clamp/);
});

test('NaN propagation like torch', async () => {
  const v = Float32Array.from([NaN, 1, -2, 0.5]);
  const X = t32(v, [4]);
  await expectRef('maximum', T.maximum(X, 0), { shape: [4], data: [NaN, 1, 0, 0.5] }, EXACT);
  await expectRef('minimum', T.minimum(X, 0), { shape: [4], data: [NaN, 0, -2, 0] }, EXACT);
  await expectRef('clamp', T.clamp(X, -1, 0.75), { shape: [4], data: [NaN, 0.75, -1, 0.5] }, EXACT);
  await expectRef('relu', T.relu(X), { shape: [4], data: [NaN, 1, 0, 0.5] }, EXACT);
  await expectRef('max', T.max(X), { shape: [], data: [NaN] }, EXACT);
  await expectRef('argmax', T.argmax(t32(Float32Array.from([1, 3, NaN, 3]), [4]), 0), { shape: [], data: [2] }, EXACT);
});

// ---------------------------------------------------------------- reductions

test('reductions with axes and keepdim', async () => {
  const rnd = gen(5);
  const s = [3, 4, 5];
  const x = rnd(s, -2, 2);
  const X = t32(x, s);
  const sumF = (v: number[]): number => v.reduce((a, b) => a + b, 0);
  const meanF = (v: number[]): number => sumF(v) / v.length;
  const varF = (corr: number) => (v: number[]): number => {
    const m = meanF(v);
    return v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - corr);
  };
  const axesList: Array<number[] | undefined> = [undefined, [0], [-1], [0, 2], [1], [2, 0, 1]];
  for (const axes of axesList) {
    for (const keepdim of [false, true]) {
      const tag = `${JSON.stringify(axes)} keepdim=${keepdim}`;
      await expectRef(`sum ${tag}`, T.sum(X, axes, keepdim), refReduce(x, s, axes, keepdim, sumF));
      await expectRef(`mean ${tag}`, T.mean(X, axes, keepdim), refReduce(x, s, axes, keepdim, meanF));
      await expectRef(`max ${tag}`, T.max(X, axes, keepdim), refReduce(x, s, axes, keepdim, (v) => Math.max(...v)), EXACT);
      await expectRef(`min ${tag}`, T.min(X, axes, keepdim), refReduce(x, s, axes, keepdim, (v) => Math.min(...v)), EXACT);
      for (const correction of [0, 1]) {
        await expectRef(`var(c=${correction}) ${tag}`, T.variance(X, axes, { correction, keepdim }), refReduce(x, s, axes, keepdim, varF(correction)));
      }
    }
  }
  await expectRef('var default correction is 1', T.variance(X, 1), refReduce(x, s, [1], false, varF(1)));
  // Single-axis number form and int64 sums.
  await expectRef('sum axis number', T.sum(X, 1), refReduce(x, s, [1], false, sumF));
  const xi = T.tensor([1, 2, 3, 4, 5, 6], [2, 3], 'int64');
  await expectRef('sum int64', T.sum(xi, 0), { shape: [3], data: [5, 7, 9] }, EXACT);
  await expectRef('max int64', T.max(xi, 1, true), { shape: [2, 1], data: [3, 6] }, EXACT);
  // A long reduction: 20000 elements with a non-zero mean.
  const ls = [4, 5000];
  const l = rnd(ls, 0, 2);
  await expectRef('long sum', T.sum(t32(l, ls), -1), refReduce(l, ls, [-1], false, sumF), { atol: 1e-3, rtol: 1e-5 });
  await expectRef('long mean', T.mean(t32(l, ls)), refReduce(l, ls, undefined, false, meanF), { atol: 1e-5, rtol: 1e-5 });
  await expectRef('long var', T.variance(t32(l, ls), [1]), refReduce(l, ls, [1], false, varF(1)), { atol: 1e-5, rtol: 1e-4 });
});

test('argmax (first index on ties), cumsum, cumprod', async () => {
  const rnd = gen(6);
  const s = [4, 6, 3];
  const x = quantised(rnd, s);
  const X = t32(x, s);
  const argmaxF = (v: number[]): number => v.indexOf(Math.max(...v));
  for (const axis of [0, 1, 2, -1]) {
    for (const keepdim of [false, true]) {
      const y = T.argmax(X, axis, keepdim);
      assert.equal(y.dtype, 'int64');
      await expectRef(`argmax axis ${axis} keepdim=${keepdim}`, y, refReduce(x, s, [axis], keepdim, argmaxF), EXACT);
    }
  }
  await expectRef('argmax all ties', T.argmax(t32(new Float32Array(5).fill(2), [5]), 0), { shape: [], data: [0] }, EXACT);

  const c = rnd(s, -1, 1);
  const C = t32(c, s);
  const cums = (v: number[]): number[] => {
    let a = 0;
    return v.map((u) => (a += u));
  };
  const rcums = (v: number[]): number[] => cums([...v].reverse()).reverse();
  for (const axis of [0, 1, -1]) {
    await expectRef(`cumsum axis ${axis}`, T.cumsum(C, axis), refLanes(c, s, axis, cums));
    await expectRef(`cumsum reverse axis ${axis}`, T.cumsum(C, axis, true), refLanes(c, s, axis, rcums));
  }
  await expectRef('cumsum int64', T.cumsum(T.tensor([1, 2, 3, 4], [4], 'int64'), 0), { shape: [4], data: [1, 3, 6, 10] }, EXACT);
  const p = rnd(s, 0.5, 1.5);
  const cumprod = (v: number[]): number[] => {
    let a = 1;
    return v.map((u) => (a *= u));
  };
  for (const axis of [0, 1, -1]) await expectRef(`cumprod axis ${axis}`, T.cumprod(t32(p, s), axis), refLanes(p, s, axis, cumprod));
});

// ---------------------------------------------------------------- linear algebra

function refMatmul(a: Arr, as: readonly number[], b: Arr, bs: readonly number[]): Ref {
  const A = as.length === 1 ? [1, as[0]!] : [...as];
  const B = bs.length === 1 ? [bs[0]!, 1] : [...bs];
  const M = A[A.length - 2]!;
  const K = A[A.length - 1]!;
  const N = B[B.length - 1]!;
  assert.equal(B[B.length - 2], K);
  const ab = A.slice(0, -2);
  const bb = B.slice(0, -2);
  const batch = bcastShape(ab, bb);
  const data: number[] = [];
  for (let bi = 0; bi < prod(batch); bi++) {
    const idx = unravel(bi, batch);
    const offA = ravel(idx.slice(idx.length - ab.length).map((v, d) => (ab[d] === 1 ? 0 : v)), ab) * M * K;
    const offB = ravel(idx.slice(idx.length - bb.length).map((v, d) => (bb[d] === 1 ? 0 : v)), bb) * K * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += a[offA + i * K + k]! * b[offB + k * N + j]!;
        data.push(acc);
      }
    }
  }
  const shape = [...batch];
  if (as.length !== 1) shape.push(M);
  if (bs.length !== 1) shape.push(N);
  return { shape, data };
}

test('matmul (1-d operands, batch broadcasting) and linear', async () => {
  const rnd = gen(7);
  const cases: Array<[number[], number[]]> = [
    [[3], [3]],
    [[3], [3, 4]],
    [[2, 3], [3]],
    [[2, 3, 4], [4]],
    [[4], [2, 4, 5]],
    [[2, 3], [3, 5]],
    [[2, 1, 3, 4], [5, 4, 2]],
    [[3, 4], [2, 4, 5]],
    [[2, 3, 4], [1, 4, 6]],
  ];
  for (const [sa, sb] of cases) {
    const a = rnd(sa);
    const b = rnd(sb);
    await expectRef(`matmul ${JSON.stringify(sa)} @ ${JSON.stringify(sb)}`, T.matmul(t32(a, sa), t32(b, sb)), refMatmul(a, sa, b, sb), SUM_TOL);
  }
  const x = rnd([2, 3, 4]);
  const w = rnd([5, 4]);
  const b = rnd([5]);
  const wt = Array.from({ length: 20 }, (_, i) => w[(i % 5) * 4 + Math.floor(i / 5)]!); // W^T as [4, 5]
  const xw = refMatmul(x, [2, 3, 4], wt, [4, 5]);
  await expectRef('linear no bias', T.linear(t32(x, [2, 3, 4]), t32(w, [5, 4])), xw, SUM_TOL);
  await expectRef('linear bias', T.linear(t32(x, [2, 3, 4]), t32(w, [5, 4]), t32(b, [5])), refMap([xw.shape, [5]], [xw.data, b], (u, v) => u + v), SUM_TOL);
  await expectRef('linear 1-d input', T.linear(t32(x.slice(0, 4), [4]), t32(w, [5, 4]), t32(b, [5])), refMap([[5], [5]], [refMatmul(x.slice(0, 4), [4], wt, [4, 5]).data, b], (u, v) => u + v), SUM_TOL);
  // float64 matmul is exact to double precision
  const a64 = Float64Array.from(rnd([3, 4]));
  const b64 = Float64Array.from(rnd([4, 2]));
  await expectRef('matmul float64', T.matmul(T.tensor(a64, [3, 4], 'float64'), T.tensor(b64, [4, 2], 'float64')), refMatmul(a64, [3, 4], b64, [4, 2]), { atol: 1e-12, rtol: 1e-12 });
});

// ---------------------------------------------------------------- convolution and pooling

function refConv(
  x: Arr, xs: readonly number[], w: Arr, ws: readonly number[], b: Arr | null,
  stride: number[], padB: number[], padE: number[], dil: number[], groups: number,
): Ref {
  const [N, C] = xs as [number, number];
  const [O, Cg] = ws as [number, number];
  assert.equal(Cg * groups, C);
  const sp = xs.slice(2);
  const ks = ws.slice(2);
  const os = sp.map((n, i) => Math.floor((n + padB[i]! + padE[i]! - dil[i]! * (ks[i]! - 1) - 1) / stride[i]!) + 1);
  const shape = [N, O, ...os];
  const data = new Array<number>(prod(shape)).fill(0);
  const Og = O / groups;
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / Og);
      for (let op = 0; op < prod(os); op++) {
        const opos = unravel(op, os);
        let acc = b ? b[o]! : 0;
        for (let ci = 0; ci < Cg; ci++) {
          for (let kp = 0; kp < prod(ks); kp++) {
            const kpos = unravel(kp, ks);
            const ipos = opos.map((p, i) => p * stride[i]! - padB[i]! + kpos[i]! * dil[i]!);
            if (ipos.some((p, i) => p < 0 || p >= sp[i]!)) continue;
            acc += x[ravel([n, g * Cg + ci, ...ipos], xs)]! * w[ravel([o, ci, ...kpos], ws)]!;
          }
        }
        data[ravel([n, o, ...opos], shape)] = acc;
      }
    }
  }
  return { shape, data };
}

/** Transposed convolution by scattering each input element (the adjoint of refConv). */
function refConvTranspose(
  x: Arr, xs: readonly number[], w: Arr, ws: readonly number[], b: Arr | null,
  stride: number[], pad: number[], outPad: number[], dil: number[], groups: number,
): Ref {
  const [N, C] = xs as [number, number];
  const Og = ws[1]!;
  const O = Og * groups;
  const Cg = C / groups;
  const sp = xs.slice(2);
  const ks = ws.slice(2);
  const os = sp.map((n, i) => (n - 1) * stride[i]! - 2 * pad[i]! + dil[i]! * (ks[i]! - 1) + outPad[i]! + 1);
  const shape = [N, O, ...os];
  const data = new Array<number>(prod(shape)).fill(0);
  if (b) for (let i = 0; i < data.length; i++) data[i] = b[unravel(i, shape)[1]!]!;
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const g = Math.floor(c / Cg);
      for (let ip = 0; ip < prod(sp); ip++) {
        const ipos = unravel(ip, sp);
        const xv = x[ravel([n, c, ...ipos], xs)]!;
        for (let oc = 0; oc < Og; oc++) {
          for (let kp = 0; kp < prod(ks); kp++) {
            const kpos = unravel(kp, ks);
            const opos = ipos.map((p, i) => p * stride[i]! - pad[i]! + kpos[i]! * dil[i]!);
            if (opos.some((p, i) => p < 0 || p >= os[i]!)) continue;
            data[ravel([n, g * Og + oc, ...opos], shape)]! += xv * w[ravel([c, oc, ...kpos], ws)]!;
          }
        }
      }
    }
  }
  return { shape, data };
}

function refAvgPool(x: Arr, xs: readonly number[], k: number[], stride: number[], pad: number[], countIncludePad: boolean): Ref {
  const [N, C] = xs as [number, number];
  const sp = xs.slice(2);
  const os = sp.map((n, i) => Math.floor((n + 2 * pad[i]! - k[i]!) / stride[i]!) + 1);
  const shape = [N, C, ...os];
  const data = new Array<number>(prod(shape));
  for (let i = 0; i < data.length; i++) {
    const [n, c, ...opos] = unravel(i, shape) as [number, number, ...number[]];
    let acc = 0;
    let count = 0;
    for (let kp = 0; kp < prod(k); kp++) {
      const kpos = unravel(kp, k);
      const ipos = opos.map((p, d) => p * stride[d]! - pad[d]! + kpos[d]!);
      if (ipos.some((p, d) => p < 0 || p >= sp[d]!)) continue;
      acc += x[ravel([n, c, ...ipos], xs)]!;
      count++;
    }
    data[i] = acc / (countIncludePad ? prod(k) : count);
  }
  return { shape, data };
}

const fill = (nd: number, v: number | number[]): number[] => (typeof v === 'number' ? new Array<number>(nd).fill(v) : v);

test('conv 1d/2d/3d: stride, padding, dilation, groups, bias', async () => {
  const rnd = gen(8);
  interface Case {
    x: number[];
    w: number[];
    bias: boolean;
    stride?: number | number[];
    padding?: number | number[];
    dilation?: number | number[];
    groups?: number;
  }
  const cases: Case[] = [
    { x: [2, 4, 11], w: [6, 2, 3], bias: true, stride: 2, padding: 1, dilation: 2, groups: 2 },
    { x: [1, 2, 6], w: [3, 2, 2], bias: false, padding: 3 },
    { x: [1, 3, 7, 8], w: [4, 3, 3, 2], bias: true, stride: [2, 1], padding: [1, 0] },
    { x: [2, 3, 6, 5], w: [2, 3, 3, 3], bias: true, padding: [1, 0, 2, 1] }, // [h_begin, w_begin, h_end, w_end]
    { x: [2, 4, 6, 6], w: [8, 1, 3, 3], bias: true, padding: 1, groups: 4 }, // depthwise x2
    { x: [1, 4, 9, 7], w: [6, 2, 3, 2], bias: false, stride: [3, 2], padding: [2, 1], dilation: [2, 3], groups: 2 },
    { x: [1, 2, 5, 6, 4], w: [3, 2, 3, 3, 2], bias: true, stride: [1, 2, 1], padding: [1, 1, 0], dilation: [2, 1, 1] },
    { x: [2, 2, 4, 4, 4], w: [4, 1, 2, 2, 2], bias: false, stride: 2, groups: 2 },
  ];
  for (const cs of cases) {
    const nd = cs.x.length - 2;
    const x = rnd(cs.x);
    const w = rnd(cs.w);
    const b = cs.bias ? rnd([cs.w[0]!]) : null;
    const stride = fill(nd, cs.stride ?? 1);
    const dil = fill(nd, cs.dilation ?? 1);
    const p = fill(nd, cs.padding ?? 0);
    const padB = p.length === 2 * nd ? p.slice(0, nd) : p;
    const padE = p.length === 2 * nd ? p.slice(nd) : p;
    const y = T.conv(t32(x, cs.x), t32(w, cs.w), b ? t32(b, [cs.w[0]!]) : null, {
      stride: cs.stride,
      padding: cs.padding,
      dilation: cs.dilation,
      groups: cs.groups,
    });
    await expectRef(`conv ${JSON.stringify(cs)}`, y, refConv(x, cs.x, w, cs.w, b, stride, padB, padE, dil, cs.groups ?? 1), SUM_TOL);
  }
});

test('conv_transpose: stride, padding, output_padding, dilation, groups', async () => {
  const rnd = gen(9);
  interface Case {
    x: number[];
    w: number[];
    bias: boolean;
    stride?: number | number[];
    padding?: number | number[];
    outputPadding?: number | number[];
    dilation?: number | number[];
    groups?: number;
  }
  const cases: Case[] = [
    { x: [2, 4, 5], w: [4, 3, 3], bias: true, stride: 2, padding: 1, outputPadding: 1, groups: 2 },
    { x: [1, 2, 4], w: [2, 2, 3], bias: false, dilation: 2, stride: 3, outputPadding: 2 },
    { x: [1, 3, 4, 5], w: [3, 2, 3, 3], bias: true, stride: [2, 3], padding: [1, 0], outputPadding: [1, 2], dilation: [1, 2] },
    { x: [2, 2, 3, 3], w: [2, 3, 4, 4], bias: true, stride: 2, padding: 1 }, // the usual 2x upsampler
    { x: [1, 4, 3, 4], w: [4, 1, 3, 3], bias: false, stride: 2, padding: 1, outputPadding: 1, groups: 4 },
    { x: [1, 2, 3, 3, 2], w: [2, 2, 3, 3, 3], bias: true, stride: 2, padding: 1, outputPadding: [1, 0, 1] },
  ];
  for (const cs of cases) {
    const nd = cs.x.length - 2;
    const groups = cs.groups ?? 1;
    const x = rnd(cs.x);
    const w = rnd(cs.w);
    const o = cs.w[1]! * groups;
    const b = cs.bias ? rnd([o]) : null;
    const y = T.convTranspose(t32(x, cs.x), t32(w, cs.w), b ? t32(b, [o]) : null, {
      stride: cs.stride,
      padding: cs.padding,
      outputPadding: cs.outputPadding,
      dilation: cs.dilation,
      groups: cs.groups,
    });
    const ref = refConvTranspose(x, cs.x, w, cs.w, b, fill(nd, cs.stride ?? 1), fill(nd, cs.padding ?? 0), fill(nd, cs.outputPadding ?? 0), fill(nd, cs.dilation ?? 1), groups);
    await expectRef(`conv_transpose ${JSON.stringify(cs)}`, y, ref, SUM_TOL);
  }
});

test('avg_pool 1d/2d/3d with stride, padding, count_include_pad', async () => {
  const rnd = gen(10);
  const cases: Array<{ x: number[]; k: number | number[]; stride?: number | number[]; padding?: number | number[] }> = [
    { x: [2, 3, 9], k: 3, stride: 2, padding: 1 },
    { x: [1, 2, 8], k: 4, padding: 2 },
    { x: [1, 2, 7, 6], k: [3, 2], stride: [2, 2], padding: [1, 1] },
    { x: [2, 3, 6, 6], k: 2 }, // stride defaults to the kernel
    { x: [1, 1, 5, 5], k: 3, stride: 1, padding: 1 },
    { x: [1, 2, 5, 4, 6], k: [3, 2, 3], stride: [2, 1, 2], padding: [1, 0, 1] },
    { x: [1, 1, 4, 4, 4], k: 2 },
  ];
  for (const cs of cases) {
    const nd = cs.x.length - 2;
    const x = rnd(cs.x);
    const k = fill(nd, cs.k);
    const stride = cs.stride === undefined ? k : fill(nd, cs.stride);
    const pad = fill(nd, cs.padding ?? 0);
    for (const countIncludePad of [true, false]) {
      const y = T.avgPool(t32(x, cs.x), cs.k, { stride: cs.stride, padding: cs.padding, countIncludePad });
      await expectRef(`avg_pool ${JSON.stringify(cs)} cip=${countIncludePad}`, y, refAvgPool(x, cs.x, k, stride, pad, countIncludePad));
    }
  }
  // Default count_include_pad is true.
  const x = rnd([1, 1, 4]);
  await expectRef('avg_pool default cip', T.avgPool(t32(x, [1, 1, 4]), 3, { stride: 1, padding: 1 }), refAvgPool(x, [1, 1, 4], [3], [1], [1], true));
});

// ---------------------------------------------------------------- normalisation, softmax, attention

function refGroupNorm(x: Arr, xs: readonly number[], groups: number, w: Arr | null, b: Arr | null, eps: number): Ref {
  const [N, C] = xs as [number, number];
  const S = prod(xs.slice(2));
  const cpg = C / groups;
  const data = new Array<number>(prod(xs));
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < groups; g++) {
      const idx: number[] = [];
      for (let c = g * cpg; c < (g + 1) * cpg; c++) for (let s = 0; s < S; s++) idx.push((n * C + c) * S + s);
      const m = idx.reduce((a, i) => a + x[i]!, 0) / idx.length;
      const v = idx.reduce((a, i) => a + (x[i]! - m) ** 2, 0) / idx.length;
      for (const i of idx) {
        const c = Math.floor(i / S) % C;
        data[i] = ((x[i]! - m) / Math.sqrt(v + eps)) * (w ? w[c]! : 1) + (b ? b[c]! : 0);
      }
    }
  }
  return { shape: [...xs], data };
}

function refLayerNorm(x: Arr, xs: readonly number[], k: number, w: Arr | null, b: Arr | null, eps: number): Ref {
  const inner = prod(xs.slice(xs.length - k));
  const data = new Array<number>(prod(xs));
  for (let o = 0; o < prod(xs) / inner; o++) {
    let m = 0;
    for (let j = 0; j < inner; j++) m += x[o * inner + j]!;
    m /= inner;
    let v = 0;
    for (let j = 0; j < inner; j++) v += (x[o * inner + j]! - m) ** 2;
    v /= inner;
    for (let j = 0; j < inner; j++) data[o * inner + j] = ((x[o * inner + j]! - m) / Math.sqrt(v + eps)) * (w ? w[j]! : 1) + (b ? b[j]! : 0);
  }
  return { shape: [...xs], data };
}

test('group_norm matches torch: per-(sample, group) stats, per-channel affine', async () => {
  const rnd = gen(11);
  const cases: Array<{ x: number[]; groups: number; affine: boolean; eps?: number; offset?: number }> = [
    { x: [2, 6, 3, 4], groups: 3, affine: true },
    { x: [2, 6, 3, 4], groups: 1, affine: true },
    { x: [2, 6, 3, 4], groups: 6, affine: true, eps: 1e-3 },
    { x: [2, 8, 5], groups: 2, affine: true, offset: 3 },
    { x: [3, 4, 2, 2, 3], groups: 2, affine: false },
    { x: [2, 4], groups: 2, affine: true },
  ];
  for (const cs of cases) {
    const c = cs.x[1]!;
    const x = rnd(cs.x, -2, 2).map((v) => v + (cs.offset ?? 0));
    // Distinct per-channel weights (a per-group affine, as in GroupNormalization-18, would differ).
    const w = cs.affine ? Float32Array.from(range(c), (i) => 0.5 + 0.25 * i) : null;
    const b = cs.affine ? Float32Array.from(range(c), (i) => 0.1 * i - 0.3) : null;
    const y = T.groupNorm(t32(x, cs.x), cs.groups, w ? t32(w, [c]) : null, b ? t32(b, [c]) : null, cs.eps);
    await expectRef(`group_norm ${JSON.stringify(cs)}`, y, refGroupNorm(x, cs.x, cs.groups, w, b, cs.eps ?? 1e-5), { atol: 2e-5, rtol: 2e-5 });
  }
});

test('group_norm keeps float32 accuracy on large groups whose mean is far from zero', async () => {
  // Statistics from the deviations (x - mean), not E[x^2] - E[x]^2, which cancels: with a group
  // mean of 3..20 standard deviations the latter loses most of the variance's digits.
  const rnd = gen(21);
  const cases: Array<{ x: number[]; groups: number; offset: number }> = [
    { x: [2, 32, 32, 32], groups: 8, offset: 3 },
    { x: [1, 12, 4096], groups: 3, offset: 20 },
  ];
  for (const cs of cases) {
    const c = cs.x[1]!;
    const m = prod(cs.x) / cs.x[0]! / cs.groups;
    const x = rnd(cs.x, -1, 1).map((v, i) => v + cs.offset * (1 + (Math.floor(i / m) % 3)));
    const w = Float32Array.from(range(c), (i) => 0.5 + 0.05 * i);
    const b = Float32Array.from(range(c), (i) => 0.02 * i - 0.3);
    const y = T.groupNorm(t32(x, cs.x), cs.groups, t32(w, [c]), t32(b, [c]), 1e-6);
    await expectRef(`group_norm ${JSON.stringify(cs)}`, y, refGroupNorm(x, cs.x, cs.groups, w, b, 1e-6), { atol: 5e-5, rtol: 2e-5 });
  }
});

test('layer_norm over 1 and 2 trailing dims', async () => {
  const rnd = gen(12);
  const s = [2, 3, 8];
  const x = rnd(s, -2, 2).map((v, i) => v + (i % 3));
  const w1 = rnd([8], 0.5, 1.5);
  const b1 = rnd([8]);
  const w2 = rnd([3, 8], 0.5, 1.5);
  const b2 = rnd([3, 8]);
  const tol = { atol: 2e-5, rtol: 2e-5 };
  await expectRef('layer_norm [8]', T.layerNorm(t32(x, s), [8], t32(w1, [8]), t32(b1, [8])), refLayerNorm(x, s, 1, w1, b1, 1e-5), tol);
  await expectRef('layer_norm [8] no affine', T.layerNorm(t32(x, s), [8]), refLayerNorm(x, s, 1, null, null, 1e-5), tol);
  await expectRef('layer_norm [3, 8]', T.layerNorm(t32(x, s), [3, 8], t32(w2, [3, 8]), t32(b2, [3, 8]), 1e-6), refLayerNorm(x, s, 2, w2, b2, 1e-6), tol);
  await expectRef('layer_norm [3, 8] eps 0.1', T.layerNorm(t32(x, s), [3, 8], null, null, 0.1), refLayerNorm(x, s, 2, null, null, 0.1), tol);
});

test('softmax and log_softmax on several axes', async () => {
  const rnd = gen(13);
  const s = [2, 3, 5];
  const x = rnd(s, -5, 5);
  const X = t32(x, s);
  const sm = (v: number[]): number[] => {
    const m = Math.max(...v);
    const e = v.map((u) => Math.exp(u - m));
    const z = e.reduce((a, b) => a + b, 0);
    return e.map((u) => u / z);
  };
  const lsm = (v: number[]): number[] => {
    const m = Math.max(...v);
    const lz = m + Math.log(v.reduce((a, u) => a + Math.exp(u - m), 0));
    return v.map((u) => u - lz);
  };
  for (const axis of [0, 1, 2, -1, -2]) {
    await expectRef(`softmax axis ${axis}`, T.softmax(X, axis), refLanes(x, s, axis, sm));
    await expectRef(`log_softmax axis ${axis}`, T.logSoftmax(X, axis), refLanes(x, s, axis, lsm));
  }
  await expectRef('softmax default axis', T.softmax(X), refLanes(x, s, -1, sm));
  // Large logits stay finite.
  const big = Float32Array.from([1000, 1001, 999, -1000]);
  await expectRef('softmax large', T.softmax(t32(big, [4])), { shape: [4], data: sm(Array.from(big)) });
  await expectRef('log_softmax large', T.logSoftmax(t32(big, [4])), { shape: [4], data: lsm(Array.from(big)) }, { atol: 1e-4, rtol: 1e-6 });
});

function refAttention(
  q: Arr, qs: readonly number[], k: Arr, ks: readonly number[], v: Arr, vs: readonly number[],
  mask: { data: Arr; shape: readonly number[]; bool: boolean } | null, scale: number,
): Ref {
  const batch = qs.slice(0, -2);
  const [Lq, D] = qs.slice(-2) as [number, number];
  const Lk = ks[ks.length - 2]!;
  const Dv = vs[vs.length - 1]!;
  const data: number[] = [];
  for (let bi = 0; bi < prod(batch); bi++) {
    const bidx = unravel(bi, batch);
    for (let i = 0; i < Lq; i++) {
      const s: number[] = [];
      for (let j = 0; j < Lk; j++) {
        let acc = 0;
        for (let d = 0; d < D; d++) acc += q[(bi * Lq + i) * D + d]! * k[(bi * Lk + j) * D + d]!;
        acc *= scale;
        if (mask) {
          const m = bcastAt(mask.data, mask.shape, [...bidx, i, j]);
          acc = mask.bool ? (m ? acc : -Infinity) : acc + m;
        }
        s.push(acc);
      }
      const mx = Math.max(...s);
      const e = s.map((u) => Math.exp(u - mx));
      const z = e.reduce((a, b) => a + b, 0);
      for (let d = 0; d < Dv; d++) {
        let acc = 0;
        for (let j = 0; j < Lk; j++) acc += (e[j]! / z) * v[(bi * Lk + j) * Dv + d]!;
        data.push(acc);
      }
    }
  }
  return { shape: [...batch, Lq, Dv], data };
}

test('scaled_dot_product_attention: scale, bool and float masks, 4-d batch', async () => {
  const rnd = gen(14);
  const qs = [2, 4, 8];
  const ks = [2, 6, 8];
  const vs = [2, 6, 5];
  const q = rnd(qs, -2, 2);
  const k = rnd(ks, -2, 2);
  const v = rnd(vs);
  const Q = t32(q, qs);
  const K = t32(k, ks);
  const V = t32(v, vs);
  await expectRef('sdpa default scale', T.scaledDotProductAttention(Q, K, V), refAttention(q, qs, k, ks, v, vs, null, 1 / Math.sqrt(8)), SUM_TOL);
  await expectRef('sdpa scale 0.3', T.scaledDotProductAttention(Q, K, V, { scale: 0.3 }), refAttention(q, qs, k, ks, v, vs, null, 0.3), SUM_TOL);
  // bool mask [Lq, Lk], true = attend; every row keeps at least column 0.
  const bm = Uint8Array.from(range(24), (i) => (i % 6 === 0 || rnd([1])[0]! > 0 ? 1 : 0));
  await expectRef(
    'sdpa bool mask',
    T.scaledDotProductAttention(Q, K, V, { mask: T.tensor(bm, [4, 6], 'bool') }),
    refAttention(q, qs, k, ks, v, vs, { data: bm, shape: [4, 6], bool: true }, 1 / Math.sqrt(8)),
    SUM_TOL,
  );
  // additive float mask [B, 1, Lk]
  const fm = rnd([2, 1, 6], -3, 1);
  await expectRef(
    'sdpa float mask',
    T.scaledDotProductAttention(Q, K, V, { mask: t32(fm, [2, 1, 6]), scale: 0.5 }),
    refAttention(q, qs, k, ks, v, vs, { data: fm, shape: [2, 1, 6], bool: false }, 0.5),
    SUM_TOL,
  );
  // 4-d (B, H, L, D) with a per-batch bool mask broadcast over heads.
  const q4s = [2, 3, 4, 8];
  const k4s = [2, 3, 5, 8];
  const v4s = [2, 3, 5, 8];
  const q4 = rnd(q4s);
  const k4 = rnd(k4s);
  const v4 = rnd(v4s);
  const m4 = Uint8Array.from(range(40), (i) => (i % 5 === 4 || rnd([1])[0]! > -0.3 ? 1 : 0));
  await expectRef(
    'sdpa 4-d',
    T.scaledDotProductAttention(t32(q4, q4s), t32(k4, k4s), t32(v4, v4s)),
    refAttention(q4, q4s, k4, k4s, v4, v4s, null, 1 / Math.sqrt(8)),
    SUM_TOL,
  );
  await expectRef(
    'sdpa 4-d bool mask',
    T.scaledDotProductAttention(t32(q4, q4s), t32(k4, k4s), t32(v4, v4s), { mask: T.tensor(m4, [2, 1, 4, 5], 'bool') }),
    refAttention(q4, q4s, k4, k4s, v4, v4s, { data: m4, shape: [2, 1, 4, 5], bool: true }, 1 / Math.sqrt(8)),
    SUM_TOL,
  );
});

// ---------------------------------------------------------------- shape manipulation

function refPermute(x: Arr, xs: readonly number[], perm: readonly number[]): Ref {
  const shape = perm.map((p) => xs[p]!);
  const data = new Array<number>(prod(shape));
  for (let i = 0; i < data.length; i++) {
    const oi = unravel(i, shape);
    const ii = new Array<number>(xs.length);
    perm.forEach((p, d) => (ii[p] = oi[d]!));
    data[i] = x[ravel(ii, xs)]!;
  }
  return { shape, data };
}

test('reshape, flatten, squeeze, unsqueeze, permute, transpose, expand', async () => {
  const rnd = gen(15);
  const s = [2, 3, 4, 5];
  const x = rnd(s);
  const X = t32(x, s);
  const same = (shape: number[]): Ref => ({ shape, data: Array.from(x) });
  await expectRef('reshape -1', T.reshape(X, [4, -1, 5]), same([4, 6, 5]), EXACT);
  await expectRef('reshape -1 last', T.reshape(X, [6, -1]), same([6, 20]), EXACT);
  await expectRef('flatten', T.flatten(X), same([120]), EXACT);
  await expectRef('flatten 1', T.flatten(X, 1), same([2, 60]), EXACT);
  await expectRef('flatten 1..2', T.flatten(X, 1, 2), same([2, 12, 5]), EXACT);
  await expectRef('flatten -2', T.flatten(X, -2), same([2, 3, 20]), EXACT);
  await expectRef('reshape to scalar', T.reshape(t32(Float32Array.of(4.5), [1, 1]), []), { shape: [], data: [4.5] }, EXACT);
  const u = rnd([1, 3, 1, 2]);
  const U = t32(u, [1, 3, 1, 2]);
  await expectRef('squeeze all', T.squeeze(U), { shape: [3, 2], data: Array.from(u) }, EXACT);
  await expectRef('squeeze 0', T.squeeze(U, 0), { shape: [3, 1, 2], data: Array.from(u) }, EXACT);
  await expectRef('squeeze -2', T.squeeze(U, [-2]), { shape: [1, 3, 2], data: Array.from(u) }, EXACT);
  // torch: squeezing a dim whose size is not 1 leaves it alone.
  await expectRef('squeeze non-1 dim', T.squeeze(U, 1), { shape: [1, 3, 1, 2], data: Array.from(u) }, EXACT);
  await expectRef('unsqueeze 0', T.unsqueeze(U, 0), { shape: [1, 1, 3, 1, 2], data: Array.from(u) }, EXACT);
  await expectRef('unsqueeze -1', T.unsqueeze(U, -1), { shape: [1, 3, 1, 2, 1], data: Array.from(u) }, EXACT);
  await expectRef('unsqueeze 2', T.unsqueeze(U, 2), { shape: [1, 3, 1, 1, 2], data: Array.from(u) }, EXACT);

  for (const perm of [[2, 0, 3, 1], [3, 2, 1, 0], [0, 1, 3, 2], [-1, 0, 1, 2]]) {
    const p = perm.map((a) => (a < 0 ? a + 4 : a));
    await expectRef(`permute ${JSON.stringify(perm)}`, T.permute(X, perm), refPermute(x, s, p), EXACT);
  }
  await expectRef('transpose 1 -1', T.transpose(X, 1, -1), refPermute(x, s, [0, 3, 2, 1]), EXACT);
  await expectRef('transpose 0 2', T.transpose(X, 0, 2), refPermute(x, s, [2, 1, 0, 3]), EXACT);

  const e = rnd([3, 1]);
  const E = t32(e, [3, 1]);
  await expectRef('expand', T.expand(E, [2, 3, 4]), refMap([[3, 1], [2, 3, 4]], [e, new Float32Array(24)], (a) => a), EXACT);
  await expectRef('expand -1', T.expand(E, [2, -1, 5]), refMap([[3, 1], [2, 3, 5]], [e, new Float32Array(30)], (a) => a), EXACT);
  await expectRef('expand int64', T.expand(T.tensor([7, 8], [2, 1], 'int64'), [2, 3]), { shape: [2, 3], data: [7, 7, 7, 8, 8, 8] }, EXACT);
  // Expands that repeat elements in place (emitted as a nearest Resize) and other broadcasts.
  const expandCases: Array<[number[], number[]]> = [
    [[2, 3, 4, 1, 5, 1], [2, 3, 4, 2, 5, 2]],
    [[2, 1, 3, 1], [2, 4, 3, 2]],
    [[2, 3, 1, 1], [2, 3, 2, 3]],
    [[1, 2, 1, 3, 1, 2, 1], [1, 2, 2, 3, 3, 2, 2]],
    [[4, 1], [2, 4, 3]],
    [[5, 1, 1], [5, 1, 3]],
    [[2, 1, 2, 1, 2, 1, 2, 1], [2, 2, 2, 2, 2, 2, 2, 2]],
    [[3, 1], [3, 40]],
  ];
  for (const [from, to] of expandCases) {
    const v = rnd(from);
    await expectRef(`expand ${JSON.stringify(from)} -> ${JSON.stringify(to)}`, T.expand(t32(v, from), to), refMap([from, to], [v, new Float32Array(prod(to))], (a) => a), EXACT);
  }
});

test('slice: Python semantics incl. negative steps and negative indices; flip; narrow', async () => {
  const rnd = gen(16);
  const n = 10;
  const v = rnd([n]);
  const arr = Array.from(v);
  const specs: Array<[number | undefined, number | undefined, number]> = [
    [2, 8, 1],
    [undefined, undefined, 1],
    [-3, undefined, 1],
    [-8, -2, 1],
    [1, 9, 3],
    [undefined, undefined, 2],
    [-8, -2, 2],
    [-100, 100, 3],
    [8, 2, -1],
    [undefined, undefined, -1],
    [-2, undefined, -3],
    [7, -9, -2],
    [100, -100, -4],
    [undefined, 3, -2],
    [3, undefined, -1],
    [5, 2, 1], // empty
    [2, 5, -1], // empty
  ];
  for (const [s0, e0, st] of specs) {
    const idx = pySlice(n, s0, e0, st);
    const label = `[${s0 ?? ''}:${e0 ?? ''}:${st}]`;
    // step 1 cross-checks the reference against Array.prototype.slice (same index rules).
    if (st === 1) assert.deepEqual(idx.map((i) => arr[i]), arr.slice(s0, e0), `reference ${label}`);
    await expectRef(`slice 1-d ${label}`, T.slice(t32(v, [n]), 0, s0, e0, st), { shape: [idx.length], data: idx.map((i) => arr[i]!) }, EXACT);
    const m = rnd([3, n]);
    await expectRef(`slice axis 1 ${label}`, T.slice(t32(m, [3, n]), 1, s0, e0, st), refTake(m, [3, n], 1, idx), EXACT);
    const m2 = rnd([n, 2]);
    await expectRef(`slice axis -2 ${label}`, T.slice(t32(m2, [n, 2]), -2, s0, e0, st), refTake(m2, [n, 2], 0, idx), EXACT);
  }

  const s = [2, 3, 4];
  const x = rnd(s);
  const X = t32(x, s);
  await expectRef('flip [0, 2]', T.flip(X, [0, 2]), refTake(refTake(x, s, 0, [1, 0]).data, s, 2, [3, 2, 1, 0]), EXACT);
  await expectRef('flip [1]', T.flip(X, [1]), refTake(x, s, 1, [2, 1, 0]), EXACT);
  await expectRef('flip [-1]', T.flip(X, [-1]), refTake(x, s, 2, [3, 2, 1, 0]), EXACT);
  await expectRef('flip all', T.flip(X, [0, 1, 2]), { shape: s, data: Array.from(x).reverse() }, EXACT);

  await expectRef('narrow', T.narrow(X, 2, 1, 2), refTake(x, s, 2, [1, 2]), EXACT);
  await expectRef('narrow axis -2', T.narrow(X, -2, 0, 2), refTake(x, s, 1, [0, 1]), EXACT);
  await expectRef('narrow negative start', T.narrow(X, 2, -3, 2), refTake(x, s, 2, [1, 2]), EXACT);
  await expectRef('narrow negative start to end', T.narrow(X, 2, -2, 2), refTake(x, s, 2, [2, 3]), EXACT);
  assertShapeError(() => T.narrow(X, 2, 3, 2), /narrow/);
});

test('concat, stack, split, chunk', async () => {
  const rnd = gen(17);
  const a = rnd([2, 3, 4]);
  const b = rnd([2, 1, 4]);
  const c = rnd([2, 2, 4]);
  const A = t32(a, [2, 3, 4]);
  const B = t32(b, [2, 1, 4]);
  const Cc = t32(c, [2, 2, 4]);
  // Reference: pick the source of each output position along axis 1.
  const cat = (parts: Array<[Arr, number[]]>, axis: number): Ref => {
    const shape = [...parts[0]![1]];
    shape[axis] = parts.reduce((p, [, sh]) => p + sh[axis]!, 0);
    const data = new Array<number>(prod(shape));
    for (let i = 0; i < data.length; i++) {
      const idx = unravel(i, shape);
      let j = idx[axis]!;
      let k = 0;
      while (j >= parts[k]![1][axis]!) j -= parts[k++]![1][axis]!;
      idx[axis] = j;
      data[i] = parts[k]![0][ravel(idx, parts[k]![1])]!;
    }
    return { shape, data };
  };
  await expectRef('concat axis 1', T.concat([A, B, Cc], 1), cat([[a, [2, 3, 4]], [b, [2, 1, 4]], [c, [2, 2, 4]]], 1), EXACT);
  await expectRef('concat axis -2', T.concat([B, A], -2), cat([[b, [2, 1, 4]], [a, [2, 3, 4]]], 1), EXACT);
  const d = rnd([2, 3, 2]);
  await expectRef('concat axis -1', T.concat([A, t32(d, [2, 3, 2])], -1), cat([[a, [2, 3, 4]], [d, [2, 3, 2]]], 2), EXACT);
  await expectRef('concat int64', T.concat([T.tensor([1, 2], [2], 'int64'), T.tensor([3], [1], 'int64')]), { shape: [3], data: [1, 2, 3] }, EXACT);

  const p = rnd([3, 4]);
  const q = rnd([3, 4]);
  const P = t32(p, [3, 4]);
  const Q = t32(q, [3, 4]);
  const st = (axis: number): Ref => cat([[p, [3, 4].toSpliced(axis, 0, 1)], [q, [3, 4].toSpliced(axis, 0, 1)]], axis);
  await expectRef('stack 0', T.stack([P, Q], 0), st(0), EXACT);
  await expectRef('stack 1', T.stack([P, Q], 1), st(1), EXACT);
  await expectRef('stack -1', T.stack([P, Q], -1), st(2), EXACT);

  const s = [2, 7, 3];
  const x = rnd(s);
  const X = t32(x, s);
  const checkParts = async (label: string, parts: Tensor[], sizes: number[], axis: number): Promise<void> => {
    assert.equal(parts.length, sizes.length, `${label}: ${parts.length} parts, expected ${sizes.length}`);
    let off = 0;
    for (let i = 0; i < sizes.length; i++) {
      await expectRef(`${label} part ${i}`, parts[i]!, refTake(x, s, axis, range(sizes[i]!).map((j) => off + j)), EXACT);
      off += sizes[i]!;
    }
  };
  await checkParts('split 3', T.split(X, 3, 1), [3, 3, 1], 1);
  await checkParts('split 7', T.split(X, 7, 1), [7], 1);
  await checkParts('split [2, 4, 1]', T.split(X, [2, 4, 1], 1), [2, 4, 1], 1);
  await checkParts('split 2 axis -1', T.split(X, 2, -1), [2, 1], 2);
  await checkParts('split [1, 1] axis 0', T.split(X, [1, 1], 0), [1, 1], 0);
  // torch.chunk: pieces of ceil(n / chunks); possibly fewer than `chunks` pieces.
  await checkParts('chunk 7/3', T.chunk(X, 3, 1), [3, 3, 1], 1);
  await checkParts('chunk 7/4', T.chunk(X, 4, 1), [2, 2, 2, 1], 1);
  await checkParts('chunk 7/5', T.chunk(X, 5, 1), [2, 2, 2, 1], 1);
  await checkParts('chunk 7/6', T.chunk(X, 6, 1), [2, 2, 2, 1], 1);
  await checkParts('chunk 7/7', T.chunk(X, 7, 1), [1, 1, 1, 1, 1, 1, 1], 1);
  await checkParts('chunk 3/2 axis -1', T.chunk(X, 2, -1), [2, 1], 2);
  await checkParts('chunk 2/4 axis 0', T.chunk(X, 4, 0), [1, 1], 0);
  const six = rnd([6]);
  const parts6 = T.chunk(t32(six, [6]), 4);
  assert.deepEqual(parts6.map((t) => t.shape[0]), [2, 2, 2], 'chunk 6/4 gives 3 pieces of 2');
  assertShapeError(() => T.split(X, [2, 2], 1), /split/);
});

function refPad(x: Arr, xs: readonly number[], pads: readonly number[], value: number): Ref {
  const before = xs.map(() => 0);
  const after = xs.map(() => 0);
  for (let i = 0; i < pads.length / 2; i++) {
    before[xs.length - 1 - i] = pads[2 * i]!;
    after[xs.length - 1 - i] = pads[2 * i + 1]!;
  }
  const shape = xs.map((n, d) => n + before[d]! + after[d]!);
  const data = new Array<number>(prod(shape));
  for (let i = 0; i < data.length; i++) {
    const src = unravel(i, shape).map((p, d) => p - before[d]!);
    data[i] = src.some((p, d) => p < 0 || p >= xs[d]!) ? value : x[ravel(src, xs)]!;
  }
  return { shape, data };
}

test('pad: F.pad convention, constant value, negative pads crop', async () => {
  const rnd = gen(18);
  const s = [2, 3, 4];
  const x = rnd(s);
  const X = t32(x, s);
  const cases: Array<[number[], number]> = [
    [[1, 2], 0],
    [[1, 0, 2, 1], 0],
    [[0, 0, 0, 0, 1, 1], 0.5],
    [[2, 1, 0, 3, 1, 0], -1.25],
    [[-1, 2, 1, -2], 0],
    [[-1, -1], 0],
    [[0, -2, -1, 0, 1, -1], 3],
    [[0, 0], 0],
  ];
  for (const [pads, value] of cases) {
    await expectRef(`pad ${JSON.stringify(pads)} value ${value}`, T.pad(X, pads, value), refPad(x, s, pads, value), EXACT);
  }
  await expectRef('pad int64', T.pad(T.tensor([1, 2], [1, 2], 'int64'), [1, 1, 1, 0], 9), { shape: [2, 4], data: [9, 9, 9, 9, 9, 1, 2, 9] }, EXACT);
});

test('gather, index_select, embedding, index_add', async () => {
  const rnd = gen(19);
  const s = [4, 5, 3];
  const x = rnd(s);
  const X = t32(x, s);
  // ONNX-Gather semantics: x.shape[:axis] + indices.shape + x.shape[axis+1:]; negative indices wrap.
  const refGather = (axis: number, idx: number[], idxShape: number[]): Ref => {
    const a = axis < 0 ? axis + s.length : axis;
    const n = s[a]!;
    const flat = refTake(x, s, a, idx.map((i) => (i < 0 ? i + n : i)));
    return { shape: [...s.slice(0, a), ...idxShape, ...s.slice(a + 1)], data: flat.data };
  };
  const i2 = [0, -1, 2, 4, -5, 3];
  await expectRef('gather axis 1, 2-d indices', T.gather(X, 1, T.tensor(i2, [3, 2], 'int64')), refGather(1, i2, [3, 2]), EXACT);
  const i1 = [3, -4, 0, 0, -1];
  await expectRef('gather axis 0, int32', T.gather(X, 0, T.tensor(Int32Array.from(i1), [5], 'int32')), refGather(0, i1, [5]), EXACT);
  const i3 = [2, 0, -1, 1, 1, -3, 0, 2];
  await expectRef('gather axis -1, 3-d indices', T.gather(X, -1, T.tensor(i3, [2, 2, 2], 'int64')), refGather(-1, i3, [2, 2, 2]), EXACT);
  await expectRef('gather scalar index', T.gather(X, 1, T.tensor([3], [], 'int64')), refGather(1, [3], []), EXACT);

  await expectRef('index_select axis 1', T.indexSelect(X, 1, T.tensor([4, 0, 0, 2], [4], 'int64')), refTake(x, s, 1, [4, 0, 0, 2]), EXACT);
  await expectRef('index_select axis 0', T.indexSelect(X, 0, T.tensor([2, 1], [2], 'int64')), refTake(x, s, 0, [2, 1]), EXACT);

  const w = rnd([10, 4]);
  const ids = [1, 3, 3, 9, 0, 2];
  await expectRef('embedding', T.embedding(t32(w, [10, 4]), T.tensor(ids, [2, 3], 'int64')), { shape: [2, 3, 4], data: refTake(w, [10, 4], 0, ids).data }, EXACT);

  // index_add: repeated indices accumulate.
  const refIndexAdd = (base: Arr, bs: number[], axis: number, idx: number[], idxShape: number[], src: Arr): Ref => {
    const data = Array.from(base);
    const srcShape = [...bs.slice(0, axis), ...idxShape, ...bs.slice(axis + 1)];
    const ni = idxShape.length;
    for (let i = 0; i < prod(srcShape); i++) {
      const si = unravel(i, srcShape);
      const k = ravel(si.slice(axis, axis + ni), idxShape);
      const t = idx[k]! < 0 ? idx[k]! + bs[axis]! : idx[k]!;
      data[ravel([...si.slice(0, axis), t, ...si.slice(axis + ni)], bs)]! += src[i]!;
    }
    return { shape: [...bs], data };
  };
  const base = rnd([5, 3]);
  const src = rnd([5, 3]);
  const ia = [0, 2, 2, 4, 0];
  await expectRef('index_add axis 0 repeats', T.indexAdd(t32(base, [5, 3]), 0, T.tensor(ia, [5], 'int64'), t32(src, [5, 3])), refIndexAdd(base, [5, 3], 0, ia, [5], src));
  const base3 = rnd([2, 4, 3]);
  const src3 = rnd([2, 3, 3]);
  const ib = [3, 3, 1];
  await expectRef('index_add axis 1 repeats', T.indexAdd(t32(base3, [2, 4, 3]), 1, T.tensor(ib, [3], 'int64'), t32(src3, [2, 3, 3])), refIndexAdd(base3, [2, 4, 3], 1, ib, [3], src3));
  const src4 = rnd([2, 2, 2, 3]);
  const ic = [0, -1, 3, 0];
  await expectRef(
    'index_add 2-d negative indices (gather VJP)',
    T.indexAdd(t32(base3, [2, 4, 3]), 1, T.tensor(ic, [2, 2], 'int64'), t32(src4, [2, 2, 2, 3])),
    refIndexAdd(base3, [2, 4, 3], 1, ic, [2, 2], src4),
  );
  const baseL = rnd([2, 3]);
  const srcL = rnd([2, 4]);
  const il = [2, 0, 2, 2];
  await expectRef('index_add last axis', T.indexAdd(t32(baseL, [2, 3]), -1, T.tensor(il, [4], 'int64'), t32(srcL, [2, 4])), refIndexAdd(baseL, [2, 3], 1, il, [4], srcL));
});

test('upsample_nearest', async () => {
  const rnd = gen(20);
  const cases: Array<[number[], number | number[]]> = [
    [[1, 2, 3], 2],
    [[2, 2, 2, 3], 2],
    [[1, 1, 2, 3], [2, 3]],
    [[1, 1, 2, 2, 2], [1, 2, 3]],
  ];
  for (const [s, f] of cases) {
    const x = rnd(s);
    const nd = s.length - 2;
    const fac = fill(nd, f);
    const shape = [s[0]!, s[1]!, ...s.slice(2).map((d, i) => d * fac[i]!)];
    const data = range(prod(shape)).map((i) => {
      const idx = unravel(i, shape);
      return x[ravel(idx.map((p, d) => (d < 2 ? p : Math.floor(p / fac[d - 2]!))), s)]!;
    });
    await expectRef(`upsample_nearest ${JSON.stringify(s)} x${JSON.stringify(f)}`, T.upsampleNearest(t32(x, s), f), { shape, data }, EXACT);
  }
});

// ---------------------------------------------------------------- creation and casts

test('arange, linspace, full/zeros/ones', async () => {
  const a = T.arange(5);
  assert.equal(a.dtype, 'int64');
  assert.ok((await a.data()) instanceof BigInt64Array);
  await expectRef('arange(5)', a, { shape: [5], data: [0, 1, 2, 3, 4] }, EXACT);
  await expectRef('arange(1, 10, 3)', T.arange(1, 10, 3), { shape: [3], data: [1, 4, 7] }, EXACT);
  await expectRef('arange(10, 1, -3)', T.arange(10, 1, -3), { shape: [3], data: [10, 7, 4] }, EXACT);
  await expectRef('arange(-2, 3)', T.arange(-2, 3), { shape: [5], data: [-2, -1, 0, 1, 2] }, EXACT);
  await expectRef('arange(3, 3)', T.arange(3, 3), { shape: [0], data: [] }, EXACT);
  // float: n = ceil((end - start) / step) in double, values start + i*step in double, then float32.
  for (const [s0, e0, st] of [[0, 1, 0.1], [-1, 1, 0.3], [0.5, 2.25, 0.25], [1, -1, -0.4]] as const) {
    const n = Math.ceil((e0 - s0) / st);
    const y = T.arange(s0, e0, st, 'float32');
    assert.equal(y.dtype, 'float32');
    await expectRef(`arange(${s0}, ${e0}, ${st}) float32`, y, { shape: [n], data: range(n).map((i) => Math.fround(s0 + i * st)) }, EXACT);
  }
  await expectRef('arange float64', T.arange(0, 1, 0.1, 'float64'), { shape: [10], data: range(10).map((i) => i * 0.1) }, EXACT);

  // linspace float32: torch's kernel with float arithmetic; step = (end - start) / (steps - 1) in float;
  // below 16 steps every element is the two-sided formula as one fused multiply-add (the build
  // contracts it; the framework fixtures' aux.ramp / aux.scale pin this, and the vector path of
  // 16+ steps, bit for bit).
  const f = Math.fround;
  const linRef = (start: number, end: number, steps: number): number[] => {
    if (steps === 1) return [f(start)];
    const s = f(start);
    const e = f(end);
    const step = f(f(e - s) / (steps - 1));
    const half = Math.floor(steps / 2);
    return range(steps).map((i) => (i < half ? fma32(step, i, s) : fma32(-step, steps - 1 - i, e)));
  };
  for (const [s0, e0, n] of [[0, 1, 5], [-1 / 3, 2.7, 10], [-1 / 3, 2.7, 7], [0.1, 0.7, 13], [1, 0, 10], [-5, 5, 2], [3.3, -7.1, 11], [0, 1, 1], [2, 3, 0]] as const) {
    const y = T.linspace(s0, e0, n);
    const ref = linRef(s0, e0, n);
    await expectRef(`linspace(${s0}, ${e0}, ${n})`, y, { shape: [n], data: ref }, EXACT);
    const d = await y.data();
    if (n >= 2) assert.equal(d[n - 1], f(e0), `linspace(${s0}, ${e0}, ${n}): last element is end`);
    if (n >= 1) assert.equal(d[0], f(s0), `linspace(${s0}, ${e0}, ${n}): first element is start`);
  }
  await expectRef('linspace float64', T.linspace(0, 1, 5, 'float64'), { shape: [5], data: [0, 0.25, 0.5, 0.75, 1] }, EXACT);

  await expectRef('full small', T.full([2, 3], 2.5), { shape: [2, 3], data: new Array<number>(6).fill(2.5) }, EXACT);
  await expectRef('full large (expand)', T.full([300, 7], -1.5), { shape: [300, 7], data: new Array<number>(2100).fill(-1.5) }, EXACT);
  await expectRef('full large int64', T.full([10, 10], 7, 'int64'), { shape: [10, 10], data: new Array<number>(100).fill(7) }, EXACT);
  await expectRef('zeros large', T.zeros([64, 65]), { shape: [64, 65], data: new Array<number>(64 * 65).fill(0) }, EXACT);
  await expectRef('ones large', T.ones([5, 4, 33]), { shape: [5, 4, 33], data: new Array<number>(660).fill(1) }, EXACT);
  await expectRef('ones bool', T.ones([3], 'bool'), { shape: [3], data: [1, 1, 1] }, EXACT);
  await expectRef('zeros int32', T.zeros([2, 2], 'int32'), { shape: [2, 2], data: [0, 0, 0, 0] }, EXACT);
  const like = T.fullLike(T.zeros([10, 10], 'float64'), 0.1);
  assert.equal(like.dtype, 'float64');
  await expectRef('full_like float64', like, { shape: [10, 10], data: new Array<number>(100).fill(0.1) }, EXACT);
  await expectRef('ones_like', T.onesLike(T.zeros([2], 'int64')), { shape: [2], data: [1, 1] }, EXACT);
  // A large expand used downstream still computes.
  await expectRef('sum of a large full', T.sum(T.full([1000, 1000], 0.5)), { shape: [], data: [500000] }, { atol: 0, rtol: 1e-6 });
});

test('cast between float32/float64/int64/int32/bool', async () => {
  const v = [-2.9, -1.5, -0.5, -0, 0, 0.4, 1.5, 2.99, 7];
  const F = T.tensor(v, [9], 'float32');
  const d64 = T.tensor(Float64Array.from([0.1, -1 / 3, 1e-40, 3.4e38, 1e300]), [5], 'float64');
  const trunc = v.map((u) => Math.trunc(u));
  await expectRef('float32 -> int64 truncates', T.cast(F, 'int64'), { shape: [9], data: trunc }, EXACT);
  await expectRef('float32 -> int32 truncates', T.cast(F, 'int32'), { shape: [9], data: trunc }, EXACT);
  await expectRef('float64 -> int64 truncates', T.cast(T.tensor(Float64Array.from(v), [9], 'float64'), 'int64'), { shape: [9], data: trunc }, EXACT);
  await expectRef('float32 -> bool', T.cast(T.tensor([0, -0, 0.1, -3, NaN], [5]), 'bool'), { shape: [5], data: [0, 0, 1, 1, 1] }, EXACT);
  await expectRef('float32 -> float64', T.cast(F, 'float64'), { shape: [9], data: v.map(Math.fround) }, EXACT);
  await expectRef('float64 -> float32 rounds', T.cast(d64, 'float32'), { shape: [5], data: [Math.fround(0.1), Math.fround(-1 / 3), Math.fround(1e-40), Math.fround(3.4e38), Infinity] }, EXACT);
  const I = T.tensor([-3, 0, 5, 123456789], [4], 'int64');
  await expectRef('int64 -> float32', T.cast(I, 'float32'), { shape: [4], data: [-3, 0, 5, Math.fround(123456789)] }, EXACT);
  await expectRef('int64 -> int32', T.cast(I, 'int32'), { shape: [4], data: [-3, 0, 5, 123456789] }, EXACT);
  await expectRef('int64 -> bool', T.cast(I, 'bool'), { shape: [4], data: [1, 0, 1, 1] }, EXACT);
  await expectRef('int32 -> int64', T.cast(T.tensor(Int32Array.from([-7, 8]), [2], 'int32'), 'int64'), { shape: [2], data: [-7, 8] }, EXACT);
  const B = T.tensor(Uint8Array.from([1, 0, 1]), [3], 'bool');
  await expectRef('bool -> float32', T.cast(B, 'float32'), { shape: [3], data: [1, 0, 1] }, EXACT);
  await expectRef('bool -> int64', T.cast(B, 'int64'), { shape: [3], data: [1, 0, 1] }, EXACT);
  await expectRef('bool -> float64', T.cast(B, 'float64'), { shape: [3], data: [1, 0, 1] }, EXACT);
  const out = T.cast(F, 'int64');
  assert.equal(out.dtype, 'int64');
  assert.ok((await out.data()) instanceof BigInt64Array);
  assert.equal(T.cast(F, 'float32'), F, 'cast to the same dtype is the identity');
});

// ---------------------------------------------------------------- shape and dtype errors

test('bad calls throw ShapeError naming the op and the shapes', () => {
  const a = T.zeros([2, 3]);
  assertShapeError(() => T.add(a, T.zeros([4])), /^add: shapes \[2, 3\] and \[4\] do not broadcast/);
  assertShapeError(() => T.mul(T.zeros([2, 3, 4]), T.zeros([3, 3])), /^mul: .*\[2, 3, 4\].*\[3, 3\]/);
  assertShapeError(() => T.matmul(a, T.zeros([4, 5])), /^matmul: inner dimensions differ: \[2, 3\] @ \[4, 5\]/);
  assertShapeError(() => T.matmul(T.zeros([2, 2, 3]), T.zeros([3, 3, 4])), /^matmul: .*\[2\].*\[3\]/);
  assertShapeError(() => T.conv(T.zeros([1, 3, 5, 5]), T.zeros([4, 2, 3, 3])), /^conv: weight \[4, 2, 3, 3\] .*input \[1, 3, 5, 5\]/);
  assertShapeError(() => T.reshape(a, [4, 2]), /^reshape: cannot reshape \[2, 3\] .*\[4, 2\]/);
  assertShapeError(() => T.reshape(a, [4, -1]), /^reshape: .*\[4, -1\].*\[2, 3\]/);
  assertShapeError(() => T.concat([a, T.zeros([2, 4])], 0), /^concat: shapes \[2, 3\], \[2, 4\] differ/);
  assertShapeError(() => T.add(a, T.zeros([2, 3], 'int64')), /^add: dtype mismatch: float32 and int64/);
  assertShapeError(() => T.linear(T.zeros([2, 3]), T.zeros([5, 4])), /^matmul: inner dimensions differ: \[2, 3\] @ \[4, 5\]/);
  assertShapeError(() => T.groupNorm(T.zeros([1, 6, 2]), 4), /^group_norm: 6 channels/);
  assertShapeError(() => T.sum(a, 2), /^sum: axis 2 out of range/);
  assertShapeError(() => T.exp(T.zeros([2], 'int64')), /^exp: needs a floating-point tensor, got int64/);
});

// ---------------------------------------------------------------- eager and compile behaviour

test('compile returns the same numbers as eager evaluation and checks its inputs', async () => {
  const rnd = gen(21);
  const fn = (x: Tensor, y: Tensor): Tensor => T.softmax(T.add(T.mul(x, y), T.sum(x, -1, true)), -1);
  const xa = rnd([2, 3]);
  const ya = rnd([3]);
  const eager = await fn(t32(xa, [2, 3]), t32(ya, [3])).data();
  const cf = await T.compile(fn, [{ shape: [2, 3] }, { shape: [3], name: 'scale' }]);
  const r1 = await cf(xa, ya);
  assertClose(await r1.data(), eager, TOL, 'compiled (typed arrays) vs eager');
  const r2 = await cf(t32(xa, [2, 3]), T.mul(t32(ya, [3]), 1));
  assertClose(await r2.data(), eager, TOL, 'compiled (lazy tensors) vs eager');
  // A second call with other values gives the other numbers.
  const xb = rnd([2, 3]);
  assertClose(await (await cf(xb, ya)).data(), await fn(t32(xb, [2, 3]), t32(ya, [3])).data(), TOL, 'second call');

  await assert.rejects(cf(t32(rnd([4]), [4]), ya), /input "x0".*\[2, 3\].*\[4\]/);
  await assert.rejects(cf(xa, T.tensor([1, 2, 3], [3], 'float64')), /input "scale".*float32.*float64/);
  await assert.rejects(cf(xa, new Float32Array(4)), /input "scale"/);
  await assert.rejects(cf(new Float64Array(6), ya), /input "x0"/);
  await assert.rejects(cf(xa), /takes 2 inputs/);

  // Several outputs, int inputs.
  const multi = await T.compile((i: Tensor) => [T.mul(i, 2), T.cast(i, 'float32')], [{ shape: [3], dtype: 'int64', name: 'ids' }]);
  const [m0, m1] = await multi(new BigInt64Array([1n, -2n, 3n]));
  assertClose(await m0!.data(), [2, -4, 6], EXACT, 'multi out 0');
  assertClose(await m1!.data(), [1, -2, 3], EXACT, 'multi out 1');
  await assert.rejects(multi(new Float32Array(3)), /input "ids"/);
});

test('a tensor evaluated twice does not create a second session; same structure reuses it', async () => {
  const rnd = gen(22);
  const s = [7, 13];
  const x = rnd(s);
  const build = (d: Float32Array): Tensor => T.sqrt(T.add(T.sum(T.mul(t32(d, s), t32(d, s)), -1), 0.125));
  const ref = (d: Float32Array): Ref => refReduce(d, s, [-1], false, (v) => Math.sqrt(v.reduce((a, u) => a + u * u, 0) + 0.125));
  const y = build(x);
  const before = T.engineStats.sessionsCreated;
  await expectRef('first evaluation', y, ref(x));
  assert.equal(T.engineStats.sessionsCreated, before + 1, 'one session for the first evaluation');
  await expectRef('second evaluation', y, ref(x));
  await y.data();
  assert.equal(T.engineStats.sessionsCreated, before + 1, 'evaluating again creates no session');
  // Same structure, other values (fed, > 64 elements): the cached session is reused.
  const x2 = rnd(s);
  await expectRef('same structure, other data', build(x2), ref(x2));
  assert.equal(T.engineStats.sessionsCreated, before + 1, 'structurally identical graph reuses the session');
  // An evaluated tensor is a leaf for later graphs.
  const z = T.mul(y, 2);
  await expectRef('graph on an evaluated tensor', z, { shape: [7], data: ref(x).data.map((v) => 2 * v) });
});

test('variables reassigned after compile() are picked up on the next call', async () => {
  const rnd = gen(23);
  const xa = rnd([2, 3]);
  for (const variables of ['initializers', 'inputs'] as const) {
    const v = new T.Variable([3], 'float32');
    v.assign(Float32Array.from([1, 2, 3]));
    const cf = await T.compile((x: Tensor) => T.add(T.mul(x, v), 1), [{ shape: [2, 3] }], { variables });
    const expect = (w: number[]): number[] => Array.from(xa, (u, i) => u * w[i % 3]! + 1);
    assertClose(await (await cf(xa)).data(), expect([1, 2, 3]), TOL, `${variables}: first weights`);
    v.assign(Float32Array.from([-4, 0.5, 6]));
    assertClose(await (await cf(xa)).data(), expect([-4, 0.5, 6]), TOL, `${variables}: reassigned weights`);
    v.assign(Float32Array.from([7, 8, 9]));
    assertClose(await (await cf(xa)).data(), expect([7, 8, 9]), TOL, `${variables}: reassigned again`);
    // Eager evaluation reads the current value too.
    assertClose(await T.mul(v, 2).data(), [14, 16, 18], EXACT, `${variables}: eager`);
    await cf.release();
  }
});
