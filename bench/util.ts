// Benchmark helpers: medians over repeated runs after warm-up, A/B runs interleaved so that the
// machine's drift affects both sides alike. Figures are printed, never asserted.
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
