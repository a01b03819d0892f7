// The invisible watermark of sgm (`sgm.inference.helpers.WatermarkEmbedder`, `scripts/demo/detect.py`),
// built on imwatermark's `dwtDct` method. Despite the name no DCT is applied: the 4x4 blocks of the
// Haar LL band of the U plane are modified directly. Pure TypeScript on typed arrays; the float32
// operation order (incl. OpenCV's FMA colour conversion) follows the reference so results are bit-exact.
import { fma32 } from '../tensor/random.js';

/** The reference's message `0xB3EC907BB19E` (sgm/inference/helpers.py). */
export const WATERMARK_MESSAGE = 0b101100111110110010010000011110111011000110011110;
/** Number of bits of the message. */
export const WATERMARK_NUM_BITS = 48;
/** The message's bits, MSB first (`WATERMARK_BITS` of the reference). */
export const WATERMARK_BITS: readonly number[] = Object.freeze(
  Array.from({ length: WATERMARK_NUM_BITS }, (_, i) => Math.floor(WATERMARK_MESSAGE / 2 ** (WATERMARK_NUM_BITS - 1 - i)) % 2),
);
/** imwatermark's dwtDct block scale of the U channel (scales [0, 36, 36], only U is processed). */
export const WATERMARK_SCALE = 36;
/** detect.py's verdicts: the first entry whose bound is >= the number of matched bits. */
export const MATCH_VALUES: readonly (readonly [number, string])[] = Object.freeze([
  [27, 'No watermark detected'],
  [33, 'Partial watermark match. Cannot determine with certainty.'],
  [35, 'Likely watermarked. In our test 0.02% of real images were falsely detected as "Likely watermarked"'],
  [49, 'Very likely watermarked. In our test no real images were falsely detected as "Very likely watermarked"'],
] as const);

const TOO_SMALL = 'image too small, should be larger than 256x256';

export class WatermarkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RuntimeError';
  }
}

function checkSize(h: number, w: number): void {
  if (h * w < 256 * 256) throw new WatermarkError(TOO_SMALL);
}

const f32 = Math.fround;


const C_R = f32(0.299), C_G = f32(0.587), C_B = f32(0.114);
const C_U = f32(0.492), C_V = f32(0.877);
const C_UB = f32(2.032), C_VG = f32(-0.581), C_UG = f32(-0.395), C_VR = f32(1.14);
const H32 = f32(0.70710678);
const H64 = 0.7071067811865476;

/** One Haar dwt2 LL/LH/HL/HH of `x` [rows, cols] (even), each op rounded by `rnd`. */
function dwt2(x: Float32Array | Float64Array, rows: number, cols: number, hc: number, rnd: (v: number) => number, all: boolean) {
  const r2 = rows / 2, c2 = cols / 2;
  const Arr = x instanceof Float32Array ? Float32Array : Float64Array;
  // along axis 0 (row pairs)
  const lo = new Arr(r2 * cols), hi = all ? new Arr(r2 * cols) : null;
  const nh = -hc;
  for (let i = 0; i < r2; i++) {
    const a = (2 * i) * cols, b = a + cols;
    for (let j = 0; j < cols; j++) {
      const x0 = x[a + j]!, x1 = x[b + j]!;
      lo[i * cols + j] = rnd(rnd(hc * x1) + rnd(hc * x0));
      if (hi) hi[i * cols + j] = rnd(rnd(nh * x1) + rnd(hc * x0));
    }
  }
  const along1 = (src: Float32Array | Float64Array, wantHi: boolean) => {
    const out = new Arr(r2 * c2);
    for (let i = 0; i < r2; i++) {
      for (let k = 0; k < c2; k++) {
        const x0 = src[i * cols + 2 * k]!, x1 = src[i * cols + 2 * k + 1]!;
        out[i * c2 + k] = wantHi ? rnd(rnd(nh * x1) + rnd(hc * x0)) : rnd(rnd(hc * x1) + rnd(hc * x0));
      }
    }
    return out;
  };
  const cA = along1(lo, false);
  if (!all) return { cA, cH: null, cV: null, cD: null };
  return { cA, cV: along1(lo, true), cH: along1(hi!, false), cD: along1(hi!, true) };
}

/** pywt idwt along the last axis of [rows, n] pairs (a, d) -> [rows, 2n] (float32). */
function idwtLast(a: Float32Array, d: Float32Array, rows: number, n: number): Float32Array {
  const out = new Float32Array(rows * 2 * n);
  const h = H32, nh = -H32;
  for (let i = 0; i < rows; i++) {
    for (let k = 0; k < n; k++) {
      const av = a[i * n + k]!, dv = d[i * n + k]!;
      out[i * 2 * n + 2 * k] = f32(f32(h * av) + f32(h * dv));
      out[i * 2 * n + 2 * k + 1] = f32(f32(h * av) + f32(nh * dv));
    }
  }
  return out;
}

