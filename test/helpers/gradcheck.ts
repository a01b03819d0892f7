// Checks an op's VJP against central finite differences of the same compiled forward graph.
// The scalar probe is L(x) = sum(f(x) * r) with a fixed random r, accumulated in float64 so that
// summation noise does not swamp the difference quotient; the quotient uses Richardson
// extrapolation of two step sizes (error O(eps^4)).
import assert from 'node:assert/strict';
import { cast, compile, mul, sum, tensor, type Tensor, valueAndGrad } from '../../src/tensor/index.js';

/** Small deterministic PRNG for test data (not the torch generator). */
export function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

export function randomArray(n: number, rand: () => number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rand();
  return a;
}

export interface GradCheckOptions {
  /** Input data; generated uniformly in [lo, hi] when absent. */
  data?: Float32Array[];
  lo?: number;
  hi?: number;
  /** Which inputs to differentiate (default: all). */
  wrt?: number[];
  eps?: number;
  atol?: number;
  rtol?: number;
  directions?: number;
  seed?: number;
}

export async function gradCheck(
  label: string,
  fn: (...xs: Tensor[]) => Tensor,
  shapes: number[][],
  opts: GradCheckOptions = {},
): Promise<void> {
  const rand = lcg(opts.seed ?? 1234);
  const data = opts.data ?? shapes.map((s) => randomArray(s.reduce((a, b) => a * b, 1), rand, opts.lo ?? -1, opts.hi ?? 1));
  const wrt = opts.wrt ?? shapes.map((_, i) => i);
  const specs = shapes.map((shape, i) => ({ shape, name: `a${i}` }));
  // Fixed random projection of the output.
  const probeShape = fn(...shapes.map((s) => tensor(new Float32Array(s.reduce((a, b) => a * b, 1)), s))).shape;
  const r = tensor(randomArray(probeShape.reduce((a, b) => a * b, 1), rand), probeShape, 'float32');
  const loss = (...xs: Tensor[]): Tensor => sum(mul(cast(fn(...xs), 'float64'), cast(r, 'float64')));
  const lossFn = await compile((...xs) => loss(...xs), specs);
  const gradFn = await compile((...xs) => valueAndGrad((...ys) => cast(loss(...ys), 'float32'), wrt)(...xs).grads, specs);
  const grads = await gradFn(...data);
  const evalAt = async (arg: number, v: Float32Array, eps: number): Promise<number> => {
    const plus = data.map((d, i) => (i === arg ? d.map((x, j) => x + eps * v[j]!) : d));
    const minus = data.map((d, i) => (i === arg ? d.map((x, j) => x - eps * v[j]!) : d));
    const lp = Number((await (await lossFn(...plus)).data())[0]);
    const lm = Number((await (await lossFn(...minus)).data())[0]);
    return (lp - lm) / (2 * eps);
  };
  const eps = opts.eps ?? 1e-2;
  const atol = opts.atol ?? 5e-4;
  const rtol = opts.rtol ?? 1e-3;
  for (let k = 0; k < wrt.length; k++) {
    const arg = wrt[k]!;
    const g = (await grads[k]!.data()) as Float32Array;
    const n = data[arg]!.length;
    assert.equal(g.length, n, `${label}: gradient of input ${arg} has ${g.length} elements, expected ${n}`);
    const dirs: Float32Array[] = [];
    for (let d = 0; d < (opts.directions ?? 3); d++) dirs.push(randomArray(n, rand));
    if (n <= 6) for (let j = 0; j < n; j++) dirs.push(Float32Array.from({ length: n }, (_, i) => (i === j ? 1 : 0)));
    for (const v of dirs) {
      const d1 = await evalAt(arg, v, eps);
      const d2 = await evalAt(arg, v, eps / 2);
      const fd = (4 * d2 - d1) / 3;
      let an = 0;
      for (let j = 0; j < n; j++) an += g[j]! * v[j]!;
      const ok = Math.abs(fd - an) <= atol + rtol * Math.max(Math.abs(fd), Math.abs(an));
      assert.ok(ok, `${label}: d/d(input ${arg}) along a direction: analytic ${an}, finite difference ${fd}`);
    }
  }
}
