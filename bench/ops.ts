// Memory-bound and conv ops at the SDXL VAE decoder's largest sizes, each through compile():
// group_norm (32 groups, eps 1e-6, affine), silu, group_norm then silu, 3x3 conv (C -> C, bias),
// add. Two figures per case, from interleaved runs (so that the machine's drift hits all alike):
//   single    median of one op in its own graph: what compile() costs end to end, including
//             copying the output into JavaScript (for a 128 MiB output that alone is tens of ms);
//   in graph  the marginal cost of the op inside a graph, what it costs inside a network: the
//             median over rounds of (t(sum(op(op(op(x))))) - t(sum(op(x)))) / 2, whose graphs
//             return a scalar, so neither the output copy nor the final sum counts.
// GB/s counts each op's compulsory traffic (inputs read once, output written once); GFLOP/s
// counts 2 * Cin * Cout * 9 * H * W for the conv.
//   npm run bench -- ops                        all sizes
//   SGM_BENCH_SIZES=1x128x512x512 SGM_BENCH_REPS=15 npm run bench -- ops
import * as T from '../src/tensor/index.js';
import { fmt, interleaved, stats } from './util.js';

const THREADS = Number(process.env.SGM_BENCH_THREADS ?? 2);
const REPS = Number(process.env.SGM_BENCH_REPS ?? 9);
const SIZES = (process.env.SGM_BENCH_SIZES ?? '1x128x512x512,1x256x256x256,1x512x64x64').split(',').map((s) => s.split('x').map(Number));

function randomF32(n: number, seed: number, scale = 1, offset = 0): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = offset + scale * (s / 4294967296 - 0.5);
  }
  return a;
}

function hostVar(data: Float32Array, shape: number[]): T.Variable {
  return new T.Variable(shape, 'float32', { kind: 'host', dtype: 'float32', data });
}

interface Case {
  name: string;
  /** One application of the op to x (y: a second input, used by add). */
  op: (x: T.Tensor, y: T.Tensor) => T.Tensor;
  /** Bytes of compulsory traffic, or FLOPs for the conv. */
  work: number;
  unit: 'GB/s' | 'GFLOP/s';
}

function chain(op: Case['op'], k: number): (x: T.Tensor, y: T.Tensor) => T.Tensor {
  return (x, y) => {
    let z = x;
    for (let i = 0; i < k; i++) z = op(z, y);
    return z;
  };
}

function rate(work: number, ms: number, unit: string): string {
  return `${(work / 1e9 / (ms / 1000)).toFixed(unit === 'GB/s' ? 1 : 0)} ${unit}`;
}

export async function run(): Promise<void> {
  T.setRuntimeDefaults({ threads: THREADS });
  console.log(`ops bench, ${THREADS} intra-op threads, median of ${REPS} interleaved runs`);
  for (const [n, c, h, w] of SIZES as [number, number, number, number][]) {
    const shape = [n, c, h, w];
    const numel = n * c * h * w;
    const bytes = numel * 4;
    const label = shape.join('x');
    const x = randomF32(numel, 7, 4, 0.5);
    const y = randomF32(numel, 11, 2);
    const gw = hostVar(randomF32(c, 3, 0.5, 1), [c]);
    const gb = hostVar(randomF32(c, 5, 0.5), [c]);
    const cw = hostVar(randomF32(c * c * 9, 13, 2 * Math.sqrt(3 / (c * 9))), [c, c, 3, 3]);
    const cb = hostVar(randomF32(c, 17, 0.1), [c]);
    const gn = (u: T.Tensor): T.Tensor => T.groupNorm(u, 32, gw, gb, 1e-6);
    const cases: Case[] = [
      { name: 'group_norm', op: (u) => gn(u), work: 2 * bytes, unit: 'GB/s' },
      { name: 'silu', op: (u) => T.silu(u), work: 2 * bytes, unit: 'GB/s' },
      { name: 'group_norm+silu', op: (u) => T.silu(gn(u)), work: 2 * bytes, unit: 'GB/s' },
      { name: 'conv3x3', op: (u) => T.conv(u, cw, cb, { padding: 1 }), work: 2 * c * c * 9 * n * h * w, unit: 'GFLOP/s' },
      { name: 'add', op: (u, v) => T.add(u, v), work: 3 * bytes, unit: 'GB/s' },
    ];
    for (const cs of cases) {
      const specs = [{ shape }, { shape }];
      const single = await T.compile(chain(cs.op, 1), specs, { name: `${cs.name}_single` });
      const one = await T.compile((u, v) => T.sum(chain(cs.op, 1)(u, v)), specs, { name: `${cs.name}_1` });
      const three = await T.compile((u, v) => T.sum(chain(cs.op, 3)(u, v)), specs, { name: `${cs.name}_3` });
      const t = await interleaved({ single: () => single(x, y), one: () => one(x, y), three: () => three(x, y) }, REPS, 1);
      const end = t.single!.median;
      const inGraph = stats(t.three!.runs.map((r, i) => (r - t.one!.runs[i]!) / 2)).median;
      const ig = inGraph > 0 ? `${fmt(inGraph).padStart(10)} per op (${rate(cs.work, inGraph, cs.unit)})` : `${fmt(inGraph).padStart(10)} (below the noise)`;
      console.log(`${cs.name.padEnd(15)} ${label.padEnd(14)} single ${fmt(end).padStart(10)} (${rate(cs.work, end, cs.unit)}), in graph ${ig}`);
      await single.release();
      await one.release();
      await three.release();
    }
  }
}