/** pywt idwt along axis 0 of [n, cols] pairs -> [2n, cols] (float32). */
function idwtFirst(a: Float32Array, d: Float32Array, n: number, cols: number): Float32Array {
  const out = new Float32Array(2 * n * cols);
  const h = H32, nh = -H32;
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < cols; j++) {
      const av = a[k * cols + j]!, dv = d[k * cols + j]!;
      out[2 * k * cols + j] = f32(f32(h * av) + f32(h * dv));
      out[(2 * k + 1) * cols + j] = f32(f32(h * av) + f32(nh * dv));
    }
  }
  return out;
}

/** Position (1..15) of the first maximum of |flat[1:16]| of the 4x4 block at (bi, bj) of `c` [.., cols]. */
function blockArgmax(c: Float32Array | Float64Array, cols: number, bi: number, bj: number): number {
  let best = -1, pos = 1;
  for (let p = 1; p < 16; p++) {
    const v = Math.abs(c[(bi * 4 + (p >> 2)) * cols + bj * 4 + (p & 3)]!);
    if (v > best) {
      best = v;
      pos = p;
    }
  }
  return pos;
}

/**
 * Embeds `bits` into a float32 BGR image [H, W, 3] (values 0..255, e.g. 255*x with channels
 * reversed), as imwatermark's `EmbedMaxDct.encode` does for sgm. Returns a new float32 BGR array
 * (not clipped). Throws for images with fewer than 65536 pixels.
 */
export function embedWatermarkBgrF32(bgr: Float32Array, h: number, w: number, bits: readonly number[] = WATERMARK_BITS): Float32Array {
  if (bgr.length !== h * w * 3) throw new RangeError(`embedWatermark: expected ${h * w * 3} values for ${h}x${w}x3, got ${bgr.length}`);
  checkSize(h, w);
  const n = h * w;
  const Y = new Float32Array(n), U = new Float32Array(n), V = new Float32Array(n);
  const w8 = Math.floor(w / 8) * 8;
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      const o = i * w + j;
      const B = bgr[3 * o]!, G = bgr[3 * o + 1]!, R = bgr[3 * o + 2]!;
      const y = j < w8 ? fma32(B, C_B, fma32(G, C_G, f32(R * C_R))) : fma32(R, C_R, fma32(B, C_B, f32(G * C_G)));
      Y[o] = y;
      U[o] = fma32(f32(B - y), C_U, 0.5);
      V[o] = fma32(f32(R - y), C_V, 0.5);
    }
  }
  const h4 = Math.floor(h / 4) * 4, w4 = Math.floor(w / 4) * 4;
  const region = new Float32Array(h4 * w4);
  for (let i = 0; i < h4; i++) region.set(U.subarray(i * w, i * w + w4), i * w4);
  const { cA, cH, cV, cD } = dwt2(region, h4, w4, H32, f32, true);
  const ar = h4 / 2, ac = w4 / 2;
  const nbr = Math.floor(ar / 4), nbc = Math.floor(ac / 4);
  const scale = WATERMARK_SCALE;
  for (let bi = 0; bi < nbr; bi++) {
    for (let bj = 0; bj < nbc; bj++) {
      const bit = bits[(bi * nbc + bj) % bits.length]!;
      const p = blockArgmax(cA, ac, bi, bj);
      const idx = (bi * 4 + (p >> 2)) * ac + bj * 4 + (p & 3);
      const v = cA[idx]!;
      const q = f32((Math.floor(Math.abs(v) / scale) + 0.25 + 0.5 * bit) * scale);
      cA[idx] = v >= 0 ? q : -q;
    }
  }
  // idwt2((cA, (cV, cH, cD))): the detail bands swapped as the reference passes them
  const lo = idwtLast(cA as Float32Array, cH as Float32Array, ar, ac);
  const hi = idwtLast(cV as Float32Array, cD as Float32Array, ar, ac);
  const rec = idwtFirst(lo, hi, ar, w4);
  for (let i = 0; i < h4; i++) U.set(rec.subarray(i * w4, (i + 1) * w4), i * w);
  const out = new Float32Array(n * 3);
  for (let o = 0; o < n; o++) {
    const y = Y[o]!, u = f32(U[o]! - 0.5), v = f32(V[o]! - 0.5);
    out[3 * o] = fma32(u, C_UB, y);
    out[3 * o + 1] = fma32(v, C_VG, fma32(u, C_UG, y));
    out[3 * o + 2] = fma32(v, C_VR, y);
  }
  return out;
}

/** `embedWatermarkBgrF32` on a uint8 BGR image [H, W, 3] (its values as float32, as sgm hands them). */
export function embedWatermarkBgrU8(bgr: Uint8Array, h: number, w: number, bits: readonly number[] = WATERMARK_BITS): Float32Array {
  return embedWatermarkBgrF32(Float32Array.from(bgr), h, w, bits);
}

/**
 * sgm's `embed_watermark` for one image: `x` float32 RGB [3, H, W] in [0, 1] -> float32 RGB [3, H, W],
 * `clamp(encode(255 * x as BGR) / 255, 0, 1)`.
 */
