// Op builders. Each checks its inputs' shapes and dtypes when the op is built and throws a
// ShapeError naming the op and the shapes, so a mistake points at the line that made it.
// Primitive ops (one Tensor node each) are emitted to ONNX in emit.ts and differentiated in
// autodiff.ts; composite ops here are built from primitives and need neither.
import { allocate, isFloat, type DType, type TypedArray } from './dtype.js';
import { constant, fmtShape, numel, ShapeError, Tensor, type Attrs, type Shape } from './tensor.js';
import { fma32 } from './random.js';

export type TensorLike = Tensor | number;

// ---------------------------------------------------------------- helpers

function normAxis(op: string, axis: number, ndim: number): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (!Number.isInteger(a) || a < 0 || a >= ndim) throw new ShapeError(op, `axis ${axis} out of range for a ${ndim}-d tensor`);
  return a;
}

function normAxes(op: string, axes: number | readonly number[] | undefined, ndim: number): number[] {
  if (axes === undefined) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const out = list.map((a) => normAxis(op, a, ndim));
  if (new Set(out).size !== out.length) throw new ShapeError(op, `repeated axis in ${JSON.stringify(axes)}`);
  return out.sort((x, y) => x - y);
}

export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(op, `shapes ${fmtShape(a)} and ${fmtShape(b)} do not broadcast (dim ${i - n}: ${da} vs ${db})`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function requireFloat(op: string, t: Tensor): void {
  if (!isFloat(t.dtype)) throw new ShapeError(op, `needs a floating-point tensor, got ${t.dtype}`);
}

/** Host array of `dtype` filled from numbers. */
export function arrayOf(dtype: DType, values: ArrayLike<number>): TypedArray {
  const a = allocate(dtype, values.length);
  if (a instanceof BigInt64Array) for (let i = 0; i < values.length; i++) a[i] = BigInt(Math.trunc(values[i]!));
  else if (dtype === 'float16' || dtype === 'bfloat16') {
    throw new ShapeError('tensor', `cannot build ${dtype} constants from numbers; build float32 and cast`);
  } else if (dtype === 'bool') for (let i = 0; i < values.length; i++) a[i] = values[i] ? 1 : 0;
  else (a as Float32Array).set(values as ArrayLike<number>);
  return a;
}

// ---------------------------------------------------------------- creation

/** A constant tensor from numbers or a typed array (shape defaults to 1-d). */
export function tensor(values: ArrayLike<number> | TypedArray, shape?: Shape, dtype: DType = 'float32'): Tensor {
  const data = ArrayBuffer.isView(values) && !(values instanceof Float64Array && dtype !== 'float64')
    ? (values as TypedArray)
    : arrayOf(dtype, values as ArrayLike<number>);
  return constant(data, shape ?? [data.length], dtype);
}

export function scalar(v: number, dtype: DType = 'float32'): Tensor {
  return constant(arrayOf(dtype, [v]), [], dtype);
}

export function full(shape: Shape, v: number, dtype: DType = 'float32'): Tensor {
  const n = numel(shape);
  if (n <= 64) return constant(arrayOf(dtype, new Array<number>(n).fill(v)), shape, dtype);
  // Large fills stay small in the graph: a scalar expanded.
  return expand(scalar(v, dtype), shape);
}

export const zeros = (shape: Shape, dtype: DType = 'float32'): Tensor => full(shape, 0, dtype);
export const ones = (shape: Shape, dtype: DType = 'float32'): Tensor => full(shape, 1, dtype);
export const zerosLike = (t: Tensor): Tensor => full(t.shape, 0, t.dtype);
export const onesLike = (t: Tensor): Tensor => full(t.shape, 1, t.dtype);
export const fullLike = (t: Tensor, v: number): Tensor => full(t.shape, v, t.dtype);

/** torch.arange(start, end, step): values start + i*step computed as torch does (in double, then cast). */
export function arange(start: number, end?: number, step = 1, dtype: DType = 'int64'): Tensor {
  if (end === undefined) {
    end = start;
    start = 0;
  }
  if (step === 0) throw new ShapeError('arange', 'step must be non-zero');
  const n = Math.max(0, Math.ceil((end - start) / step));
  const vals = new Array<number>(n);
  for (let i = 0; i < n; i++) vals[i] = start + i * step;
  return constant(arrayOf(dtype, vals), [n], dtype);
}

/**
 * Exact fused multiply-add in float64, round(a * b + c) with one rounding (the values of the
 * linspace kernel, whose multiply-adds the compiler fuses). Exact integer arithmetic on the
 * significands; inputs and result are finite and normal here.
 */
function fma64(a: number, b: number, c: number): number {
  if (a === 0 || b === 0) return c;
  const dv = new DataView(new ArrayBuffer(8));
  const parts = (x: number): [bigint, number] => {
    if (x === 0) return [0n, 0];
    dv.setFloat64(0, x);
    const hi = dv.getUint32(0);
    const bexp = (hi >>> 20) & 0x7ff;
    let m = (BigInt(hi & 0xfffff) << 32n) | BigInt(dv.getUint32(4));
    let e = -1074;
    if (bexp !== 0) {
      m |= 1n << 52n;
      e = bexp - 1075;
    }
    return [hi >>> 31 ? -m : m, e];
  };
  const [ma, ea] = parts(a);
  const [mb, eb] = parts(b);
  const [mc, ec] = parts(c);
  const ep = ea + eb;
  const e = Math.min(ep, ec);
  const exact = ((ma * mb) << BigInt(ep - e)) + (mc << BigInt(ec - e));
  // Number(bigint) rounds to nearest even; the power-of-two scaling is then exact.
  return Number(exact) * 2 ** e;
}

/**
 * torch.linspace(start, end, steps) for float32 and float64, as PyTorch 1.13's CPU kernel (AVX2
 * build) computes it; checked bit for bit against the reference's values in the parity fixtures.
 * step = (end - start) / (steps - 1) in the dtype. Element i is `start + step*i` below steps/2 and
 * `end - step*(steps-1-i)` from there on, each one fused multiply-add. While at least two vectors'
 * worth of elements remain (16 float32 / 8 float64), the kernel fills two vectors of 8 (float32)
 * or 4 (float64) lanes at a time instead: a vector's first lane takes the two-sided value at its
 * index and lane k adds k*step to it (fused), whichever half the lanes fall in. So the last element
 * is exactly `end` only when it is not in a vector (steps % 16 != 0 for float32). Other dtypes:
 * the two-sided formula in double, truncated.
 */
export function linspace(start: number, end: number, steps: number, dtype: DType = 'float32'): Tensor {
  if (!Number.isInteger(steps) || steps < 0) throw new ShapeError('linspace', `steps must be a non-negative integer, got ${steps}`);
  const vals = new Array<number>(steps);
  if (steps === 1) {
    // torch fills a single step with `start`.
    vals[0] = start;
  } else if (dtype === 'float32' || dtype === 'float64') {
    const f32 = dtype === 'float32';
    const round = f32 ? Math.fround : (x: number): number => x;
    const fma = f32 ? fma32 : fma64;
    const lanes = f32 ? 8 : 4;
    const s = round(start);
    const e = round(end);
    // The kernel computes in the dtype: (end - start) rounds before the division.
    const step = round(round(e - s) / (steps - 1));
    const half = Math.floor(steps / 2);
    const at = (i: number): number => (i < half ? fma(step, i, s) : fma(-step, steps - 1 - i, e));
    let i = 0;
    // Two vectors per iteration (ATen's vectorized_loop), then the rest one by one.
    for (; i + 2 * lanes <= steps; i += 2 * lanes) {
      for (let v = i; v < i + 2 * lanes; v += lanes) {
        const base = at(v);
        vals[v] = base;
        for (let k = 1; k < lanes; k++) vals[v + k] = fma(k, step, base);
      }
    }
    for (; i < steps; i++) vals[i] = at(i);
  } else {
    const step = steps > 1 ? (end - start) / (steps - 1) : 0;
    const half = Math.floor(steps / 2);
    for (let i = 0; i < steps; i++) vals[i] = i < half ? start + step * i : end - step * (steps - i - 1);
  }
  return constant(arrayOf(dtype, vals), [steps], dtype);
}

// ---------------------------------------------------------------- elementwise

function lift(op: string, x: TensorLike, like: Tensor): Tensor {
  return typeof x === 'number' ? scalar(x, like.dtype) : x;
}

function binary(op: string, a: TensorLike, b: TensorLike, outDType?: DType): Tensor {
  if (typeof a === 'number' && typeof b === 'number') throw new ShapeError(op, 'needs at least one tensor operand');
  const ta = typeof a === 'number' ? lift(op, a, b as Tensor) : a;
  const tb = typeof b === 'number' ? lift(op, b, ta) : b;
  if (ta.dtype !== tb.dtype) throw new ShapeError(op, `dtype mismatch: ${ta.dtype} and ${tb.dtype} (cast one operand first)`);
  const shape = broadcastShapes(op, ta.shape, tb.shape);
  return new Tensor(op, [ta, tb], {}, shape, outDType ?? ta.dtype);
}

export const add = (a: TensorLike, b: TensorLike): Tensor => binary('add', a, b);
export const sub = (a: TensorLike, b: TensorLike): Tensor => binary('sub', a, b);
export const mul = (a: TensorLike, b: TensorLike): Tensor => binary('mul', a, b);
/** True division. torch promotes integer operands to float; here they must be cast explicitly. */
export function div(a: TensorLike, b: TensorLike): Tensor {
  const t = binary('div', a, b);
  if (!isFloat(t.dtype)) throw new ShapeError('div', `integer (${t.dtype}) division: cast the operands to a float dtype first (torch.div promotes to float)`);
  return t;
}
export const maximum = (a: TensorLike, b: TensorLike): Tensor => binary('maximum', a, b);
export const minimum = (a: TensorLike, b: TensorLike): Tensor => binary('minimum', a, b);
export const eq = (a: TensorLike, b: TensorLike): Tensor => binary('eq', a, b, 'bool');
export const lt = (a: TensorLike, b: TensorLike): Tensor => binary('lt', a, b, 'bool');
export const le = (a: TensorLike, b: TensorLike): Tensor => binary('le', a, b, 'bool');
export const gt = (a: TensorLike, b: TensorLike): Tensor => binary('gt', a, b, 'bool');
export const ge = (a: TensorLike, b: TensorLike): Tensor => binary('ge', a, b, 'bool');
export const ne = (a: TensorLike, b: TensorLike): Tensor => logicalNot(eq(a, b));

function boolBinary(op: string, a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== 'bool' || b.dtype !== 'bool') throw new ShapeError(op, `needs bool tensors, got ${a.dtype} and ${b.dtype}`);
  return new Tensor(op, [a, b], {}, broadcastShapes(op, a.shape, b.shape), 'bool');
}
export const logicalAnd = (a: Tensor, b: Tensor): Tensor => boolBinary('logical_and', a, b);
export const logicalOr = (a: Tensor, b: Tensor): Tensor => boolBinary('logical_or', a, b);
export function logicalNot(a: Tensor): Tensor {
  if (a.dtype !== 'bool') throw new ShapeError('logical_not', `needs a bool tensor, got ${a.dtype}`);
  return new Tensor('logical_not', [a], {}, a.shape, 'bool');
}

