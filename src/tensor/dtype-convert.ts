// Conversions between float32 and the 16-bit float formats that checkpoints store (IEEE half
// "F16" and bfloat16 "BF16"). 16-bit values travel as raw words in Uint16Array. All conversions
// work on bit patterns (Uint32Array views of Float32Array data), so NaN payloads are not
// canonicalised by the JavaScript number path, and every routine is a single tight loop.
//
// float32 -> 16-bit rounds to nearest, ties to even, like numpy, PyTorch and the IEEE default:
// overflow becomes ±inf, values below half the smallest subnormal become ±0, NaN stays NaN.

let f16Table: Uint32Array | null = null;

/** f16 word -> f32 bit pattern for all 65536 words (built once, 256 KiB). */
function halfTable(): Uint32Array {
  if (f16Table) return f16Table;
  const t = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    let mant = h & 0x3ff;
    let bits: number;
    if (exp === 0x1f) {
      // inf (mant 0) or NaN (payload kept in the top mantissa bits).
      bits = sign | 0x7f800000 | (mant << 13);
    } else if (exp !== 0) {
      bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant === 0) {
      bits = sign;
    } else {
      // Subnormal half: value = mant * 2^-24. Normalise so the leading 1 becomes implicit.
      let e = 113; // biased f32 exponent of 2^-14, decremented per shift
      while ((mant & 0x400) === 0) {
        mant <<= 1;
        e--;
      }
      bits = sign | (e << 23) | ((mant & 0x3ff) << 13);
    }
    t[h] = bits >>> 0;
  }
  f16Table = t;
  return t;
}

function checkOut(n: number, out: Float32Array | Uint16Array | undefined, what: string): void {
  if (out !== undefined && out.length !== n) {
    throw new RangeError(`${what}: output has ${out.length} elements, input has ${n}`);
  }
}

/** Converts IEEE half words to float32 (exact: every half is representable). */
export function f16ToF32(u16: Uint16Array, out?: Float32Array): Float32Array {
  const n = u16.length;
  checkOut(n, out, 'f16ToF32');
  const dst = out ?? new Float32Array(n);
  const bits = new Uint32Array(dst.buffer, dst.byteOffset, n);
  const t = halfTable();
  for (let i = 0; i < n; i++) bits[i] = t[u16[i]!]!;
  return dst;
}

/** Converts bfloat16 words to float32 (exact: bf16 is the top half of an f32). */
export function bf16ToF32(u16: Uint16Array, out?: Float32Array): Float32Array {
  const n = u16.length;
  checkOut(n, out, 'bf16ToF32');
  const dst = out ?? new Float32Array(n);
  const bits = new Uint32Array(dst.buffer, dst.byteOffset, n);
  for (let i = 0; i < n; i++) bits[i] = u16[i]! << 16;
  return dst;
}

/** One float32 bit pattern -> IEEE half word, round to nearest even. */
export function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) {
    // inf stays inf; NaN keeps its top payload bits and is made quiet (never turns into inf).
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }
  const e = exp - 112; // half biased exponent
  if (e >= 31) return sign | 0x7c00; // >= 2^16: beyond 65520, rounds to inf
  if (e >= 1) {
    let h = (e << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) !== 0)) h++; // a carry may reach inf: correct
    return sign | h;
  }
  if (e < -10) return sign; // below 2^-25: rounds to zero (also f32 zeros and subnormals)
  // Half subnormal. With the implicit bit, value = m * 2^(exp-150) = (m * 2^(e-14)) * 2^-24, and
  // 2^-24 is the half subnormal unit, so the half mantissa is m shifted right by 14 - e.
  const m = mant | 0x800000;
  const shift = 14 - e; // 14..24
  let h = m >>> shift;
  const rest = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && (h & 1) !== 0)) h++; // may become the smallest normal
  return sign | h;
}

/** Converts float32 to IEEE half words, round to nearest even, overflow to ±inf. */
export function f32ToF16(f32: Float32Array, out?: Uint16Array): Uint16Array {
  const n = f32.length;
  checkOut(n, out, 'f32ToF16');
  const dst = out ?? new Uint16Array(n);
  const bits = new Uint32Array(f32.buffer, f32.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const x = bits[i]!;
    const a = x & 0x7fffffff;
    // Fast path for the common case: normal half range without rounding to inf.
    if (a >= 0x38800000 && a < 0x477ff000) {
      let h = ((a - 0x38000000) >>> 13) | 0;
      const rest = x & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && (h & 1) !== 0)) h++;
      dst[i] = ((x >>> 16) & 0x8000) | h;
    } else {
      dst[i] = f32BitsToF16(x);
    }
  }
  return dst;
}

/** Converts float32 to bfloat16 words, round to nearest even; NaN stays NaN (made quiet). */
export function f32ToBf16(f32: Float32Array, out?: Uint16Array): Uint16Array {
  const n = f32.length;
  checkOut(n, out, 'f32ToBf16');
  const dst = out ?? new Uint16Array(n);
  const bits = new Uint32Array(f32.buffer, f32.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const x = bits[i]!;
    if ((x & 0x7fffffff) > 0x7f800000) {
      dst[i] = (x >>> 16) | 0x40;
    } else {
      // x + 0x7fff + lsb stays below 2^32 for every non-NaN pattern, so this is exact.
      dst[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
    }
  }
  return dst;
}
