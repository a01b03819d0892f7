// Benchmark helpers: medians over repeated runs after warm-up, A/B runs interleaved so that the
// machine's drift affects both sides alike. Figures are printed, never asserted.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as T from '../src/tensor/index.js';
import { SafetensorsWriter } from '../src/io/safetensors.js';
export interface Timing {
  median: number;
  min: number;
  runs: number[];
}

export function stats(runs: number[]): Timing {
  const s = [...runs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, runs };
}

/** Times `fns` interleaved: `warmup` untimed rounds, then `reps` timed rounds. Milliseconds. */
export async function interleaved(fns: Record<string, () => Promise<unknown>>, reps = 7, warmup = 2): Promise<Record<string, Timing>> {
  const names = Object.keys(fns);
  const runs: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < warmup + reps; r++) {
    for (const n of names) {
      const t0 = performance.now();
      await fns[n]!();
      const dt = performance.now() - t0;
      if (r >= warmup) runs[n]!.push(dt);
    }
  }
  return Object.fromEntries(names.map((n) => [n, stats(runs[n]!)]));
}

export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

export function fmt(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(2)} ms`;
}

// ------------------------------------------------------------------ added for bench/pipeline.ts

/** Peak resident set of this process in MiB from /proc/self/status VmHWM (Linux); null elsewhere. */
export function vmHwmMiB(): number | null {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** Median of a list (NaN when empty). */
export function median(xs: number[]): number {
  return xs.length ? stats(xs).median : NaN;
}

/**
 * Runs `node --import tsx <script> ...args` in a fresh process (peak RSS per case), output shown
 * as it comes. Returns the exit status (null when killed by a signal) and the signal.
 */
export function runInChild(script: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): { status: number | null; signal: NodeJS.Signals | null } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...args], { stdio: 'inherit', cwd: opts.cwd, env: opts.env ?? process.env });
  return { status: r.status, signal: r.signal };
}

/** How one tensor of a random checkpoint is filled. */
export interface RandomTensorSpec {
  name: string;
  shape: readonly number[];
  /** Storage dtype in the file. */
  dtype: 'F16' | 'F32' | 'I64';
  /** Fixed contents (host buffers such as position_ids), in the dtype's typed array. */
  data?: Float32Array | Uint16Array | BigInt64Array;
  /** Mean and standard deviation of the random values (ignored when `data` is given). */
  mean?: number;
  std?: number;
}

/**
 * The fill of a weight by its name and shape, keeping activations finite in deep random networks:
 * >= 2-d tensors (linear, conv, embeddings) N(0, 1) * gain / sqrt(fan_in); 1-d `*.weight` (the
 * norms: GroupNorm, LayerNorm) 1; other 1-d tensors (biases, in_proj_bias) N(0, 0.01^2);
 * scalars (open_clip logit_scale) log(1 / 0.07).
 */
export function randomInitFor(name: string, shape: readonly number[], gain = 1): { mean: number; std: number } {
  if (shape.length === 0) return { mean: Math.log(1 / 0.07), std: 0 };
  if (shape.length === 1) return name.endsWith('weight') ? { mean: 1, std: 0 } : { mean: 0, std: 0.01 };
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  return { mean: 0, std: gain / Math.sqrt(fanIn) };
}

/** A standard normal table (Box-Muller over a fixed xorshift stream), shared by every tensor. */
let normalTable: Float32Array | null = null;
function standardNormalTable(): Float32Array {
  if (normalTable) return normalTable;
  const t = new Float32Array(1 << 16);
  let s = 0x9e3779b9;
  const u = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) + 0.5) / 4294967296;
  };
  for (let i = 0; i < t.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u()));
    const a = 2 * Math.PI * u();
    t[i] = r * Math.cos(a);
    t[i + 1] = r * Math.sin(a);
  }
  normalTable = t;
  return t;
}

function nameSeed(name: string, seed: number): number {
  let h = (seed ^ 0x811c9dc5) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619) >>> 0;
  return h || 1;
}

/**
 * Writes a safetensors file of random tensors, streaming tensor by tensor in pieces of
 * `chunk` elements (never the whole model in memory). Values come from a 65536-entry normal table
 * scaled per tensor and indexed by a xorshift32 stream (two 16-bit indices per draw): fast, and
 * the same file for the same specs and seed. Returns the bytes written.
 */
export function writeRandomSafetensors(path: string, specs: readonly RandomTensorSpec[], opts: { seed?: number; metadata?: Record<string, string>; chunk?: number; onTensor?: (i: number, n: number) => void } = {}): number {
  const w = SafetensorsWriter.create(
    path,
    specs.map((s) => ({ name: s.name, dtype: s.dtype, shape: [...s.shape] })),
    opts.metadata ?? { format: 'pt', note: 'random weights for benchmarking' },
  );
  try {
    const base = standardNormalTable();
    const chunk = opts.chunk ?? 1 << 22;
    const buf16 = new Uint16Array(chunk);
    const buf32 = new Float32Array(chunk);
    const tab32 = new Float32Array(base.length);
    specs.forEach((s, k) => {
      if (s.data) {
        w.write(s.name, s.data);
      } else {
        if (s.dtype === 'I64') throw new Error(`${s.name}: an int64 tensor needs its data`);
        const size = s.shape.reduce((a, b) => a * b, 1);
        const mean = s.mean ?? 0;
        const std = s.std ?? 0;
        for (let i = 0; i < base.length; i++) tab32[i] = mean + std * base[i]!;
        const tab: Float32Array | Uint16Array = s.dtype === 'F16' ? T.f32ToF16(tab32) : tab32;
        const out = s.dtype === 'F16' ? buf16 : buf32;
        let st = nameSeed(s.name, opts.seed ?? 12345);
        for (let off = 0; off < size; off += chunk) {
          const n = Math.min(chunk, size - off);
          const a = out.subarray(0, n);
          let i = 0;
          for (; i + 1 < n; i += 2) {
            st ^= st << 13;
            st ^= st >>> 17;
            st ^= st << 5;
            a[i] = tab[st & 0xffff]!;
            a[i + 1] = tab[(st >>> 16) & 0xffff]!;
          }
          if (i < n) {
            st ^= st << 13;
            st ^= st >>> 17;
            st ^= st << 5;
            a[i] = tab[st & 0xffff]!;
          }
          w.write(s.name, a);
        }
      }
      opts.onTensor?.(k + 1, specs.length);
    });
    w.commit();
  } catch (e) {
    w.abort();
    throw e;
  }
  return w.totalBytes;
}
