// The loss curve as a PNG, drawn without a plotting library: axes, tick marks with small numeric
// labels (a 3x5 pixel font), the loss per batch (light) and its moving average (dark), into an RGB
// buffer that encodePng writes.
import { encodePng } from '../io/png.js';
import { writeFileAtomic } from '../io/atomic.js';

/** 3x5 glyphs (rows top to bottom, 3 bits each, MSB left) for the characters tick labels use. */
const GLYPHS: Record<string, number[]> = {
  '0': [7, 5, 5, 5, 7],
  '1': [2, 6, 2, 2, 7],
  '2': [7, 1, 7, 4, 7],
  '3': [7, 1, 7, 1, 7],
  '4': [5, 5, 7, 1, 1],
  '5': [7, 4, 7, 1, 7],
  '6': [7, 4, 7, 5, 7],
  '7': [7, 1, 1, 1, 1],
  '8': [7, 5, 7, 5, 7],
  '9': [7, 5, 7, 1, 7],
  '.': [0, 0, 0, 0, 2],
  '-': [0, 0, 7, 0, 0],
  e: [0, 7, 7, 4, 7],
  k: [4, 5, 6, 5, 5],
};

type RGB = readonly [number, number, number];

class Canvas {
  readonly data: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.data = new Uint8Array(width * height * 3).fill(255);
  }

  set(x: number, y: number, c: RGB): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const o = (y * this.width + x) * 3;
    this.data[o] = c[0];
    this.data[o + 1] = c[1];
    this.data[o + 2] = c[2];
  }

  /** A line by Bresenham's algorithm (integer end points). */
  line(x0: number, y0: number, x1: number, y1: number, c: RGB): void {
    x0 = Math.round(x0);
    y0 = Math.round(y0);
    x1 = Math.round(x1);
    y1 = Math.round(y1);
    const dx = Math.abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    const dy = -Math.abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    let err = dx + dy;
    for (;;) {
      this.set(x0, y0, c);
      if (x0 === x1 && y0 === y1) return;
      const e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y0 += sy;
      }
    }
  }

  /** Text in the 3x5 font scaled by `s`, its top-left corner at (x, y). */
  text(x: number, y: number, s: string, c: RGB, scale = 2): void {
    let cx = x;
    for (const ch of s) {
      const g = GLYPHS[ch];
      if (g) {
        g.forEach((row, ry) => {
          for (let rx = 0; rx < 3; rx++) {
            if (row & (4 >> rx)) for (let a = 0; a < scale; a++) for (let b = 0; b < scale; b++) this.set(cx + rx * scale + a, y + ry * scale + b, c);
          }
        });
      }
      cx += 4 * scale;
    }
  }

  textWidth(s: string, scale = 2): number {
    return s.length * 4 * scale - scale;
  }
}

/** A short label for a tick value: 0.123, 1.5e-3, 12k. */
export function tickLabel(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 10000) return `${Math.round(v / 1000)}k`;
  if (a >= 1) return String(Math.round(v * 100) / 100);
  if (a >= 0.01) return String(Math.round(v * 1000) / 1000);
  const [m, e] = v.toExponential(1).split('e');
  return `${m}e${Number(e)}`;
}

/** "Nice" tick positions covering [lo, hi] (about `n` of them). */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  return out;
}

/** Trailing moving average over `window` values. */
export function movingAverage(ys: readonly number[], window: number): number[] {
  const out: number[] = [];
  let sum = 0;
  for (let i = 0; i < ys.length; i++) {
    sum += ys[i]!;
    if (i >= window) sum -= ys[i - window]!;
    out.push(sum / Math.min(i + 1, window));
  }
  return out;
}

export interface LossPlotOptions {
  width?: number;
  height?: number;
  /** Moving-average window (default: about 2% of the points, at least 1). */
  window?: number;
}

/** Draws the loss curve: RGB pixels, row-major. `xs` are step numbers, `ys` the losses. */
export function drawLossCurve(xs: readonly number[], ys: readonly number[], opts: LossPlotOptions = {}): { data: Uint8Array; width: number; height: number } {
  const width = opts.width ?? 640;
  const height = opts.height ?? 400;
  const cv = new Canvas(width, height);
  const left = 70, right = 20, top = 20, bottom = 40;
  const pw = width - left - right, ph = height - top - bottom;
  const axis: RGB = [0, 0, 0], grid: RGB = [225, 225, 225], raw: RGB = [160, 190, 230], avg: RGB = [20, 60, 160];
  const pts = xs.map((x, i) => [x, ys[i]!] as const).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  let x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (pts.length > 0) {
    x0 = Math.min(...pts.map((p) => p[0]));
    x1 = Math.max(...pts.map((p) => p[0]));
    y0 = Math.min(0, ...pts.map((p) => p[1]));
    y1 = Math.max(...pts.map((p) => p[1]));
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) y1 = y0 + 1;
    y1 += (y1 - y0) * 0.05;
  }
  const px = (x: number): number => left + ((x - x0) / (x1 - x0)) * pw;
  const py = (y: number): number => top + ph - ((y - y0) / (y1 - y0)) * ph;
  for (const t of niceTicks(y0, y1)) {
    const y = py(t);
    cv.line(left, y, left + pw, y, grid);
    cv.line(left - 5, y, left, y, axis);
    const s = tickLabel(t);
    cv.text(left - 8 - cv.textWidth(s), y - 5, s, axis);
  }
  for (const t of niceTicks(x0, x1)) {
    const x = px(t);
    cv.line(x, top, x, top + ph, grid);
    cv.line(x, top + ph, x, top + ph + 5, axis);
    const s = tickLabel(t);
    cv.text(x - cv.textWidth(s) / 2, top + ph + 10, s, axis);
  }
  cv.line(left, top, left, top + ph, axis);
  cv.line(left, top + ph, left + pw, top + ph, axis);
  const draw = (series: ReadonlyArray<readonly [number, number]>, c: RGB): void => {
    if (series.length === 1) cv.set(px(series[0]![0]), py(series[0]![1]), c);
    for (let i = 1; i < series.length; i++) cv.line(px(series[i - 1]![0]), py(series[i - 1]![1]), px(series[i]![0]), py(series[i]![1]), c);
  };
  draw(pts, raw);
  const win = opts.window ?? Math.max(1, Math.round(pts.length / 50));
  const ma = movingAverage(pts.map((p) => p[1]), win);
  draw(pts.map((p, i) => [p[0], ma[i]!] as const), avg);
  return { data: cv.data, width, height };
}

/** Draws the loss curve and writes it as a PNG (atomically). */
export async function writeLossPlot(path: string, xs: readonly number[], ys: readonly number[], opts: LossPlotOptions = {}): Promise<void> {
  const img = drawLossCurve(xs, ys, opts);
  await writeFileAtomic(path, await encodePng(img.data, img.width, img.height, { Title: 'training loss', Software: 'sgm-ts' }));
}
