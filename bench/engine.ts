// Engine overhead: one op through compile() against the same single-op ONNX model built by hand
// and run directly on ONNX Runtime, in the same process; and the cost of tracing, emitting and
// creating a session for a 1,000-node graph.
import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import * as T from '../src/tensor/index.js';
import { fmt, interleaved } from './util.js';

const { onnx } = onnxProto;
const THREADS = Number(process.env.SGM_BENCH_THREADS ?? 2);

function randomF32(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

function vi(name: string, shape: number[]) {
  return { name, type: { tensorType: { elemType: 1, shape: { dim: shape.map((d) => ({ dimValue: d })) } } } };
}

/** A one-node model written directly with onnx-proto: the baseline. */
async function handModel(op: 'Conv' | 'MatMul', xShape: number[], w: Float32Array, wShape: number[], yShape: number[], attrs: object[]) {
  const model = onnx.ModelProto.create({
    irVersion: 10,
    opsetImport: [{ domain: '', version: 21 }],
    graph: {
      name: 'hand',
      node: [{ opType: op, input: ['x', 'w'], output: ['y'], attribute: attrs }],
      input: [vi('x', xShape)],
      output: [vi('y', yShape)],
      initializer: [{ name: 'w', dims: wShape, dataType: 1, rawData: new Uint8Array(w.buffer, w.byteOffset, w.byteLength) }],
    },
  });
  return ort.InferenceSession.create(onnx.ModelProto.encode(model).finish(), {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: THREADS,
  });
}

async function compare(label: string, gflop: number, hand: ort.InferenceSession, xShape: number[], ours: T.CompiledFunction<T.Tensor>) {
  const x = randomF32(xShape.reduce((a, b) => a * b, 1), 7);
  const feed = { x: new ort.Tensor('float32', x, xShape) };
  // Same numbers first.
  const a = (await hand.run(feed)).y!.data as Float32Array;
  const b = (await (await ours(x)).data()) as Float32Array;
  let maxDiff = 0;
  for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
  const t = await interleaved({ hand: () => hand.run(feed), compile: () => ours(x) }, 9, 2);
  const ratio = t.compile!.median / t.hand!.median;
  console.log(
    `${label}: ORT direct ${fmt(t.hand!.median)} (${(gflop / (t.hand!.median / 1000)).toFixed(0)} GFLOP/s), ` +
      `compile() ${fmt(t.compile!.median)} (${(gflop / (t.compile!.median / 1000)).toFixed(0)} GFLOP/s), ` +
      `overhead ratio ${ratio.toFixed(3)}, max |diff| ${maxDiff.toExponential(2)}`,
  );
  return ratio;
}

export async function run(): Promise<void> {
  T.setRuntimeDefaults({ threads: THREADS });
  console.log(`engine bench, ${THREADS} intra-op threads`);

  // 3x3 conv, 2x320x64x64, 320 -> 320 (an SD UNet level-1 conv).
  {
    const xShape = [2, 320, 64, 64];
    const wShape = [320, 320, 3, 3];
    const w = randomF32(320 * 320 * 9, 3);
    const hand = await handModel('Conv', xShape, w, wShape, xShape, [
      { name: 'pads', type: 7, ints: [1, 1, 1, 1] },
    ]);
    const weight = new T.Variable(wShape, 'float32', { kind: 'host', dtype: 'float32', data: w });
    const ours = await T.compile((x) => T.conv(x, weight, null, { padding: 1 }), [{ shape: xShape }]);
    const gflop = (2 * 2 * 320 * 64 * 64 * 320 * 9) / 1e9;
    await compare('conv3x3 2x320x64x64', gflop, hand, xShape, ours);
  }

  // matmul 8192x640 @ 640x640.
  {
    const xShape = [8192, 640];
    const w = randomF32(640 * 640, 5);
    const hand = await handModel('MatMul', xShape, w, [640, 640], [8192, 640], []);
    const weight = new T.Variable([640, 640], 'float32', { kind: 'host', dtype: 'float32', data: w });
    const ours = await T.compile((x) => T.matmul(x, weight), [{ shape: xShape }]);
    const gflop = (2 * 8192 * 640 * 640) / 1e9;
    await compare('matmul 8192x640x640', gflop, hand, xShape, ours);
  }

  // Trace + emit + session creation for a 1,000-node graph.
  {
    const build = (x: T.Tensor): T.Tensor => {
      let y = x;
      for (let i = 0; i < 250; i++) y = T.add(T.mul(T.tanh(y), 0.5), T.mul(y, 0.25)); // 4 nodes per round
      return y;
    };
    const runs: Array<{ trace: number; total: number; create: number }> = [];
    for (let r = 0; r < 5; r++) {
      const t0 = performance.now();
      const x = T.symbolicInput('x', [64], 'float32');
      const y = build(x);
      const t1 = performance.now();
      void y;
      // A fresh constant per round defeats the session cache, so each round really creates one.
      const f = await T.compile((u) => T.add(build(u), r), [{ shape: [64] }]);
      const t2 = performance.now();
      runs.push({ trace: t1 - t0, total: t2 - t1, create: f.createMs });
      await f.release();
    }
    runs.sort((a, b) => a.total - b.total);
    const m = runs[runs.length >> 1]!;
    console.log(
      `1,000-node graph: trace ${fmt(m.trace)}, compile total (trace + emit + session) ${fmt(m.total)}, of which emit + session ${fmt(m.create)}`,
    );
  }
}