/** x ** p. A number exponent is kept as an attribute so the common powers stay exact and cheap. */
export function pow(x: Tensor, p: TensorLike): Tensor {
  requireFloat('pow', x);
  if (typeof p === 'number') {
    if (p === 1) return x;
    if (p === 2) return mul(x, x);
    if (p === 0.5) return sqrt(x);
    if (p === -0.5) return rsqrt(x);
    if (p === -1) return reciprocal(x);
    if (p === 3) return mul(mul(x, x), x);
    if (p === -2) return reciprocal(mul(x, x));
    return new Tensor('pow_scalar', [x], { p }, x.shape, x.dtype);
  }
  return binary('pow', x, p);
}

export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  if (cond.dtype !== 'bool') throw new ShapeError('where', `condition must be bool, got ${cond.dtype}`);
  const like = typeof a === 'number' ? (b as Tensor) : a;
  if (typeof a === 'number' && typeof b === 'number') throw new ShapeError('where', 'needs at least one tensor branch');
  const ta = lift('where', a, like);
  const tb = lift('where', b, like);
  if (ta.dtype !== tb.dtype) throw new ShapeError('where', `branch dtypes differ: ${ta.dtype} and ${tb.dtype}`);
  const shape = broadcastShapes('where', broadcastShapes('where', cond.shape, ta.shape), tb.shape);
  return new Tensor('where', [cond, ta, tb], {}, shape, ta.dtype);
}

