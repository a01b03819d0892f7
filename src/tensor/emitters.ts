// ONNX emission of every primitive op (opset 21). Kept apart from the builders in ops.ts so that
// building a graph never depends on how it is run.
import { bytesOf, ONNX_ELEM_TYPE, type DType } from './dtype.js';
import { registerEmitter as reg, type Emitter } from './emit.js';
import type { Tensor } from './tensor.js';

const simple: Record<string, string> = {
  add: 'Add',
  sub: 'Sub',
  mul: 'Mul',
  div: 'Div',
  pow: 'Pow',
  maximum: 'Max',
  minimum: 'Min',
  eq: 'Equal',
  lt: 'Less',
  le: 'LessOrEqual',
  gt: 'Greater',
  ge: 'GreaterOrEqual',
  logical_and: 'And',
  logical_or: 'Or',
  logical_not: 'Not',
  where: 'Where',
  neg: 'Neg',
  exp: 'Exp',
  log: 'Log',
  sqrt: 'Sqrt',
  reciprocal: 'Reciprocal',
  sin: 'Sin',
  cos: 'Cos',
  tanh: 'Tanh',
  sigmoid: 'Sigmoid',
  abs: 'Abs',
  erf: 'Erf',
  relu: 'Relu',
  floor: 'Floor',
  ceil: 'Ceil',
  round: 'Round',
  sign: 'Sign',
  detach: 'Identity',
  matmul: 'MatMul',
  concat: 'Concat',
};

for (const [op, onnxOp] of Object.entries(simple)) {
  reg(op, (e, t, ins, out) => {
    e.node(onnxOp, ins, op === 'concat' ? { axis: t.attrs.axis as number } : {}, out);
  });
}

const num = (t: Tensor, k: string): number => t.attrs[k] as number;
const nums = (t: Tensor, k: string): number[] => t.attrs[k] as number[];

reg('rsqrt', (e, _t, [x], out) => {
  // torch computes 1 / sqrt(x) with a correctly rounded division.
  e.node('Reciprocal', [e.node('Sqrt', [x!])], {}, out);
});

reg('pow_scalar', (e, t, [x], out) => {
  e.node('Pow', [x!, e.scalar(num(t, 'p'), t.dtype)], {}, out);
});

reg('clamp', (e, t, [x], out) => {
  const lo = t.attrs.min as number | null;
  const hi = t.attrs.max as number | null;
  e.node('Clip', [x!, lo === null ? '' : e.scalar(lo, t.dtype), hi === null ? '' : e.scalar(hi, t.dtype)], {}, out);
});

reg('gelu', (e, t, [x], out) => {
  e.node('Gelu', [x!], { approximate: t.attrs.approximate as string }, out);
});

reg('cast', (e, t, [x], out) => {
  e.node('Cast', [x!], { to: ONNX_ELEM_TYPE[t.attrs.to as DType] }, out);
});

const reduceOps: Record<string, string> = { sum: 'ReduceSum', mean: 'ReduceMean', max: 'ReduceMax', min: 'ReduceMin' };
for (const [op, onnxOp] of Object.entries(reduceOps)) {
  reg(op, (e, t, [x], out) => {
    e.node(onnxOp, [x!, e.int64(nums(t, 'axes'))], { keepdims: t.attrs.keepdim ? 1 : 0 }, out);
  });
}

reg('argmax', (e, t, [x], out) => {
  e.node('ArgMax', [x!], { axis: num(t, 'axis'), keepdims: t.attrs.keepdim ? 1 : 0 }, out);
});

reg('cumsum', (e, t, [x], out) => {
  e.node('CumSum', [x!, e.int64([num(t, 'axis')], true)], { reverse: t.attrs.reverse ? 1 : 0 }, out);
});

reg('conv', (e, t, ins, out) => {
  e.node('Conv', ins, { strides: nums(t, 'stride'), pads: nums(t, 'pads'), dilations: nums(t, 'dilation'), group: num(t, 'groups') }, out);
});

reg('conv_transpose', (e, t, ins, out) => {
  e.node(
    'ConvTranspose',
    ins,
    {
      strides: nums(t, 'stride'),
      pads: nums(t, 'pads'),
      dilations: nums(t, 'dilation'),
      group: num(t, 'groups'),
      output_padding: nums(t, 'outputPadding'),
    },
    out,
  );
});

reg('avg_pool', (e, t, [x], out) => {
  e.node(
    'AveragePool',
    [x!],
    { kernel_shape: nums(t, 'kernel'), strides: nums(t, 'stride'), pads: nums(t, 'pads'), count_include_pad: t.attrs.countIncludePad ? 1 : 0 },
    out,
  );
});

