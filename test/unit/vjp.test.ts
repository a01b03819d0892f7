// Every VJP rule against central finite differences, on shapes that exercise broadcasting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.js';
import { gradCheck, lcg, randomArray } from '../helpers/gradcheck.js';

const t = T;

test('elementwise binary ops with broadcasting', async () => {
  await gradCheck('add', (a, b) => t.add(a, b), [[2, 3, 1], [1, 4]]);
  await gradCheck('sub', (a, b) => t.sub(a, b), [[3, 1], [2, 1, 4]]);
  await gradCheck('mul', (a, b) => t.mul(a, b), [[2, 3, 4], [3, 1]]);
  await gradCheck('div', (a, b) => t.div(a, b), [[2, 3], [3]], { data: [randomArray(6, lcg(1)), Float32Array.from([1.5, -2, 0.8])] });
  await gradCheck('pow tensor exponent', (a, b) => t.pow(a, b), [[2, 3], [1, 3]], {
    data: [randomArray(6, lcg(2), 0.5, 2), randomArray(3, lcg(3), -1.5, 2)],
  });
  await gradCheck('maximum', (a, b) => t.maximum(a, b), [[2, 3], [3]]);
  await gradCheck('minimum', (a, b) => t.minimum(a, b), [[4], [2, 1]]);
  await gradCheck('scalar operand', (a) => t.div(t.sub(3, a), 2), [[5]]);
});

test('where and clamp', async () => {
  await gradCheck('where', (a, b) => t.where(t.gt(a, 0.1), a, t.mul(b, 2)), [[2, 3], [3]]);
  await gradCheck('clamp both', (a) => t.clamp(a, -0.5, 0.4), [[3, 4]], { data: [Float32Array.from([-0.9, -0.3, 0, 0.2, 0.6, 0.9, -0.7, 0.35, -0.2, 0.1, 0.8, -0.45])] });
  await gradCheck('clamp min', (a) => t.clamp(a, 0.25), [[6]], { data: [Float32Array.from([-1, 0, 0.3, 0.5, 0.9, 0.1])] });
});

test('unary math', async () => {
  const pos = { lo: 0.3, hi: 2 };
  await gradCheck('neg', (a) => t.neg(a), [[4]]);
  await gradCheck('exp', (a) => t.exp(a), [[2, 3]]);
  await gradCheck('log', (a) => t.log(a), [[2, 3]], pos);
  await gradCheck('sqrt', (a) => t.sqrt(a), [[2, 3]], pos);
  await gradCheck('rsqrt', (a) => t.rsqrt(a), [[2, 3]], pos);
  await gradCheck('reciprocal', (a) => t.reciprocal(a), [[2, 3]], pos);
  await gradCheck('pow 1.7', (a) => t.pow(a, 1.7), [[2, 3]], pos);
  await gradCheck('pow 3', (a) => t.pow(a, 3), [[2, 3]]);
  await gradCheck('pow -2', (a) => t.pow(a, -2), [[2, 3]], pos);
  await gradCheck('sin', (a) => t.sin(a), [[7]], { lo: -3, hi: 3 });
  await gradCheck('cos', (a) => t.cos(a), [[7]], { lo: -3, hi: 3 });
  await gradCheck('tanh', (a) => t.tanh(a), [[7]], { lo: -2, hi: 2 });
  await gradCheck('sigmoid', (a) => t.sigmoid(a), [[7]], { lo: -3, hi: 3 });
  await gradCheck('abs', (a) => t.abs(a), [[6]], { data: [Float32Array.from([-1, -0.5, -0.2, 0.3, 0.7, 1.1])] });
  await gradCheck('erf', (a) => t.erf(a), [[7]], { lo: -2, hi: 2 });
  await gradCheck('relu', (a) => t.relu(a), [[6]], { data: [Float32Array.from([-1, -0.5, -0.2, 0.3, 0.7, 1.1])] });
  await gradCheck('gelu exact', (a) => t.gelu(a), [[9]], { lo: -3, hi: 3 });
  await gradCheck('gelu tanh', (a) => t.gelu(a, 'tanh'), [[9]], { lo: -3, hi: 3 });
  await gradCheck('silu', (a) => t.silu(a), [[9]], { lo: -3, hi: 3 });
  await gradCheck('cast f32->f64->f32', (a) => t.cast(t.mul(t.cast(a, 'float64'), 3), 'float32'), [[4]]);
});

test('reductions and scans', async () => {
  await gradCheck('sum axes keepdim', (a) => t.sum(a, [0, 2], true), [[2, 3, 4]]);
  await gradCheck('sum all', (a) => t.sum(a), [[2, 3]]);
  await gradCheck('mean', (a) => t.mean(a, [1]), [[2, 3, 4]]);
  await gradCheck('max', (a) => t.max(a, [1]), [[3, 5]]);
  await gradCheck('min keepdim', (a) => t.min(a, [0], true), [[3, 5]]);
  await gradCheck('var', (a) => t.variance(a, [1, 2]), [[2, 3, 4]]);
  await gradCheck('cumsum', (a) => t.cumsum(a, 1), [[2, 5]]);
  await gradCheck('cumsum reverse', (a) => t.cumsum(a, 0, true), [[4, 2]]);
  await gradCheck('cumprod', (a) => t.cumprod(a, 1), [[2, 4]], { lo: 0.5, hi: 1.5 });
});