function unary(op: string, x: Tensor, attrs: Attrs = {}, float = true): Tensor {
  if (float) requireFloat(op, x);
  return new Tensor(op, [x], attrs, x.shape, x.dtype);
}

export const neg = (x: Tensor): Tensor => unary('neg', x, {}, false);
export const exp = (x: Tensor): Tensor => unary('exp', x);
export const log = (x: Tensor): Tensor => unary('log', x);
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x);
export const rsqrt = (x: Tensor): Tensor => unary('rsqrt', x);
export const reciprocal = (x: Tensor): Tensor => unary('reciprocal', x);
export const sin = (x: Tensor): Tensor => unary('sin', x);
export const cos = (x: Tensor): Tensor => unary('cos', x);
export const tanh = (x: Tensor): Tensor => unary('tanh', x);
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x);
export const abs = (x: Tensor): Tensor => unary('abs', x, {}, false);
export const erf = (x: Tensor): Tensor => unary('erf', x);
export const relu = (x: Tensor): Tensor => unary('relu', x);
export const floor = (x: Tensor): Tensor => unary('floor', x);
export const ceil = (x: Tensor): Tensor => unary('ceil', x);
/** Round half to even (torch.round). */
export const round = (x: Tensor): Tensor => unary('round', x);
export const sign = (x: Tensor): Tensor => unary('sign', x, {}, false);
export const square = (x: Tensor): Tensor => mul(x, x);
/** Identity that blocks gradients (torch's .detach()). */
export const detach = (x: Tensor): Tensor => new Tensor('detach', [x], {}, x.shape, x.dtype);

/** torch.clamp with optional bounds. */
export function clamp(x: Tensor, min?: number | null, max?: number | null): Tensor {
  if (min == null && max == null) throw new ShapeError('clamp', 'needs min or max');
  return new Tensor('clamp', [x], { min: min ?? null, max: max ?? null }, x.shape, x.dtype);
}

/** GELU, exact (erf) or with the tanh approximation. */
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  return unary('gelu', x, { approximate });
}

/**
 * SiLU, x * sigmoid(x). Kept composite: ONNX Runtime's CPU optimiser (level 'extended' and up)
 * fuses Mul(x, Sigmoid(x)) into one com.microsoft QuickGelu (alpha 1) pass, bit for bit the same
 * values as the two ops, and its VJP comes from mul and sigmoid.
 */
export const silu = (x: Tensor): Tensor => mul(x, sigmoid(x));

export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  return new Tensor('cast', [x], { to: dtype }, x.shape, dtype);
}

// ---------------------------------------------------------------- reductions

function reduce(op: string, x: Tensor, axes: number | readonly number[] | undefined, keepdim: boolean): Tensor {
  const ax = normAxes(op, axes, x.ndim);
  const shape: number[] = [];
  x.shape.forEach((d, i) => {
    if (!ax.includes(i)) shape.push(d);
    else if (keepdim) shape.push(1);
  });
  if (ax.length === 0) return x;
  return new Tensor(op, [x], { axes: ax, keepdim }, shape, x.dtype);
}

export const sum = (x: Tensor, axes?: number | readonly number[], keepdim = false): Tensor => reduce('sum', x, axes, keepdim);
export function mean(x: Tensor, axes?: number | readonly number[], keepdim = false): Tensor {
  requireFloat('mean', x);
  return reduce('mean', x, axes, keepdim);
}
export const max = (x: Tensor, axes?: number | readonly number[], keepdim = false): Tensor => reduce('max', x, axes, keepdim);
export const min = (x: Tensor, axes?: number | readonly number[], keepdim = false): Tensor => reduce('min', x, axes, keepdim);

/** Variance with Bessel-style `correction` (torch default 1). */
export function variance(x: Tensor, axes?: number | readonly number[], opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
  requireFloat('var', x);
  const ax = normAxes('var', axes, x.ndim);
  const n = ax.reduce((p, a) => p * x.shape[a]!, 1);
  const correction = opts.correction ?? 1;
  const m = mean(x, ax, true);
  const d = sub(x, m);
  const s = sum(mul(d, d), ax, opts.keepdim ?? false);
  return div(s, Math.max(0, n - correction));
}

export function argmax(x: Tensor, axis: number, keepdim = false): Tensor {
  const a = normAxis('argmax', axis, x.ndim);
  const shape = x.shape.flatMap((d, i) => (i === a ? (keepdim ? [1] : []) : [d]));
  return new Tensor('argmax', [x], { axis: a, keepdim }, shape, 'int64');
}