/** A float32 vector constant (an initializer in the model proto), shared within one model. */
const f32Consts = new WeakMap<Emitter, Map<string, string>>();
function f32vec(e: Emitter, values: readonly number[]): string {
  let cache = f32Consts.get(e);
  if (!cache) f32Consts.set(e, (cache = new Map()));
  const key = values.join(',');
  let name = cache.get(key);
  if (!name) {
    name = e.rawInitializer(e.fresh('c'), 'float32', [values.length], bytesOf(new Float32Array(values)));
    cache.set(key, name);
  }
  return name;
}

reg('group_norm', (e, t, [x, w, b], out) => {
  const groups = num(t, 'groups');
  const eps = num(t, 'eps');
  if (t.dtype !== 'float32') {
    // ONNX Runtime's CPU provider has float kernels only for the two ops below; other dtypes take
    // the GroupNormalization function (expanded by ONNX Runtime into about ten full-size passes).
    e.node('GroupNormalization', [x!, w!, b!], { num_groups: groups, epsilon: { float: eps } }, out);
    return;
  }
  // Statistics per (sample, group) with InstanceNormalization over (N, G, -1) (scale 1, bias 0:
  // a mean pass, then the sum of squared deviations, then (x - mean) * rstd), then the per-channel
  // affine as one BatchNormalization pass (mean 0, var 1, epsilon 0: exactly y * w + b).
  const x0 = t.inputs[0]!;
  const [n, c] = x0.shape as [number, number];
  const xg = e.node('Reshape', [x!, e.int64([n, groups, -1])]);
  const ng = e.node('InstanceNormalization', [xg, f32vec(e, new Array<number>(groups).fill(1)), f32vec(e, new Array<number>(groups).fill(0))], {
    epsilon: { float: eps },
  });
  const nc = e.node('Reshape', [ng, e.int64(x0.shape)]);
  const zeros = f32vec(e, new Array<number>(c).fill(0));
  const ones = f32vec(e, new Array<number>(c).fill(1));
  e.node('BatchNormalization', [nc, w!, b!, zeros, ones], { epsilon: { float: 0 } }, out);
});

reg('layer_norm', (e, t, [x, w, b], out) => {
  e.node('LayerNormalization', [x!, w!, b!], { axis: num(t, 'axis'), epsilon: { float: num(t, 'eps') } }, out);
});

reg('softmax', (e, t, [x], out) => {
  e.node('Softmax', [x!], { axis: num(t, 'axis') }, out);
});

reg('log_softmax', (e, t, [x], out) => {
  e.node('LogSoftmax', [x!], { axis: num(t, 'axis') }, out);
});

function lastTwoSwapped(n: number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  p[n - 2] = n - 1;
  p[n - 1] = n - 2;
  return p;
}

/** Attention as MatMul-Softmax-MatMul, the same math (and order) as the reference's einsum path. */
export function emitAttentionScores(e: Emitter, t: Tensor, q: string, k: string, mask: string | undefined): string {
  const q0 = t.inputs[0]!;
  const kt = e.node('Transpose', [k], { perm: lastTwoSwapped(q0.ndim) });
  let s = e.node('Mul', [e.node('MatMul', [q, kt]), e.scalar(num(t, 'scale'), t.dtype)]);
  if (mask !== undefined) {
    const m = t.inputs[3]!;
    s = m.dtype === 'bool' ? e.node('Where', [mask, s, e.scalar(-Infinity, t.dtype)]) : e.node('Add', [s, mask]);
  }
  return e.node('Softmax', [s], { axis: -1 });
}

reg('attention', (e, t, [q, k, v, mask], out) => {
  const p = emitAttentionScores(e, t, q!, k!, mask);
  e.node('MatMul', [p, v!], {}, out);
});

reg('reshape', (e, t, [x], out) => {
  e.node('Reshape', [x!, e.int64(nums(t, 'shape'))], {}, out);
});

reg('permute', (e, t, [x], out) => {
  e.node('Transpose', [x!], { perm: nums(t, 'perm') }, out);
});

/**
 * An expand that only repeats elements in place, [..., d, 1] -> [..., d, f] (the form of nearest
 * upsampling), as the equivalent nearest Resize: out[o] = in[floor(o / f)] along each scaled dim.
 * ONNX Runtime's Expand writes such outputs one element at a time, 20-30x slower than its Resize.
 * Returns the shape (4-d) and scales of that Resize, or null when the expand is another broadcast.
 */