export function embedWatermarkRgbChw(x: Float32Array, h: number, w: number, bits: readonly number[] = WATERMARK_BITS): Float32Array {
  const n = h * w;
  if (x.length !== 3 * n) throw new RangeError(`embedWatermark: expected ${3 * n} values for 3x${h}x${w}, got ${x.length}`);
  const bgr = new Float32Array(3 * n);
  for (let o = 0; o < n; o++) {
    bgr[3 * o] = f32(255 * x[2 * n + o]!);
    bgr[3 * o + 1] = f32(255 * x[n + o]!);
    bgr[3 * o + 2] = f32(255 * x[o]!);
  }
  const enc = embedWatermarkBgrF32(bgr, h, w, bits);
  return bgrF32ToRgbChwUnit(enc, h, w);
}

/** float32 BGR [H, W, 3] (0..255) -> float32 RGB [3, H, W], `clamp(v / 255, 0, 1)`. */
export function bgrF32ToRgbChwUnit(bgr: Float32Array, h: number, w: number): Float32Array {
  const n = h * w;
  const out = new Float32Array(3 * n);
  const cl = (v: number) => {
    const r = f32(v / 255);
    return r < 0 ? 0 : r > 1 ? 1 : r;
  };
  for (let o = 0; o < n; o++) {
    out[o] = cl(bgr[3 * o + 2]!);
    out[n + o] = cl(bgr[3 * o + 1]!);
    out[2 * n + o] = cl(bgr[3 * o]!);
  }
  return out;
}

/** sgm's saving: float32 RGB [3, H, W] in [0, 1] -> uint8 BGR [H, W, 3] by `(255 * x).astype(uint8)` (truncation). */
export function rgbChwUnitToBgrU8Truncated(x: Float32Array, h: number, w: number): Uint8Array {
  const n = h * w;
  const out = new Uint8Array(3 * n);
  const t = (v: number) => {
    const r = Math.trunc(f32(255 * v));
    return r < 0 ? 0 : r > 255 ? 255 : r;
  };
  for (let o = 0; o < n; o++) {
    out[3 * o] = t(x[2 * n + o]!);
    out[3 * o + 1] = t(x[n + o]!);
    out[3 * o + 2] = t(x[o]!);
  }
  return out;
}

/**
 * detect.py's decoder (`WatermarkDecoder('bits', 48).decode(img, 'dwtDct')`) on a uint8 BGR image
 * [H, W, 3] as cv2.imread returns it. Returns the 48 decoded bits.
 */
export function decodeWatermark(bgr: Uint8Array, h: number, w: number, numBits = WATERMARK_NUM_BITS): number[] {
  if (bgr.length !== h * w * 3) throw new RangeError(`decodeWatermark: expected ${h * w * 3} values for ${h}x${w}x3, got ${bgr.length}`);
  checkSize(h, w);
  const h4 = Math.floor(h / 4) * 4, w4 = Math.floor(w / 4) * 4;
  const region = new Float64Array(h4 * w4);
  for (let i = 0; i < h4; i++) {
    for (let j = 0; j < w4; j++) {
      const o = 3 * (i * w + j);
      const B = bgr[o]!, G = bgr[o + 1]!, R = bgr[o + 2]!;
      const y = (1868 * B + 9617 * G + 4899 * R + 8192) >> 14;
      const u = ((B - y) * 8061 + 128 * 16384 + 8192) >> 14;
      region[i * w4 + j] = u < 0 ? 0 : u > 255 ? 255 : u;
    }
  }
  const { cA } = dwt2(region, h4, w4, H64, (v) => v, false);
  const ac = w4 / 2;
  const nbr = Math.floor(h4 / 2 / 4), nbc = Math.floor(ac / 4);
  const sums = new Array<number>(numBits).fill(0), counts = new Array<number>(numBits).fill(0);
  for (let bi = 0; bi < nbr; bi++) {
    for (let bj = 0; bj < nbc; bj++) {
      const k = (bi * nbc + bj) % numBits;
      const p = blockArgmax(cA, ac, bi, bj);
      const v = cA[(bi * 4 + (p >> 2)) * ac + bj * 4 + (p & 3)]!;
      sums[k]! += Math.abs(v) % WATERMARK_SCALE > 0.5 * WATERMARK_SCALE ? 1 : 0;
      counts[k]! += 1;
    }
  }
  return sums.map((s, k) => (counts[k]! > 0 && (s / counts[k]!) * 255 > 127 ? 1 : 0));
}

/** Number of bits equal to `WATERMARK_BITS` and detect.py's verdict. */
export function watermarkVerdict(bits: readonly number[], reference: readonly number[] = WATERMARK_BITS): { numMatched: number; verdict: string } {
  let numMatched = 0;
  for (let i = 0; i < reference.length; i++) if (bits[i] === reference[i]) numMatched++;
  const verdict = MATCH_VALUES.find(([bound]) => numMatched <= bound)![1];
  return { numMatched, verdict };
}