export function cumsum(x: Tensor, axis: number, reverse = false): Tensor {
  const a = normAxis('cumsum', axis, x.ndim);
  return new Tensor('cumsum', [x], { axis: a, reverse }, x.shape, x.dtype);
}

/** Cumulative product, built from slices (ONNX has no CumProd); sizes here are small. */
export function cumprod(x: Tensor, axis: number): Tensor {
  const a = normAxis('cumprod', axis, x.ndim);
  const n = x.shape[a]!;
  if (n === 0) return x;
  const parts: Tensor[] = [slice(x, a, 0, 1)];
  for (let i = 1; i < n; i++) parts.push(mul(parts[i - 1]!, slice(x, a, i, i + 1)));
  return concat(parts, a);
}

// ---------------------------------------------------------------- linear algebra

/** torch.matmul semantics, including 1-d operands and batch broadcasting. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== b.dtype) throw new ShapeError('matmul', `dtype mismatch: ${a.dtype} and ${b.dtype}`);
  if (a.ndim === 0 || b.ndim === 0) throw new ShapeError('matmul', 'operands must be at least 1-d');
  const a2 = a.ndim === 1 ? reshape(a, [1, a.shape[0]!]) : a;
  const b2 = b.ndim === 1 ? reshape(b, [b.shape[0]!, 1]) : b;
  const k1 = a2.shape[a2.ndim - 1]!;
  const k2 = b2.shape[b2.ndim - 2]!;
  if (k1 !== k2) throw new ShapeError('matmul', `inner dimensions differ: ${fmtShape(a.shape)} @ ${fmtShape(b.shape)}`);
  const batch = broadcastShapes('matmul', a2.shape.slice(0, -2), b2.shape.slice(0, -2));
  const out = new Tensor('matmul', [a2, b2], {}, [...batch, a2.shape[a2.ndim - 2]!, b2.shape[b2.ndim - 1]!], a.dtype);
  if (a.ndim === 1 && b.ndim === 1) return reshape(out, []);
  if (a.ndim === 1) return squeeze(out, -2);
  if (b.ndim === 1) return squeeze(out, -1);
  return out;
}

/** y = x @ W^T + b (torch.nn.functional.linear). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const y = matmul(x, transpose(weight, 0, 1));
  return bias ? add(y, bias) : y;
}

// ---------------------------------------------------------------- convolution

export interface ConvOptions {
  stride?: number | readonly number[];
  /** Symmetric padding per spatial dim (torch style), or [begin..., end...] of length 2*nd (ONNX style). */
  padding?: number | readonly number[];
  dilation?: number | readonly number[];
  groups?: number;
}

function spatial(op: string, v: number | readonly number[] | undefined, nd: number, dflt: number, name: string): number[] {
  if (v === undefined) return new Array<number>(nd).fill(dflt);
  if (typeof v === 'number') return new Array<number>(nd).fill(v);
  if (v.length !== nd) throw new ShapeError(op, `${name} ${JSON.stringify(v)} must have ${nd} entries`);
  return [...v];
}

function convPads(op: string, p: number | readonly number[] | undefined, nd: number): number[] {
  if (p === undefined) return new Array<number>(2 * nd).fill(0);
  if (typeof p === 'number') return new Array<number>(2 * nd).fill(p);
  if (p.length === nd) return [...p, ...p];
  if (p.length === 2 * nd) return [...p];
  throw new ShapeError(op, `padding ${JSON.stringify(p)} must have ${nd} or ${2 * nd} entries`);
}

/** N-d convolution (1-3 spatial dims): x (N, C, ...), weight (O, C/groups, ...k). */
export function conv(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: ConvOptions = {}): Tensor {
  const nd = x.ndim - 2;
  if (nd < 1 || nd > 3) throw new ShapeError('conv', `input must be 3-d to 5-d (N, C, spatial...), got ${fmtShape(x.shape)}`);
  if (weight.ndim !== x.ndim) throw new ShapeError('conv', `weight ${fmtShape(weight.shape)} must have ${x.ndim} dims for input ${fmtShape(x.shape)}`);
  if (x.dtype !== weight.dtype) throw new ShapeError('conv', `dtype mismatch: input ${x.dtype}, weight ${weight.dtype}`);
  const groups = opts.groups ?? 1;
  const stride = spatial('conv', opts.stride, nd, 1, 'stride');
  const dilation = spatial('conv', opts.dilation, nd, 1, 'dilation');
  const pads = convPads('conv', opts.padding, nd);
  const [n, c] = x.shape as [number, number];
  const [o, ci] = weight.shape as [number, number];
  if (c % groups !== 0 || o % groups !== 0) throw new ShapeError('conv', `channels in ${c} / out ${o} not divisible by groups ${groups}`);
  if (ci * groups !== c) {
    throw new ShapeError('conv', `weight ${fmtShape(weight.shape)} expects ${ci * groups} input channels, input ${fmtShape(x.shape)} has ${c}`);
  }
  const out: number[] = [n, o];
  for (let i = 0; i < nd; i++) {
    const k = weight.shape[2 + i]!;
    const size = Math.floor((x.shape[2 + i]! + pads[i]! + pads[nd + i]! - dilation[i]! * (k - 1) - 1) / stride[i]!) + 1;
    if (size <= 0) throw new ShapeError('conv', `kernel ${fmtShape(weight.shape)} does not fit input ${fmtShape(x.shape)} with padding ${JSON.stringify(pads)}`);
    out.push(size);
  }
  const inputs = [x, weight];
  if (bias) {
    if (bias.ndim !== 1 || bias.shape[0] !== o) throw new ShapeError('conv', `bias ${fmtShape(bias.shape)} must be [${o}]`);
    inputs.push(bias);
  }
  return new Tensor('conv', inputs, { stride, pads, dilation, groups }, out, x.dtype);
}