test('matmul and linear', async () => {
  await gradCheck('matmul batch broadcast', (a, b) => t.matmul(a, b), [[2, 1, 3, 4], [3, 4, 2]]);
  await gradCheck('matmul vector-matrix', (a, b) => t.matmul(a, b), [[4], [4, 3]]);
  await gradCheck('matmul matrix-vector', (a, b) => t.matmul(a, b), [[2, 3, 4], [4]]);
  await gradCheck('linear', (x, w, b) => t.linear(x, w, b), [[2, 5, 4], [3, 4], [3]]);
});

test('convolutions', async () => {
  await gradCheck('conv1d stride pad', (x, w, b) => t.conv(x, w, b, { stride: 2, padding: 1 }), [[2, 3, 9], [4, 3, 3], [4]]);
  await gradCheck('conv2d', (x, w, b) => t.conv(x, w, b, { padding: 1 }), [[2, 3, 5, 5], [4, 3, 3, 3], [4]]);
  await gradCheck('conv2d stride dilation', (x, w) => t.conv(x, w, null, { stride: [2, 1], padding: [1, 2], dilation: [1, 2] }), [[1, 2, 7, 6], [3, 2, 3, 3]]);
  await gradCheck('conv2d groups', (x, w) => t.conv(x, w, null, { groups: 2, padding: 1, stride: 2 }), [[2, 4, 6, 6], [6, 2, 3, 3]]);
  await gradCheck('conv2d asymmetric pads', (x, w) => t.conv(x, w, null, { padding: [0, 1, 1, 0] }), [[1, 2, 5, 5], [2, 2, 3, 3]]);
  await gradCheck('conv2d 1x1', (x, w, b) => t.conv(x, w, b), [[2, 3, 4, 5], [2, 3, 1, 1], [2]]);
  await gradCheck('conv3d', (x, w, b) => t.conv(x, w, b, { padding: [1, 0, 1] }), [[1, 2, 3, 4, 4], [3, 2, 3, 1, 3], [3]]);
  await gradCheck('conv_transpose1d', (x, w, b) => t.convTranspose(x, w, b, { stride: 2, padding: 1, outputPadding: 1 }), [[2, 3, 4], [3, 2, 3], [2]]);
  await gradCheck('conv_transpose2d groups', (x, w) => t.convTranspose(x, w, null, { stride: 2, groups: 2, padding: 1 }), [[1, 4, 3, 3], [4, 3, 3, 3]]);
  await gradCheck('conv_transpose2d dilation', (x, w) => t.convTranspose(x, w, null, { dilation: 2 }), [[1, 2, 3, 3], [2, 2, 2, 2]]);
});

test('pooling and resampling', async () => {
  await gradCheck('avg_pool2d', (x) => t.avgPool(x, 2), [[1, 2, 4, 6]]);
  await gradCheck('avg_pool2d pad include', (x) => t.avgPool(x, 3, { stride: 2, padding: 1 }), [[1, 2, 5, 5]]);
  await gradCheck('avg_pool2d pad exclude', (x) => t.avgPool(x, 3, { stride: 2, padding: 1, countIncludePad: false }), [[1, 2, 5, 5]]);
  await gradCheck('avg_pool1d', (x) => t.avgPool(x, 2, { stride: 1 }), [[2, 2, 5]]);
  await gradCheck('avg_pool3d', (x) => t.avgPool(x, [1, 2, 2]), [[1, 1, 2, 4, 4]]);
  await gradCheck('upsample nearest', (x) => t.upsampleNearest(x, 2), [[1, 2, 3, 3]]);
  await gradCheck('upsample nearest 3d', (x) => t.upsampleNearest(x, [1, 2, 2]), [[1, 1, 2, 2, 3]]);
});

test('normalisation, softmax, attention', async () => {
  await gradCheck('group_norm', (x, w, b) => t.groupNorm(x, 2, w, b, 1e-5), [[2, 4, 3, 3], [4], [4]]);
  await gradCheck('group_norm 1d', (x) => t.groupNorm(x, 3), [[2, 6, 5]]);
  await gradCheck('layer_norm', (x, w, b) => t.layerNorm(x, [4], w, b), [[2, 3, 4], [4], [4]]);
  await gradCheck('layer_norm 2 dims', (x) => t.layerNorm(x, [3, 4]), [[2, 3, 4]]);
  await gradCheck('softmax', (x) => t.softmax(x, 1), [[2, 5, 3]]);
  await gradCheck('log_softmax', (x) => t.logSoftmax(x, -1), [[3, 5]]);
  await gradCheck('attention', (q, k, v) => t.scaledDotProductAttention(q, k, v), [[2, 3, 4], [2, 5, 4], [2, 5, 6]]);
  const mask = t.tensor(Uint8Array.from([1, 1, 0, 1, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1, 1]), [3, 5], 'bool');
  await gradCheck('attention bool mask', (q, k, v) => t.scaledDotProductAttention(q, k, v, { mask }), [[2, 3, 4], [2, 5, 4], [2, 5, 4]]);
  await gradCheck('attention additive mask', (q, k, v, m) => t.scaledDotProductAttention(q, k, v, { mask: m, scale: 0.3 }), [[1, 2, 3, 4], [1, 2, 5, 4], [1, 2, 5, 4], [3, 5]]);
});