function nearestForm(inShape: readonly number[], outShape: readonly number[]): { shape: number[]; scales: number[] } | null {
  const r = outShape.length;
  const src = [...new Array<number>(r - inShape.length).fill(1), ...inShape];
  const expanded = src.map((d, i) => d !== outShape[i]);
  if (!expanded[r - 1] || expanded[0]) return null;
  // Each run of expanded dims scales the dim before it. Unscaled dims before the first such dim
  // form one leading dim; unscaled dims between two scaled ones merge into the later one (for
  // sizes [p, d] scaled by [1, f]: floor((p' * d * f + q) / f) = p' * d + floor(q / f)).
  const shape: number[] = [1];
  const scales: number[] = [1];
  let pending = 1;
  for (let i = 0; i < r; ) {
    let j = i + 1;
    let f = 1;
    for (; j < r && expanded[j]; j++) f *= outShape[j]!;
    if (f === 1) {
      pending *= src[i]!;
    } else if (shape.length === 1) {
      shape[0] = pending;
      shape.push(src[i]!);
      scales.push(f);
    } else {
      shape.push(pending * src[i]!);
      scales.push(f);
    }
    if (f !== 1) pending = 1;
    i = j;
  }
  // Large factors are broadcasts (a bias over a map): Expand fills those in long runs, faster.
  if (shape.length > 4 || scales.some((f) => f > 16)) return null;
  while (shape.length < 4) {
    shape.unshift(1);
    scales.unshift(1);
  }
  return { shape, scales };
}

reg('expand', (e, t, [x], out) => {
  const form = t.dtype === 'float32' ? nearestForm(t.inputs[0]!.shape, t.shape) : null;
  if (form) {
    const xr = e.node('Reshape', [x!, e.int64(form.shape)]);
    const y = e.node('Resize', [xr, '', f32vec(e, form.scales)], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
    e.node('Reshape', [y, e.int64(t.shape)], {}, out);
    return;
  }
  e.node('Expand', [x!, e.int64(nums(t, 'shape'))], {}, out);
});

reg('slice', (e, t, [x], out) => {
  e.node('Slice', [x!, e.int64([num(t, 'start')]), e.int64([num(t, 'end')]), e.int64([num(t, 'axis')]), e.int64([num(t, 'step')])], {}, out);
});

reg('flip', (e, t, [x], out) => {
  const axes = nums(t, 'axes');
  const x0 = t.inputs[0]!;
  e.node(
    'Slice',
    [x!, e.int64(axes.map(() => -1)), e.int64(axes.map((a) => -(x0.shape[a]! + 1))), e.int64(axes), e.int64(axes.map(() => -1))],
    {},
    out,
  );
});

reg('pad', (e, t, [x], out) => {
  e.node('Pad', [x!, e.int64([...nums(t, 'before'), ...nums(t, 'after')]), e.scalar(num(t, 'value'), t.dtype)], { mode: 'constant' }, out);
});

reg('gather', (e, t, [x, idx], out) => {
  e.node('Gather', [x!, idx!], { axis: num(t, 'axis') }, out);
});

reg('index_add', (e, t, [x, idx, src], out) => {
  // Move `axis` to the front, ScatterND with reduction=add over rows, move it back.
  const a = num(t, 'axis');
  const x0 = t.inputs[0]!;
  const i0 = t.inputs[1]!;
  const nd = x0.ndim;
  const toFront = [a, ...Array.from({ length: nd }, (_, i) => i).filter((i) => i !== a)];
  const back = toFront.map((_, i) => toFront.indexOf(i));
  const xt = e.node('Transpose', [x!], { perm: toFront });
  const ni = i0.ndim;
  // source: pre + I + post  ->  I + pre + post
  const srcPerm = [
    ...Array.from({ length: ni }, (_, i) => a + i),
    ...Array.from({ length: a }, (_, i) => i),
    ...Array.from({ length: nd - a - 1 }, (_, i) => a + ni + i),
  ];
  const st = e.node('Transpose', [src!], { perm: srcPerm });
  const k = i0.shape.reduce((p, d) => p * d, 1);
  const rest = toFront.slice(1).map((d) => x0.shape[d]!);
  const sr = e.node('Reshape', [st, e.int64([k, ...rest])]);
  // ScatterND wants non-negative row indices; Gather accepted negative ones.
  const n = e.int64([x0.shape[a]!], true);
  const zero = e.int64([0], true);
  const pos = e.node('Where', [e.node('Less', [idx!, zero]), e.node('Add', [idx!, n]), idx!]);
  const ir = e.node('Reshape', [pos, e.int64([k, 1])]);
  const sc = e.node('ScatterND', [xt, ir, sr], { reduction: 'add' });
  e.node('Transpose', [sc], { perm: back }, out);
});