export interface ConvTransposeOptions extends ConvOptions {
  outputPadding?: number | readonly number[];
}

/** N-d transposed convolution: x (N, C, ...), weight (C, O/groups, ...k). */
export function convTranspose(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: ConvTransposeOptions = {}): Tensor {
  const nd = x.ndim - 2;
  if (nd < 1 || nd > 3) throw new ShapeError('conv_transpose', `input must be 3-d to 5-d, got ${fmtShape(x.shape)}`);
  if (weight.ndim !== x.ndim) throw new ShapeError('conv_transpose', `weight ${fmtShape(weight.shape)} must have ${x.ndim} dims`);
  if (x.dtype !== weight.dtype) throw new ShapeError('conv_transpose', `dtype mismatch: input ${x.dtype}, weight ${weight.dtype}`);
  const groups = opts.groups ?? 1;
  const stride = spatial('conv_transpose', opts.stride, nd, 1, 'stride');
  const dilation = spatial('conv_transpose', opts.dilation, nd, 1, 'dilation');
  const outputPadding = spatial('conv_transpose', opts.outputPadding, nd, 0, 'outputPadding');
  const pads = convPads('conv_transpose', opts.padding, nd);
  const [n, c] = x.shape as [number, number];
  if (weight.shape[0] !== c) throw new ShapeError('conv_transpose', `weight ${fmtShape(weight.shape)} expects ${weight.shape[0]} input channels, input has ${c}`);
  if (c % groups !== 0) throw new ShapeError('conv_transpose', `channels ${c} not divisible by groups ${groups}`);
  const o = weight.shape[1]! * groups;
  const out: number[] = [n, o];
  for (let i = 0; i < nd; i++) {
    const k = weight.shape[2 + i]!;
    const size = stride[i]! * (x.shape[2 + i]! - 1) + outputPadding[i]! + (k - 1) * dilation[i]! + 1 - pads[i]! - pads[nd + i]!;
    if (size <= 0) throw new ShapeError('conv_transpose', `output size ${size} <= 0 for input ${fmtShape(x.shape)}`);
    out.push(size);
  }
  const inputs = [x, weight];
  if (bias) {
    if (bias.ndim !== 1 || bias.shape[0] !== o) throw new ShapeError('conv_transpose', `bias ${fmtShape(bias.shape)} must be [${o}]`);
    inputs.push(bias);
  }
  return new Tensor('conv_transpose', inputs, { stride, pads, dilation, groups, outputPadding }, out, x.dtype);
}

export interface PoolOptions {
  stride?: number | readonly number[];
  padding?: number | readonly number[];
  /** torch's count_include_pad (default true). */
  countIncludePad?: boolean;
}

/** Average pooling over the spatial dims of (N, C, ...). */
export function avgPool(x: Tensor, kernel: number | readonly number[], opts: PoolOptions = {}): Tensor {
  const nd = x.ndim - 2;
  if (nd < 1 || nd > 3) throw new ShapeError('avg_pool', `input must be 3-d to 5-d, got ${fmtShape(x.shape)}`);
  requireFloat('avg_pool', x);
  const k = spatial('avg_pool', kernel, nd, 1, 'kernel');
  const stride = spatial('avg_pool', opts.stride ?? k, nd, 1, 'stride');
  const pads = convPads('avg_pool', opts.padding, nd);
  const out = [x.shape[0]!, x.shape[1]!];
  for (let i = 0; i < nd; i++) {
    if (pads[i]! > k[i]! / 2 || pads[nd + i]! > k[i]! / 2) throw new ShapeError('avg_pool', `padding ${JSON.stringify(pads)} must be at most half the kernel ${JSON.stringify(k)}`);
    const size = Math.floor((x.shape[2 + i]! + pads[i]! + pads[nd + i]! - k[i]!) / stride[i]!) + 1;
    if (size <= 0) throw new ShapeError('avg_pool', `kernel ${JSON.stringify(k)} does not fit input ${fmtShape(x.shape)}`);
    out.push(size);
  }
  return new Tensor('avg_pool', [x], { kernel: k, stride, pads, countIncludePad: opts.countIncludePad ?? true }, out, x.dtype);
}

// ---------------------------------------------------------------- normalisation and softmax

/** torch.nn.functional.group_norm over (N, C, ...). */
export function groupNorm(x: Tensor, groups: number, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  requireFloat('group_norm', x);
  if (x.ndim < 2) throw new ShapeError('group_norm', `input must be at least 2-d, got ${fmtShape(x.shape)}`);
  const c = x.shape[1]!;
  if (!Number.isInteger(groups) || groups <= 0 || c % groups !== 0) throw new ShapeError('group_norm', `${c} channels are not divisible into ${groups} groups`);
  for (const [name, p] of [['weight', weight], ['bias', bias]] as const) {
    if (p && (p.ndim !== 1 || p.shape[0] !== c)) throw new ShapeError('group_norm', `${name} ${fmtShape(p.shape)} must be [${c}]`);
  }
  const w = weight ?? ones([c], x.dtype);
  const b = bias ?? zeros([c], x.dtype);
  return new Tensor('group_norm', [x, w, b], { groups, eps }, x.shape, x.dtype);
}

/** torch.nn.functional.layer_norm over the trailing `normalizedShape` dims. */
export function layerNorm(x: Tensor, normalizedShape: Shape, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  requireFloat('layer_norm', x);
  const k = normalizedShape.length;
  if (k === 0 || !sameShape(x.shape.slice(x.ndim - k), normalizedShape)) {
    throw new ShapeError('layer_norm', `normalized shape ${fmtShape(normalizedShape)} is not the end of input ${fmtShape(x.shape)}`);
  }
  for (const [name, p] of [['weight', weight], ['bias', bias]] as const) {
    if (p && !sameShape(p.shape, normalizedShape)) throw new ShapeError('layer_norm', `${name} ${fmtShape(p.shape)} must be ${fmtShape(normalizedShape)}`);
  }
  const w = weight ?? ones(normalizedShape, x.dtype);
  const b = bias ?? zeros(normalizedShape, x.dtype);
  return new Tensor('layer_norm', [x, w, b], { axis: x.ndim - k, eps }, x.shape, x.dtype);
}

