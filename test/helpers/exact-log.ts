// An independent, high-precision natural log of a double, for judging how a double log rounds.
//
// Method: write x = M * 2^e with M a 53-bit integer, so that x = m * 2^(e+52) with m = M / 2^52 in
// [1, 2). Then ln(x) = 2 * atanh((m - 1) / (m + 1)) + (e + 52) * ln(2), and ln(2) = 2 * atanh(1/3).
// The atanh argument is at most 1/3, so its odd power series (s + s^3/3 + s^5/5 + ...) converges by
// a factor of at least 9 a term; it is summed with BigInt in fixed point with FIX fraction bits,
// whose truncation errors (a few units of 2^-320) are far below what a double can resolve.

/** Fixed-point fraction bits of the reference log. */
const FIX = 320n;

/** atanh(num / den) in fixed point (|num / den| < 1, best well below 1). */
function atanhFixed(num: bigint, den: bigint): bigint {
  const s = (num << FIX) / den;
  const s2 = (s * s) >> FIX;
  let term = s;
  let sum = 0n;
  for (let k = 1n; term !== 0n; k += 2n) {
    sum += term / k;
    term = (term * s2) >> FIX;
  }
  return sum;
}

const LN2_FIXED = 2n * atanhFixed(1n, 3n);

/**
 * A finite double exactly as M * 2^e with M an integer: |M| in [2^52, 2^53) and M carrying the
 * sign (subnormals included); M = 0, e = 0 for zero.
 */
export function exactParts(x: number): { M: bigint; e: number } {
  if (x === 0) return { M: 0n, e: 0 };
  let e = 0;
  let m = Math.abs(x);
  while (m >= 2) {
    m /= 2;
    e++;
  }
  while (m < 1) {
    m *= 2;
    e--;
  }
  const M = BigInt(m * 2 ** 52);
  return { M: x < 0 ? -M : M, e: e - 52 };
}

/** (ln(x) - y) in units of ulp(y), from the 320-bit reference log (x > 0 finite, y != 0 finite). */
export function logUlpOffset(x: number, y: number): number {
  if (!(x > 0 && Number.isFinite(x)) || y === 0 || !Number.isFinite(y)) {
    throw new RangeError(`logUlpOffset: needs x > 0 finite and y != 0 finite, got x = ${x}, y = ${y}`);
  }
  const px = exactParts(x); // x = M 2^e, M in [2^52, 2^53)
  const one = 1n << 52n;
  const exact = 2n * atanhFixed(px.M - one, px.M + one) + BigInt(px.e + 52) * LN2_FIXED;
  const py = exactParts(y); // y = M 2^e, |M| in [2^52, 2^53), so ulp(y) = 2^e (y normal)
  const shift = BigInt(py.e) + FIX;
  if (shift < 0n) throw new RangeError('logUlpOffset: y too small for the reference');
  const yFixed = py.M << shift;
  return Number(((exact - yFixed) << 32n) / (1n << shift)) / 2 ** 32;
}
