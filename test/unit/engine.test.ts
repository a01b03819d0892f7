// Engine behaviour: external-data weights, session caching, variables as inputs, errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.js';
import { lcg, randomArray } from '../helpers/gradcheck.js';

test('weights become external data: the model proto stays small', async () => {
  const w = new T.Variable([1024, 1024], 'float32', { kind: 'host', dtype: 'float32', data: randomArray(1024 * 1024, lcg(1)) });
  const f = await T.compile((x) => T.matmul(x, w), [{ shape: [2, 1024] }]);
  assert.ok(f.modelBytes < 10_000, `model proto has ${f.modelBytes} bytes; 4 MiB of weights must live outside it`);
  const x = randomArray(2 * 1024, lcg(2));
  const y = (await (await f(x)).data()) as Float32Array;
  const wd = (w.storage as { data: Float32Array }).data;
  let s = 0;
  for (let k = 0; k < 1024; k++) s += x[k]! * wd[k * 1024 + 3]!;
  assert.ok(Math.abs(y[3]! - s) < 1e-3);
  await f.release();
});

test('eager evaluation reuses sessions across values and memoises results', async () => {
  const before = T.engineStats.sessionsCreated;
  const mk = (seed: number) => T.tensor(randomArray(100, lcg(seed)), [10, 10]);
  const a = T.exp(mk(1));
  const b = T.exp(mk(2));
  await a.data();
  await b.data();
  assert.equal(T.engineStats.sessionsCreated - before, 1, 'same structure, other values: one session');
  const runs = T.engineStats.runs;
  await a.data();
  assert.equal(T.engineStats.runs, runs, 'a second data() is memoised');
  // A later graph starts from the evaluated tensor instead of recomputing it.
  const c = T.add(a, 1);
  const cv = (await c.data()) as Float32Array;
  const av = (await a.data()) as Float32Array;
  assert.ok(Math.abs(cv[5]! - (av[5]! + 1)) < 1e-6);
});

test('variables as graph inputs (training mode) are read at every run', async () => {
  const v = new T.Variable([3], 'float32', { kind: 'host', dtype: 'float32', data: new Float32Array([1, 2, 3]) });
  const f = await T.compile((x) => T.mul(x, v), [{ shape: [3] }], { variables: 'inputs' });
  assert.deepEqual(await (await f(new Float32Array([1, 1, 1]))).toArray(), [1, 2, 3]);
  const created = T.engineStats.sessionsCreated;
  v.assign(new Float32Array([4, 5, 6]));
  assert.deepEqual(await (await f(new Float32Array([1, 1, 1]))).toArray(), [4, 5, 6]);
  assert.equal(T.engineStats.sessionsCreated, created, 'no new session for new values');
});

test('baked variables are rebuilt when reassigned; lazy and empty storage', async () => {
  let draws = 0;
  const v = new T.Variable([2], 'float32', {
    kind: 'lazy',
    dtype: 'float32',
    init: () => {
      draws++;
      return new Float32Array([7, 8]);
    },
  });
  assert.equal(draws, 0, 'lazy init is deferred');
  const f = await T.compile((x) => T.add(x, v), [{ shape: [2] }]);
  assert.equal(draws, 1);
  assert.deepEqual(await (await f(new Float32Array([1, 1]))).toArray(), [8, 9]);
  v.assign(new Float32Array([0, 0]));
  assert.deepEqual(await (await f(new Float32Array([1, 1]))).toArray(), [1, 1]);
  const empty = new T.Variable([2], 'float32', { kind: 'empty', dtype: 'float32' });
  empty.name = 'model.diffusion_model.out.2.bias';
  await assert.rejects(T.compile((x) => T.add(x, empty), [{ shape: [2] }]), /model\.diffusion_model\.out\.2\.bias has no value/);
});

test('compiled functions check their inputs and traced inputs cannot escape', async () => {
  const f = await T.compile((x, y) => T.add(x, y), [{ shape: [2], name: 'x' }, { shape: [2], dtype: 'int64', name: 'y' }]).catch((e) => e);
  assert.ok(f instanceof Error && /dtype mismatch/.test(f.message), 'build-time dtype check');
  const g = await T.compile((x) => T.mul(x, 2), [{ shape: [2, 2], name: 'latent' }]);
  await assert.rejects(g(new Float32Array(3)), /input "latent": expected 4 elements/);
  await assert.rejects(g(T.zeros([4])), /input "latent": expected float32\[2, 2\], got float32\[4\]/);
  let leaked: T.Tensor | null = null;
  await T.compile((x) => {
    leaked = T.exp(x);
    return leaked;
  }, [{ shape: [1] }]);
  await assert.rejects(leaked!.data(), /traced input "x0" outside compile/);
});

test('ShapeErrors name the op and the shapes', () => {
  assert.throws(() => T.add(T.zeros([2, 3]), T.zeros([4])), /add: shapes \[2, 3\] and \[4\] do not broadcast/);
  assert.throws(() => T.matmul(T.zeros([2, 3]), T.zeros([4, 5])), /matmul: inner dimensions differ: \[2, 3\] @ \[4, 5\]/);
  assert.throws(() => T.conv(T.zeros([1, 3, 8, 8]), T.zeros([4, 2, 3, 3])), /conv: weight \[4, 2, 3, 3\] expects 2 input channels, input \[1, 3, 8, 8\] has 3/);
});