export function softmax(x: Tensor, axis = -1): Tensor {
  requireFloat('softmax', x);
  return new Tensor('softmax', [x], { axis: normAxis('softmax', axis, x.ndim) }, x.shape, x.dtype);
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  requireFloat('log_softmax', x);
  return new Tensor('log_softmax', [x], { axis: normAxis('log_softmax', axis, x.ndim) }, x.shape, x.dtype);
}

/**
 * softmax(q k^T * scale + mask) v over the last two dims, as one node so the engine can fuse it.
 * q (..., Lq, D), k (..., Lk, D), v (..., Lk, Dv); mask: bool (true = attend) or additive float,
 * broadcastable to (..., Lq, Lk). scale defaults to 1/sqrt(D) (torch's SDPA).
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: { mask?: Tensor | null; scale?: number } = {}): Tensor {
  requireFloat('attention', q);
  if (q.dtype !== k.dtype || q.dtype !== v.dtype) throw new ShapeError('attention', `dtypes differ: q ${q.dtype}, k ${k.dtype}, v ${v.dtype}`);
  if (q.ndim < 2 || k.ndim !== q.ndim || v.ndim !== q.ndim) {
    throw new ShapeError('attention', `q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)} must have the same rank >= 2`);
  }
  const d = q.shape[q.ndim - 1]!;
  const lk = k.shape[k.ndim - 2]!;
  if (k.shape[k.ndim - 1] !== d) throw new ShapeError('attention', `q ${fmtShape(q.shape)} and k ${fmtShape(k.shape)} differ in the feature dim`);
  if (v.shape[v.ndim - 2] !== lk) throw new ShapeError('attention', `k ${fmtShape(k.shape)} and v ${fmtShape(v.shape)} differ in sequence length`);
  const batch = q.shape.slice(0, -2);
  if (!sameShape(batch, k.shape.slice(0, -2)) || !sameShape(batch, v.shape.slice(0, -2))) {
    throw new ShapeError('attention', `batch dims differ: q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`);
  }
  const inputs = [q, k, v];
  const lq = q.shape[q.ndim - 2]!;
  if (opts.mask) {
    const m = opts.mask;
    if (m.dtype !== 'bool' && m.dtype !== q.dtype) throw new ShapeError('attention', `mask must be bool or ${q.dtype}, got ${m.dtype}`);
    const full = broadcastShapes('attention', m.shape, [...batch, lq, lk]);
    if (!sameShape(full, [...batch, lq, lk])) throw new ShapeError('attention', `mask ${fmtShape(m.shape)} does not broadcast to ${fmtShape([...batch, lq, lk])}`);
    inputs.push(m);
  }
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  return new Tensor('attention', inputs, { scale }, [...batch, lq, v.shape[v.ndim - 1]!], q.dtype);
}

// ---------------------------------------------------------------- shape manipulation

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const n = x.size;
  const out = [...shape];
  const neg1 = out.indexOf(-1);
  if (neg1 !== out.lastIndexOf(-1)) throw new ShapeError('reshape', `more than one -1 in ${fmtShape(shape)}`);
  if (neg1 >= 0) {
    const rest = out.reduce((p, d, i) => (i === neg1 ? p : p * d), 1);
    if (rest === 0 || n % rest !== 0) throw new ShapeError('reshape', `cannot infer -1 in ${fmtShape(shape)} for ${n} elements (input ${fmtShape(x.shape)})`);
    out[neg1] = n / rest;
  }
  if (out.some((d) => !Number.isInteger(d) || d < 0) || numel(out) !== n) {
    throw new ShapeError('reshape', `cannot reshape ${fmtShape(x.shape)} (${n} elements) to ${fmtShape(shape)}`);
  }
  if (sameShape(out, x.shape)) return x;
  return new Tensor('reshape', [x], { shape: out }, out, x.dtype);
}

export const flatten = (x: Tensor, start = 0, end = -1): Tensor => {
  const s = normAxis('flatten', start, x.ndim);
  const e = normAxis('flatten', end, x.ndim);
  return reshape(x, [...x.shape.slice(0, s), numel(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)]);
};

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normAxis('unsqueeze', axis, x.ndim + 1);
  return reshape(x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
}

export function squeeze(x: Tensor, axes?: number | readonly number[]): Tensor {
  // torch: dims whose size is not 1 are left alone.
  const ax = (axes === undefined ? x.shape.map((_, i) => i) : normAxes('squeeze', axes, x.ndim)).filter((a) => x.shape[a] === 1);
  return reshape(x, x.shape.filter((_, i) => !ax.includes(i)));
}

export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.ndim) throw new ShapeError('permute', `permutation ${JSON.stringify(perm)} has ${perm.length} entries for a ${x.ndim}-d tensor`);
  const p = perm.map((a) => normAxis('permute', a, x.ndim));
  if (new Set(p).size !== p.length) throw new ShapeError('permute', `${JSON.stringify(perm)} is not a permutation`);
  if (p.every((a, i) => a === i)) return x;
  return new Tensor('permute', [x], { perm: p }, p.map((a) => x.shape[a]!), x.dtype);
}

export function transpose(x: Tensor, a: number, b: number): Tensor {
  const perm = Array.from({ length: x.ndim }, (_, i) => i);
  const i = normAxis('transpose', a, x.ndim);
  const j = normAxis('transpose', b, x.ndim);
  perm[i] = j;
  perm[j] = i;
  return permute(x, perm);
}

/** Broadcasts to `shape` (torch's expand; -1 keeps a dim). */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  if (shape.length < x.ndim) throw new ShapeError('expand', `cannot expand ${fmtShape(x.shape)} to fewer dims ${fmtShape(shape)}`);
  const off = shape.length - x.ndim;
  const out = shape.map((d, i) => (d === -1 ? (i >= off ? x.shape[i - off]! : -1) : d));
  for (let i = 0; i < out.length; i++) {
    const src = i >= off ? x.shape[i - off]! : 1;
    if (out[i]! < 0 || (src !== 1 && src !== out[i])) throw new ShapeError('expand', `cannot expand ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  }
  if (sameShape(out, x.shape)) return x;
  return new Tensor('expand', [x], { shape: out }, out, x.dtype);
}

export const broadcastTo = expand;

/** x[start:end:step] along one axis (Python slice semantics; negative indices count from the end). */
export function slice(x: Tensor, axis: number, start?: number, end?: number, step = 1): Tensor {
  const a = normAxis('slice', axis, x.ndim);
  const n = x.shape[a]!;
  if (!Number.isInteger(step) || step === 0) throw new ShapeError('slice', `step must be a non-zero integer, got ${step}`);
  if (step < 0) {
    // Python: x[s:e:-k] == flip(x)[n-1-s : n-1-e : k].
    const s = start === undefined ? n - 1 : clampIndex(start, n, true);
    const e = end === undefined ? -1 : clampIndex(end, n, true);
    return slice(flip(x, [a]), a, n - 1 - s, n - 1 - e, -step);
  }
  const s = start === undefined ? 0 : clampIndex(start, n, false);
  const e = Math.max(s, end === undefined ? n : clampIndex(end, n, false));
  const len = Math.ceil((e - s) / step);
  if (s === 0 && len === n && step === 1) return x;
  const shape = [...x.shape];
  shape[a] = len;
  return new Tensor('slice', [x], { axis: a, start: s, end: e, step }, shape, x.dtype);
}

function clampIndex(i: number, n: number, forNegStep: boolean): number {
  let v = i < 0 ? i + n : i;
  if (forNegStep) return Math.min(Math.max(v, -1), n - 1);
  v = Math.min(Math.max(v, 0), n);
  return v;
}

/** Reverses the order along the given axes. */
export function flip(x: Tensor, axes: readonly number[]): Tensor {
  const ax = normAxes('flip', axes, x.ndim);
  if (ax.length === 0) return x;
  return new Tensor('flip', [x], { axes: ax }, x.shape, x.dtype);
}

/** torch.narrow (a negative start counts from the end). */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const n = x.shape[normAxis('narrow', axis, x.ndim)]!;
  const s = start < 0 ? start + n : start;
  if (!Number.isInteger(s) || !Number.isInteger(length) || s < 0 || length < 0 || s + length > n) {
    throw new ShapeError('narrow', `start ${start} and length ${length} out of range for dim ${axis} of ${fmtShape(x.shape)}`);
  }
  return slice(x, axis, s, s + length);
}

export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new ShapeError('concat', 'needs at least one tensor');
  const first = xs[0]!;
  const a = normAxis('concat', axis, first.ndim);
  let total = 0;
  for (const t of xs) {
    if (t.dtype !== first.dtype) throw new ShapeError('concat', `dtype mismatch: ${first.dtype} and ${t.dtype}`);
    if (t.ndim !== first.ndim || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new ShapeError('concat', `shapes ${xs.map((u) => fmtShape(u.shape)).join(', ')} differ outside axis ${a}`);
    }
    total += t.shape[a]!;
  }
  if (xs.length === 1) return first;
  const shape = [...first.shape];
  shape[a] = total;
  return new Tensor('concat', xs, { axis: a }, shape, first.dtype);
}

export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new ShapeError('stack', 'needs at least one tensor');
  const a = normAxis('stack', axis, xs[0]!.ndim + 1);
  for (const t of xs) {
    if (!sameShape(t.shape, xs[0]!.shape)) throw new ShapeError('stack', `shapes differ: ${xs.map((u) => fmtShape(u.shape)).join(', ')}`);
  }
  return concat(xs.map((t) => unsqueeze(t, a)), a);
}

/** torch.split: chunks of `size` (last may be smaller) or explicit sizes. */
export function split(x: Tensor, sizes: number | readonly number[], axis = 0): Tensor[] {
  const a = normAxis('split', axis, x.ndim);
  const n = x.shape[a]!;
  let list: number[];
  if (typeof sizes === 'number') {
    if (sizes <= 0) throw new ShapeError('split', `split size must be positive, got ${sizes}`);
    list = [];
    for (let s = 0; s < n; s += sizes) list.push(Math.min(sizes, n - s));
  } else {
    list = [...sizes];
    if (list.reduce((p, v) => p + v, 0) !== n) throw new ShapeError('split', `sizes ${JSON.stringify(sizes)} do not add up to ${n}`);
  }
  const out: Tensor[] = [];
  let off = 0;
  for (const s of list) {
    out.push(slice(x, a, off, off + s));
    off += s;
  }
  return out;
}

/** torch.chunk: `chunks` pieces of ceil(n / chunks). */
export function chunk(x: Tensor, chunks: number, axis = 0): Tensor[] {
  const a = normAxis('chunk', axis, x.ndim);
  return split(x, Math.ceil(x.shape[a]! / chunks), a);
}

/**
 * Constant padding with torch's F.pad convention: `pads` pairs (before, after) starting from the
 * LAST dim. Negative pads crop.
 */
export function pad(x: Tensor, pads: readonly number[], value = 0): Tensor {
  if (pads.length % 2 !== 0 || pads.length / 2 > x.ndim) throw new ShapeError('pad', `pads ${JSON.stringify(pads)} must be (before, after) pairs for at most ${x.ndim} dims`);
  const before = new Array<number>(x.ndim).fill(0);
  const after = new Array<number>(x.ndim).fill(0);
  for (let i = 0; i < pads.length / 2; i++) {
    before[x.ndim - 1 - i] = pads[2 * i]!;
    after[x.ndim - 1 - i] = pads[2 * i + 1]!;
  }
  let y = x;
  // Crops first (negative pads), then a single Pad node for the rest.
  for (let d = 0; d < x.ndim; d++) {
    if (before[d]! < 0 || after[d]! < 0) {
      const s = Math.max(0, -before[d]!);
      const e = y.shape[d]! - Math.max(0, -after[d]!);
      if (e < s) throw new ShapeError('pad', `pads ${JSON.stringify(pads)} crop dim ${d} of ${fmtShape(x.shape)} below zero`);
      y = slice(y, d, s, e);
    }
  }
  const b = before.map((v) => Math.max(0, v));
  const e = after.map((v) => Math.max(0, v));
  if (b.every((v) => v === 0) && e.every((v) => v === 0)) return y;
  const shape = y.shape.map((d, i) => d + b[i]! + e[i]!);
  return new Tensor('pad', [y], { before: b, after: e, value }, shape, y.dtype);
}

/** ONNX Gather: x.shape[:axis] + indices.shape + x.shape[axis+1:]. Negative indices count from the end. */
export function gather(x: Tensor, axis: number, indices: Tensor): Tensor {
  const a = normAxis('gather', axis, x.ndim);
  if (indices.dtype !== 'int64' && indices.dtype !== 'int32') throw new ShapeError('gather', `indices must be int64 or int32, got ${indices.dtype}`);
  const idx = cast(indices, 'int64');
  return new Tensor('gather', [x, idx], { axis: a }, [...x.shape.slice(0, a), ...idx.shape, ...x.shape.slice(a + 1)], x.dtype);
}

/** torch.index_select with a 1-d index. */
export function indexSelect(x: Tensor, axis: number, index: Tensor): Tensor {
  if (index.ndim !== 1) throw new ShapeError('index_select', `index must be 1-d, got ${fmtShape(index.shape)}`);
  return gather(x, axis, index);
}

/** Embedding lookup: weight (num, dim), ids of any shape -> ids.shape + [dim]. */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  if (weight.ndim !== 2) throw new ShapeError('embedding', `weight must be 2-d, got ${fmtShape(weight.shape)}`);
  return gather(weight, 0, ids);
}

/** out = x with `source` added at `index` along `axis` (torch.index_add); the VJP of gather. */
export function indexAdd(x: Tensor, axis: number, index: Tensor, source: Tensor): Tensor {
  const a = normAxis('index_add', axis, x.ndim);
  if (index.dtype !== 'int64') throw new ShapeError('index_add', `index must be int64, got ${index.dtype}`);
  const expected = [...x.shape.slice(0, a), ...index.shape, ...x.shape.slice(a + 1)];
  if (!sameShape(source.shape, expected)) throw new ShapeError('index_add', `source ${fmtShape(source.shape)} must be ${fmtShape(expected)}`);
  if (source.dtype !== x.dtype) throw new ShapeError('index_add', `dtype mismatch: ${x.dtype} and ${source.dtype}`);
  return new Tensor('index_add', [x, index, source], { axis: a }, x.shape, x.dtype);
}

// ---------------------------------------------------------------- resampling

/** Nearest-neighbour upsampling of the spatial dims of (N, C, ...) by integer factors. */
export function upsampleNearest(x: Tensor, factor: number | readonly number[]): Tensor {
  const nd = x.ndim - 2;
  if (nd < 1) throw new ShapeError('upsample_nearest', `input must be (N, C, ...), got ${fmtShape(x.shape)}`);
  const f = spatial('upsample_nearest', factor, nd, 1, 'factor');
  if (f.some((v) => !Number.isInteger(v) || v < 1)) throw new ShapeError('upsample_nearest', `factors must be positive integers, got ${JSON.stringify(factor)}`);
  // (N, C, d1, 1, d2, 1, ...) expanded to (N, C, d1, f1, d2, f2, ...) then merged.
  const inter: number[] = [x.shape[0]!, x.shape[1]!];
  const exp: number[] = [x.shape[0]!, x.shape[1]!];
  const out: number[] = [x.shape[0]!, x.shape[1]!];
  for (let i = 0; i < nd; i++) {
    inter.push(x.shape[2 + i]!, 1);
    exp.push(x.shape[2 + i]!, f[i]!);
    out.push(x.shape[2 + i]! * f[i]!);
  }
  return reshape(expand(reshape(x, inter), exp), out);
}

// ---------------------------------------------------------------- misc

/** Adds leading singleton dims until `x` has `ndim` dims (sgm's append_dims adds trailing ones). */
export function appendDims(x: Tensor, ndim: number): Tensor {
  if (x.ndim > ndim) throw new ShapeError('append_dims', `input has ${x.ndim} dims, more than target ${ndim}`);
  return reshape(x, [...x.shape, ...new Array<number>(ndim - x.ndim).fill(1)]);
}

export function sumToShape(x: Tensor, shape: Shape): Tensor {
  if (sameShape(x.shape, shape)) return x;
  const off = x.ndim - shape.length;
  if (off < 0) throw new ShapeError('sum_to_shape', `cannot reduce ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < x.ndim; i++) {
    if (i < off) axes.push(i);
    else if (shape[i - off] === 1 && x.shape[i] !== 1) axes.push(i);
    else if (shape[i - off] !== x.shape[i]) throw new ShapeError('sum_to_shape', `cannot reduce ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  }
  return reshape(sum(x, axes, true), shape);
}