test('shape ops', async () => {
  await gradCheck('reshape', (x) => t.mul(t.reshape(x, [3, -1]), t.tensor([1, 2, 3, 4], [4])), [[2, 6]]);
  await gradCheck('permute', (x) => t.permute(x, [2, 0, 1]), [[2, 3, 4]]);
  await gradCheck('expand', (x) => t.expand(x, [2, 3, 4]), [[3, 1]]);
  await gradCheck('slice', (x) => t.slice(x, 1, 1, 4), [[2, 5]]);
  await gradCheck('slice step 2', (x) => t.slice(x, 1, 1, undefined, 2), [[2, 6, 2]]);
  await gradCheck('slice step 3 end', (x) => t.slice(x, 0, 0, 7, 3), [[8, 2]]);
  await gradCheck('slice negative step', (x) => t.slice(x, 0, undefined, undefined, -2), [[5, 2]]);
  await gradCheck('flip', (x) => t.flip(x, [0, 2]), [[2, 3, 2]]);
  await gradCheck('concat', (a, b) => t.concat([a, b, a], 1), [[2, 1, 3], [2, 2, 3]]);
  await gradCheck('stack', (a, b) => t.stack([a, b], 1), [[2, 3], [2, 3]]);
  await gradCheck('split/chunk', (x) => {
    const [p, q, r] = t.chunk(x, 3, 1);
    return t.add(t.mul(p!, 2), t.sub(q!, r!));
  }, [[2, 6]]);
  await gradCheck('pad', (x) => t.pad(x, [1, 2, 0, 1], 0.5), [[2, 3, 4]]);
  await gradCheck('pad negative', (x) => t.pad(x, [-1, 2]), [[2, 4]]);
  const idx = t.tensor([2, 0, 2, -1], [2, 2], 'int64');
  await gradCheck('gather multi-d negative', (x) => t.gather(x, 1, idx), [[2, 4, 3]]);
  await gradCheck('index_select', (x) => t.indexSelect(x, 0, t.tensor([1, 1, 0], [3], 'int64')), [[3, 2]]);
  await gradCheck('embedding', (w) => t.embedding(w, t.tensor([0, 3, 3, 1], [2, 2], 'int64')), [[4, 3]]);
  await gradCheck('index_add', (x, s) => t.indexAdd(x, 1, t.tensor([0, 2, 0], [3], 'int64'), s), [[2, 3], [2, 3]]);
});

test('every differentiable primitive has a VJP rule', async () => {
  // Build one node of each primitive and check that the autodiff covers it.
  const { hasEmitter } = await import('../../src/tensor/emit.js');
  const ops = [
    'add', 'sub', 'mul', 'div', 'pow', 'pow_scalar', 'maximum', 'minimum', 'where', 'neg', 'exp', 'log', 'sqrt', 'rsqrt',
    'reciprocal', 'sin', 'cos', 'tanh', 'sigmoid', 'abs', 'erf', 'relu', 'clamp', 'gelu', 'cast', 'sum', 'mean', 'max', 'min',
    'cumsum', 'matmul', 'conv', 'conv_transpose', 'avg_pool', 'group_norm', 'layer_norm', 'softmax', 'log_softmax',
    'attention', 'reshape', 'permute', 'expand', 'slice', 'flip', 'concat', 'pad', 'gather', 'index_add',
    'eq', 'lt', 'le', 'gt', 'ge', 'logical_and', 'logical_or', 'logical_not', 'argmax', 'floor', 'ceil', 'round', 'sign', 'detach',
  ];
  for (const op of ops) {
    assert.ok(hasEmitter(op), `op ${op} has no ONNX emitter`);
    assert.ok(T.hasVJP(op), `op ${op} has no VJP rule and is not marked non-differentiable`);
  }
});

test('gradients: unused inputs get zeros, intermediates can be targets, detach blocks', async () => {
  const x = t.tensor([1, 2, 3]);
  const y = t.tensor([4, 5, 6]);
  const h = t.mul(x, x);
  const loss = t.sum(t.add(t.mul(h, 2), t.detach(t.mul(x, 10))));
  const [gx, gy, gh] = T.gradients(loss, [x, y, h]);
  // x's gradient flows through h (2 * 2x); the detached branch adds nothing.
  assert.deepEqual(await gx!.toArray(), [4, 8, 12]);
  assert.deepEqual(await gy!.toArray(), [0, 0, 0]);
  assert.deepEqual(await gh!.toArray(), [2, 2, 2]);
});
