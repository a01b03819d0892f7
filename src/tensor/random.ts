// Bit-exact random numbers of PyTorch 1.13 on the CPU (mt19937 generator, rand / randn / randint /
// uniform_) and of numpy's legacy RandomState (randn / random_sample).
//
// Why bit-exact: the sgm samplers and losses draw noise with torch.randn; a port that reproduces
// the draws from the seed alone can replay a reference run value for value. The algorithm is
// documented in shared/fixtures/framework/TORCH_RNG.md; section numbers below refer to it.
//
// Exactness: torch float32 rand/randn/randint/uniform_ and the mt19937 stream are bit-exact (the
// AVX2 kernel is emulated, FMAs included). Double-precision paths call a correctly rounded log
// where torch and numpy call glibc's; the two differ in about 1 of 3000 calls, by 1 ulp of a
// float64 result, which a cast to float32 hides (see logCR and RandomStateOptions.log).
//
// Everything here produces host arrays; wrapping them into tensors is the caller's business.

/** torch's default CPU seed (`default_rng_seed_val`): what `torch.initial_seed()` says unseeded. */
export const TORCH_DEFAULT_SEED = 67280421310721n;

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const TWO_POW_M24 = 2 ** -24;
const TWO_POW_M53 = 2 ** -53;
const TWO_POW_32 = 4294967296;

export type RandomDType = 'float32' | 'float64';

function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`random: bad shape [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// MT19937
// ---------------------------------------------------------------------------------------------

export interface MT19937State {
  /** The 624 state words. */
  words: Uint32Array;
  /**
   * Index of the next word to temper, 0..624; 624 means "regenerate first" (the state right after
   * seeding). This is numpy's `pos`; torch's counters are `left = 625 - pos`, `next = pos`.
   */
  pos: number;
}

/** The standard 32-bit Mersenne Twister (Matsumoto–Nishimura), same stream as std::mt19937. */
export class MT19937 {
  private readonly mt = new Uint32Array(N);
  private pos = N;

  constructor(seed = 5489) {
    this.seed(seed);
  }

  /** init_genrand: the seeding of torch's mt19937, std::mt19937 and numpy's legacy RandomState. */
  seed(seed: number): this {
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let j = 1; j < N; j++) {
      const prev = mt[j - 1];
      mt[j] = (Math.imul(1812433253, prev ^ (prev >>> 30)) + j) >>> 0;
    }
    this.pos = N; // the first draw regenerates the whole block (torch: left = 1, next = 0)
    return this;
  }

  /** Regenerates the block in place: words k >= 227 already see the new s[k - 227]. */
  private regenerate(): void {
    const mt = this.mt;
    let k = 0;
    let y: number;
    for (; k < N - M; k++) {
      y = (mt[k] & 0x80000000) | (mt[k + 1] & 0x7fffffff);
      mt[k] = mt[k + M] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    for (; k < N - 1; k++) {
      y = (mt[k] & 0x80000000) | (mt[k + 1] & 0x7fffffff);
      mt[k] = mt[k + M - N] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    y = (mt[N - 1] & 0x80000000) | (mt[0] & 0x7fffffff);
    mt[N - 1] = mt[M - 1] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    this.pos = 0;
  }

  /** One tempered 32-bit output. */
  nextU32(): number {
    if (this.pos >= N) this.regenerate();
    let y = this.mt[this.pos++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** out[from..to) = (nextU32() & 0xffffff) * 2^-24 each: torch's float32 uniform in [0, 1). */
  fillUniform24(out: Float32Array | Float64Array, from: number, to: number): void {
    const mt = this.mt;
    let pos = this.pos;
    for (let i = from; i < to; i++) {
      if (pos >= N) {
        this.regenerate();
        pos = 0;
      }
      let y = mt[pos++];
      y ^= y >>> 11;
      y ^= (y << 7) & 0x9d2c5680;
      y ^= (y << 15) & 0xefc60000;
      y ^= y >>> 18;
      out[i] = (y & 0xffffff) * TWO_POW_M24;
    }
    this.pos = pos;
  }

  /** out[from..to) = (nextU64() & (2^53 - 1)) * 2^-53 each: torch's float64 uniform in [0, 1). */
  fillUniform53(out: Float64Array, from: number, to: number): void {
    for (let i = from; i < to; i++) {
      const hi = this.nextU32();
      const lo = this.nextU32();
      out[i] = ((hi & 0x1fffff) * TWO_POW_32 + lo) * TWO_POW_M53;
    }
  }

  /** Two consecutive outputs `a`, `b` as `(a << 32) | b`: the first output is the high word. */
  nextU64(): bigint {
    const hi = this.nextU32();
    const lo = this.nextU32();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  getState(): MT19937State {
    return { words: this.mt.slice(), pos: this.pos };
  }

  setState(state: MT19937State): void {
    if (state.words.length !== N) throw new RangeError(`MT19937.setState: ${state.words.length} words, expected ${N}`);
    if (!Number.isInteger(state.pos) || state.pos < 0 || state.pos > N) throw new RangeError(`MT19937.setState: bad pos ${state.pos}`);
    this.mt.set(state.words);
    this.pos = state.pos;
  }
}

// ---------------------------------------------------------------------------------------------
// Exact float32 fused multiply-add (§6)
// ---------------------------------------------------------------------------------------------

const F64 = new Float64Array(1);
const U32OF64 = new Uint32Array(F64.buffer);
const LOW_WORD = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1;
const FLT_MAX = (2 - 2 ** -23) * 2 ** 127;
const OVERFLOW_MIDPOINT = 2 ** 128 - 2 ** 103; // halfway between FLT_MAX and 2^128

/**
 * float32 fma(a, b, c) = round_f32(a*b + c) with one rounding, for float32 inputs.
 *
 * a*b is exact in double (two 24-bit significands make at most 48 bits); p + c is then rounded to
 * double, and rounding that double to float32 is only wrong (double rounding) when it landed
 * exactly on a float32 midpoint while the exact sum was not there. Then the TwoSum residual says
 * on which side the exact sum lies.
 */
export function fma32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const r = Math.fround(s);
  const d = s - r; // exact: r is within half a float32 ulp of s
  if (d === 0) return r; // s is a float32, so the exact sum (within 2^-53 of it) rounds to s too
  // s is a float32 midpoint iff t = r + 2d (the mirror of r about s, exact in double) is the
  // float32 on the other side; otherwise t falls strictly between r and that neighbour.
  // (d - d is NaN when r overflowed or s is not finite: those go the slow way.)
  const t = r + 2 * d;
  if (Math.fround(t) !== t && d - d === 0) return r;
  return fma32Midpoint(p, c, s, r, t);
}

/** fma32 when s = fl64(a*b + c) is a float32 midpoint (or r overflowed / something is NaN). */
function fma32Midpoint(p: number, c: number, s: number, r: number, t: number): number {
  if (s !== s) return s;
  const bb = s - p;
  const err = p - (s - bb) + (c - bb); // exact: s + err == p + c
  if (!Number.isFinite(r)) {
    // Exactly on the overflow midpoint and truly below it: FLT_MAX rather than infinity.
    if (s === OVERFLOW_MIDPOINT && err < 0) return FLT_MAX;
    if (s === -OVERFLOW_MIDPOINT && err > 0) return -FLT_MAX;
    return r;
  }
  if (err === 0) return r; // a true tie: fround's ties-to-even is right
  return err > 0 ? Math.max(r, t) : Math.min(r, t);
}

// ---------------------------------------------------------------------------------------------
// Correctly rounded double log
// ---------------------------------------------------------------------------------------------
//
// numpy's legacy_gauss and torch's double paths call glibc's log. V8's Math.log (fdlibm) is
// within 1 ulp but disagrees with glibc on about 1.5 % of the arguments seen there (4 of the 256
// values of RandomState(0).randn(1, 4, 8, 8) differ), while glibc's log (error bound 0.52 ulp)
// differs from the correctly rounded value only in about 1 of 3000 calls, all within 0.02 ulp of
// a rounding boundary. So the double paths use this correctly rounded log: the value is computed
// in double-double (about 2^-100 relative error) and rounded once. Matching glibc in those rare
// hard cases as well would need glibc's own tables; see RandomStateOptions.log.

const SPLIT = 134217729; // 2^27 + 1, Dekker's splitter
const LN2_HI = 0.6931471805599453; // ln 2 = LN2_HI + LN2_LO to about 2^-110
const LN2_LO = 2.3190468138462996e-17;
// Double-double results come back through these two slots (no allocation in loops).
let ddH = 0;
let ddL = 0;

/** Exact product a*b = ddH + ddL (Dekker; |a|, |b| far below 2^996). */
function twoProd(a: number, b: number): void {
  const p = a * b;
  let t = SPLIT * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLIT * b;
  const bh = t - (t - b);
  const bl = b - bh;
  ddL = ah * bh - p + ah * bl + al * bh + al * bl;
  ddH = p;
}

/** (ah, al) * (bh, bl) in double-double. */
function ddMul(ah: number, al: number, bh: number, bl: number): void {
  twoProd(ah, bh);
  const p = ddH;
  const e = ddL + (ah * bl + al * bh);
  ddH = p + e;
  ddL = e - (ddH - p);
}

/** (ah, al) + (bh, bl) in double-double (IEEE-style: both parts summed with TwoSum). */
function ddAdd(ah: number, al: number, bh: number, bl: number): void {
  let s = ah + bh;
  let v = s - ah;
  let e = ah - (s - v) + (bh - v);
  const t = al + bl;
  v = t - al;
  const f2 = al - (t - v) + (bl - v);
  e += t;
  let h = s + e;
  e = e - (h - s);
  e += f2;
  s = h + e;
  ddL = e - (s - h);
  ddH = s;
}

// 1/(2i+1) as double-doubles for the atanh series log(m) = 2 s Σ s^(2i) / (2i+1).
const DD_TERMS = 11; // i < 11 in double-double; the tail i = 11..22 in double (< 2^-106 relative)
const INV_ODD_H = new Float64Array(DD_TERMS);
const INV_ODD_L = new Float64Array(DD_TERMS);
const INV_ODD_TAIL = new Float64Array(23);
for (let i = 0; i < 23; i++) INV_ODD_TAIL[i] = 1 / (2 * i + 1);
for (let i = 0; i < DD_TERMS; i++) {
  const q = 2 * i + 1;
  const h = 1 / q;
  twoProd(h, q);
  INV_ODD_H[i] = h;
  INV_ODD_L[i] = (1 - ddH - ddL) / q;
}

/** log(x), correctly rounded (up to cases closer than ~2^-100 to a rounding boundary). */
export function logCR(x: number): number {
  if (!(x > 0) || x === Infinity) return Math.log(x); // NaN, 0, negative, +inf
  let k = 0;
  if (x < 2 ** -1022) {
    x *= 2 ** 54; // subnormal: scale into the normal range
    k = -54;
  }
  F64[0] = x;
  const hiWord = U32OF64[1 - LOW_WORD];
  k += ((hiWord >>> 20) & 0x7ff) - 1023;
  U32OF64[1 - LOW_WORD] = (hiWord & 0x800fffff) | 0x3ff00000;
  let m = F64[0]; // [1, 2)
  if (m > Math.SQRT2) {
    m *= 0.5;
    k += 1;
  }
  let lh = 0;
  let ll = 0;
  if (m !== 1) {
    // s = (m - 1) / (m + 1) as a double-double; m - 1 is exact, m + 1 is kept exact as (dh, dl).
    const num = m - 1;
    const dh = m + 1;
    const dl = m - (dh - 1);
    const sh = num / dh;
    twoProd(sh, dh);
    const sl = (num - ddH - ddL - sh * dl) / dh;
    ddMul(sh, sl, sh, sl);
    const zh = ddH;
    const zl = ddL;
    // Horner: the tail in double (its terms are below 2^-53 of the sum), the rest double-double.
    let tail = 0;
    for (let i = 22; i >= DD_TERMS; i--) tail = tail * zh + INV_ODD_TAIL[i];
    ddMul(zh, zl, tail, 0);
    for (let i = DD_TERMS - 1; ; i--) {
      ddAdd(INV_ODD_H[i], INV_ODD_L[i], ddH, ddL);
      if (i === 0) break;
      ddMul(zh, zl, ddH, ddL);
    }
    ddMul(2 * sh, 2 * sl, ddH, ddL); // log(m) = 2 s P(s^2)
    lh = ddH;
    ll = ddL;
  }
  if (k === 0) return lh + ll;
  twoProd(k, LN2_HI);
  const kh = ddH;
  const kl = ddL + k * LN2_LO;
  ddAdd(kh, kl, lh, ll);
  return ddH + ddL;
}

// ---------------------------------------------------------------------------------------------
// The AVX2 kernel's float32 log and sincos (avx_mathfun.h, Cephes), §5.3
// ---------------------------------------------------------------------------------------------

const f = Math.fround;
const SQRTHF = f(0.707106781186547524);
const LOG_P0 = f(7.0376836292e-2);
const LOG_P = new Float64Array([
  -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1,
  -2.4999993993e-1, 3.3333331174e-1,
]).map(f);
const LOG_Q1 = f(-2.12194440e-4);
const LOG_Q2 = f(0.693359375);
const TWO_PI_F = f(6.2831855);
const FOPI = f(1.27323954473516);
const DP1 = f(-0.78515625);
const DP2 = f(-2.4187564849853515625e-4);
const DP3 = f(-3.77489497744594108e-8);
const SIN_P0 = f(-1.9515295891e-4);
const SIN_P1 = f(8.3321608736e-3);
const SIN_P2 = f(-1.6666654611e-1);
const COS_P0 = f(2.443315711809948e-5);
const COS_P1 = f(-1.388731625493765e-3);
const COS_P2 = f(4.166664568298827e-2);

const POW2_NEG = new Float64Array(26).map((_, b) => 2 ** -b);

/**
 * log256_ps of avx_mathfun.h for one lane, with GCC's FMA contractions, for the argument
 * a = K * 2^-24 with K an integer in [1, 2^24]: every u1 = 1 - u of the kernel has that form.
 * (The kernel first clamps a to >= 2^-126 and splits its bits into exponent and mantissa; for
 * these arguments the split is computed from K without reinterpreting bits.)
 */
function log8(K: number): number {
  const b = 32 - Math.clz32(K); // K in [2^(b-1), 2^b)
  let e = b - 24; // float((bits >> 23) - 127) + 1: the exponent for a mantissa in [0.5, 1)
  const m = K * POW2_NEG[b]; // the mantissa in [0.5, 1), exact
  let x: number;
  if (m < SQRTHF) {
    e = e - 1;
    x = f(f(m - 1) + m);
  } else {
    x = f(m - 1);
  }
  const z = f(x * x);
  let y = LOG_P0;
  for (let i = 0; i < 8; i++) y = fma32(y, x, LOG_P[i]);
  y = f(y * x);
  y = fma32(y, z, f(e * LOG_Q1)); // e*q1 is rounded on its own, then fused with y*z
  y = fma32(-z, 0.5, y);
  x = f(x + y);
  return fma32(e, LOG_Q2, x);
}

// sincos8 returns through these two module slots, so the hot loop allocates nothing.
let sinOut = 0;
let cosOut = 0;

/** sincos256_ps of avx_mathfun.h for one lane, t >= 0, with GCC's FMA contractions. */
function sincos8(t: number): void {
  let j = f(t * FOPI) | 0; // cvttps: truncation
  j = (j + 1) & ~1;
  const y = j; // exact int -> float
  const swapSin = (j & 4) !== 0;
  const polySel = (j & 2) === 0;
  const negCos = (~(j - 2) & 4) !== 0;
  let x = fma32(y, DP1, t);
  x = fma32(y, DP2, x);
  x = fma32(y, DP3, x);
  const z = f(x * x);
  let c = fma32(COS_P0, z, COS_P1);
  c = fma32(c, z, COS_P2);
  c = f(c * z);
  c = fma32(c, z, -f(z * 0.5));
  c = f(c + 1);
  let s = fma32(SIN_P0, z, SIN_P1);
  s = fma32(s, z, SIN_P2);
  s = f(s * z);
  s = fma32(s, x, x);
  // The kernel selects with bit masks and adds +0.0 (masked-out lane) to the pick, which turns an
  // exact -0 into +0 before the sign-bit XOR; `+ 0` reproduces that.
  let sn = (polySel ? s : c) + 0;
  let cs = (polySel ? c : s) + 0;
  if (swapSin) sn = -sn;
  if (negCos) cs = -cs;
  sinOut = sn;
  cosOut = cs;
}

/** Box–Muller on 16 float32 uniforms in place (§5.2): d[j] radius, d[j+8] angle. */
function transform16F32(d: Float32Array, off: number, mean: number, std: number): void {
  for (let j = off; j < off + 8; j++) {
    // u1 = 1 - u lies in (0, 1], so log is finite; u = k * 2^-24 makes u1 = (2^24 - k) * 2^-24.
    const K = 16777216 - d[j] * 16777216;
    const u2 = d[j + 8];
    const radius = f(Math.sqrt(f(log8(K) * -2)));
    sincos8(f(TWO_PI_F * u2));
    d[j] = fma32(f(radius * cosOut), std, mean);
    d[j + 8] = fma32(f(radius * sinOut), std, mean);
  }
}

/** transform16F32 on every full block of d[0..end), end a multiple of 16. */
function normalFill16F32(d: Float32Array, end: number, mean: number, std: number): void {
  for (let i = 0; i < end; i += 16) transform16F32(d, i, mean, std);
}

const TWO_PI = 2.0 * Math.PI;

/**
 * The float64 flavour of the 16-lane loop (§5.4): libm log/cos/sin in double. log is the
 * correctly rounded logCR; cos and sin are V8's (fdlibm, < 1 ulp), which can differ from glibc's
 * by an ulp now and then, so float64 draws are exact except for such rare last-bit differences.
 * (No fixture covers float64 randn.)
 */
function transform16F64(d: Float64Array, off: number, mean: number, std: number): void {
  for (let j = off; j < off + 8; j++) {
    const u1 = 1 - d[j];
    const u2 = d[j + 8];
    const radius = Math.sqrt(-2 * logCR(u1));
    const theta = TWO_PI * u2;
    d[j] = radius * Math.cos(theta) * std + mean;
    d[j + 8] = radius * Math.sin(theta) * std + mean;
  }
}

// ---------------------------------------------------------------------------------------------
// torch CPU generator
// ---------------------------------------------------------------------------------------------

const STATE_MAGIC = 0x474e5254; // "TRNG" little-endian
const STATE_VERSION = 1;
const STATE_BYTES = 40 + 4 * N;

function toSeed64(seed: number | bigint): bigint {
  let s: bigint;
  if (typeof seed === 'bigint') s = seed;
  else {
    if (!Number.isInteger(seed)) throw new RangeError(`manualSeed: seed must be an integer, got ${seed}`);
    s = BigInt(seed);
  }
  // torch takes a uint64, and a negative Python int as its int64 bit pattern.
  if (s < -(1n << 63n) || s >= 1n << 64n) throw new RangeError(`manualSeed: seed ${s} is outside the int64/uint64 range`);
  return BigInt.asUintN(64, s);
}

/**
 * torch's CPUGeneratorImpl: an mt19937 engine plus the cached second Box–Muller value of the
 * scalar normal path. Independent instances behave like independent `torch.Generator()`s.
 */
export class Generator {
  private readonly engine = new MT19937();
  private seed64 = 0n;
  /** at::normal_distribution<double>'s cached sin-half of the last scalar Box–Muller pair. */
  private nextDoubleNormal: number | null = null;
  /** Part of torch's state; no kernel here reads or writes it, kept for faithful save/restore. */
  private nextFloatNormal: number | null = null;

  constructor(seed: number | bigint = TORCH_DEFAULT_SEED) {
    this.manualSeed(seed);
  }

  /** torch.Generator.manual_seed: only the low 32 bits reach the engine; clears the caches. */
  manualSeed(seed: number | bigint): this {
    this.seed64 = toSeed64(seed);
    this.engine.seed(Number(this.seed64 & 0xffffffffn));
    this.nextDoubleNormal = null;
    this.nextFloatNormal = null;
    return this;
  }

  /** The full 64-bit seed last given (torch.Generator.initial_seed). */
  initialSeed(): bigint {
    return this.seed64;
  }

  /** One raw 32-bit engine output (torch's `random()`). */
  random(): number {
    return this.engine.nextU32();
  }

  /** Two engine outputs, the first as the high word (torch's `random64()`). */
  random64(): bigint {
    return this.engine.nextU64();
  }

  /** The mt19937 words and position (for checks against torch.get_rng_state()). */
  mtState(): MT19937State {
    return this.engine.getState();
  }

  /** uniform_real_distribution<double>(0, 1): 53 bits of random64(), exact. */
  private uniform53(): number {
    const hi = this.engine.nextU32();
    const lo = this.engine.nextU32();
    return ((hi & 0x1fffff) * TWO_POW_32 + lo) * TWO_POW_M53;
  }

  /** torch.randn(shape, dtype) with this generator. */
  randnData(shape: readonly number[], dtype: 'float32'): Float32Array;
  randnData(shape: readonly number[], dtype: 'float64'): Float64Array;
  randnData(shape: readonly number[], dtype?: RandomDType): Float32Array | Float64Array;
  randnData(shape: readonly number[], dtype: RandomDType = 'float32'): Float32Array | Float64Array {
    return this.normalData(shape, 0, 1, dtype);
  }

  /**
   * `torch.empty(shape, dtype).normal_(mean, std)`. The kernel depends on the element count of
   * the whole tensor (§5): fewer than 16 takes the scalar path with the cached value, 16 or more
   * the 16-lane Box–Muller. Only mean 0, std 1 was verified against torch; other values follow
   * the documented formula (`fma(n, std, mean)` in float32 on the 16-lane path).
   */
  normalData(shape: readonly number[], mean: number, std: number, dtype: 'float32'): Float32Array;
  normalData(shape: readonly number[], mean: number, std: number, dtype: 'float64'): Float64Array;
  normalData(shape: readonly number[], mean: number, std: number, dtype?: RandomDType): Float32Array | Float64Array;
  normalData(shape: readonly number[], mean: number, std: number, dtype: RandomDType = 'float32'): Float32Array | Float64Array {
    const n = numelOf(shape);
    if (!(std >= 0)) throw new RangeError(`normal: std must be >= 0, got ${std}`);
    const out = dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
    if (n < 16) {
      this.normalScalar(out, mean, std);
      return out;
    }
    const eng = this.engine;
    if (out instanceof Float32Array) {
      const m32 = f(mean);
      const s32 = f(std);
      eng.fillUniform24(out, 0, n);
      normalFill16F32(out, n - (n % 16), m32, s32);
      if (n % 16 !== 0) {
        // torch recomputes the last 16 values from 16 fresh uniforms rather than transforming a
        // partial block; this overwrites the leftovers and part of the last full block.
        eng.fillUniform24(out, n - 16, n);
        transform16F32(out, n - 16, m32, s32);
      }
    } else {
      eng.fillUniform53(out, 0, n);
      for (let i = 0; i + 16 <= n; i += 16) transform16F64(out, i, mean, std);
      if (n % 16 !== 0) {
        eng.fillUniform53(out, n - 16, n);
        transform16F64(out, n - 16, mean, std);
      }
    }
    return out;
  }

  /**
   * at::normal_distribution<double> per element (§5.1). Box–Muller yields two values; the
   * sin-half is cached on the generator and returned by the next scalar draw, whichever call
   * makes it. The result is rounded to the dtype once, at the end, which hides the rare last-bit
   * differences between V8's sin/cos and glibc's for float32 output.
   */
  private normalScalar(out: Float32Array | Float64Array, mean: number, std: number): void {
    for (let i = 0; i < out.length; i++) {
      let v: number;
      if (this.nextDoubleNormal !== null) {
        v = this.nextDoubleNormal;
        this.nextDoubleNormal = null;
      } else {
        const u1 = this.uniform53();
        const u2 = this.uniform53();
        const r = Math.sqrt(-2 * logCR(1 - u2));
        const theta = TWO_PI * u1;
        this.nextDoubleNormal = r * Math.sin(theta);
        v = r * Math.cos(theta);
      }
      out[i] = v * std + mean;
    }
  }

  /** torch.rand(shape, dtype): float32 uses 24 bits of one output, float64 53 bits of two. */
  randData(shape: readonly number[], dtype: 'float32'): Float32Array;
  randData(shape: readonly number[], dtype: 'float64'): Float64Array;
  randData(shape: readonly number[], dtype?: RandomDType): Float32Array | Float64Array;
  randData(shape: readonly number[], dtype: RandomDType = 'float32'): Float32Array | Float64Array {
    const n = numelOf(shape);
    if (dtype === 'float32') {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = (this.engine.nextU32() & 0xffffff) * TWO_POW_M24;
      return out;
    }
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform53();
    return out;
  }

  /**
   * `torch.empty(shape).uniform_(from, to)` in float32: from and to are cast to float32, and the
   * GCC build fuses `u * (to - from) + from` into one fma (plain multiply-add differs by 1 ulp in
   * 10–40 % of values).
   */
  uniformData(shape: readonly number[], from: number, to: number): Float32Array {
    const n = numelOf(shape);
    const lo = f(from);
    const span = f(f(to) - lo);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = fma32((this.engine.nextU32() & 0xffffff) * TWO_POW_M24, span, lo);
    return out;
  }

  /**
   * torch.randint(low, high, shape) as int64: `random() % range + low`, or
   * `random64() % range + low` when range >= 2^32. No rejection, so the modulo bias is real.
   */
  randintData(low: number | bigint, high: number | bigint, shape: readonly number[]): BigInt64Array {
    const n = numelOf(shape);
    const lo = BigInt(low);
    const range = BigInt(high) - lo;
    if (range <= 0n) throw new RangeError(`randint: low (${low}) must be less than high (${high})`);
    const out = new BigInt64Array(n);
    if (range < 1n << 32n) {
      const r = Number(range);
      if (Number.isSafeInteger(Number(lo)) && BigInt(Number(lo)) === lo && Math.abs(Number(lo)) + r < 2 ** 53) {
        const l = Number(lo);
        for (let i = 0; i < n; i++) out[i] = BigInt((this.engine.nextU32() % r) + l);
      } else {
        for (let i = 0; i < n; i++) out[i] = BigInt.asIntN(64, BigInt(this.engine.nextU32() % r) + lo);
      }
    } else {
      for (let i = 0; i < n; i++) out[i] = BigInt.asIntN(64, (this.engine.nextU64() % range) + lo);
    }
    return out;
  }

  /**
   * The whole generator state as bytes (version 1, little-endian):
   * 0 magic "TRNG" | 4 u16 version | 6 u16 flags (1: double normal cached, 2: float normal cached)
   * | 8 u64 initial seed | 16 u32 mt pos | 20 u32 0 | 24 f64 cached double normal
   * | 32 f32 cached float normal | 36 u32 0 | 40 624 × u32 mt words.
   */
  getState(): Uint8Array {
    const bytes = new Uint8Array(STATE_BYTES);
    const dv = new DataView(bytes.buffer);
    const st = this.engine.getState();
    dv.setUint32(0, STATE_MAGIC, true);
    dv.setUint16(4, STATE_VERSION, true);
    dv.setUint16(6, (this.nextDoubleNormal !== null ? 1 : 0) | (this.nextFloatNormal !== null ? 2 : 0), true);
    dv.setBigUint64(8, this.seed64, true);
    dv.setUint32(16, st.pos, true);
    dv.setFloat64(24, this.nextDoubleNormal ?? 0, true);
    dv.setFloat32(32, this.nextFloatNormal ?? 0, true);
    for (let i = 0; i < N; i++) dv.setUint32(40 + 4 * i, st.words[i], true);
    return bytes;
  }

  /** Restores a state from getState(); the stream continues exactly, cached normal included. */
  setState(state: Uint8Array): void {
    if (state.length !== STATE_BYTES) throw new RangeError(`Generator.setState: ${state.length} bytes, expected ${STATE_BYTES}`);
    const dv = new DataView(state.buffer, state.byteOffset, state.byteLength);
    if (dv.getUint32(0, true) !== STATE_MAGIC) throw new RangeError('Generator.setState: not a torch generator state');
    const version = dv.getUint16(4, true);
    if (version !== STATE_VERSION) throw new RangeError(`Generator.setState: unsupported state version ${version}`);
    const flags = dv.getUint16(6, true);
    const words = new Uint32Array(N);
    for (let i = 0; i < N; i++) words[i] = dv.getUint32(40 + 4 * i, true);
    this.engine.setState({ words, pos: dv.getUint32(16, true) });
    this.seed64 = dv.getBigUint64(8, true);
    this.nextDoubleNormal = flags & 1 ? dv.getFloat64(24, true) : null;
    this.nextFloatNormal = flags & 2 ? dv.getFloat32(32, true) : null;
  }
}

/** The process-wide generator behind `manualSeed` (torch.default_generator). */
export const defaultGenerator = new Generator();

/** torch.manual_seed: seeds the default generator and returns it. */
export function manualSeed(seed: number | bigint): Generator {
  return defaultGenerator.manualSeed(seed);
}

// ---------------------------------------------------------------------------------------------
// numpy legacy RandomState
// ---------------------------------------------------------------------------------------------

const NP_MAGIC = 0x544d504e; // "NPMT" little-endian
const NP_VERSION = 1;
const NP_BYTES = 24 + 4 * N;

/** numpy's legacy `get_state()` tuple, minus the 'MT19937' tag. */
export interface NumpyLegacyState {
  key: Uint32Array;
  pos: number;
  hasGauss: boolean;
  cachedGaussian: number;
}

export interface RandomStateOptions {
  /**
   * The natural log used by legacy_gauss. The default, logCR, is correctly rounded. numpy calls
   * the C library's log; glibc's (error bound 0.52 ulp) rounds the other way in about 1 of 3000
   * calls, always where the exact value lies within a few hundredths of an ulp of a rounding
   * boundary. Such a call changes its two normals by 1 ulp of float64 (invisible after a cast to
   * float32). A caller holding that libm's exact log can pass it here.
   */
  log?: (x: number) => number;
}

/** numpy.random.RandomState (legacy MT19937 stream, polar Box–Muller with one cached value). */
export class RandomState {
  private readonly engine = new MT19937();
  private readonly log: (x: number) => number;
  private hasGauss = false;
  private gauss = 0;

  constructor(seed: number, options: RandomStateOptions = {}) {
    this.log = options.log ?? logCR;
    this.seed(seed);
  }

  /** RandomState.seed(int): init_genrand, like mt19937's own seeding; numpy allows 0..2^32-1. */
  seed(seed: number): this {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(`RandomState: seed must be an integer in [0, 2**32 - 1], got ${seed}`);
    }
    this.engine.seed(seed);
    this.hasGauss = false;
    this.gauss = 0;
    return this;
  }

  /** legacy random_double: 27 + 26 bits of two outputs. */
  randomDouble(): number {
    const a = this.engine.nextU32() >>> 5;
    const b = this.engine.nextU32() >>> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
  }

  /** legacy_gauss: the polar method; the second value is cached for the next call. */
  gaussian(): number {
    if (this.hasGauss) {
      this.hasGauss = false;
      const g = this.gauss;
      this.gauss = 0;
      return g;
    }
    let x1: number;
    let x2: number;
    let r2: number;
    do {
      x1 = 2.0 * this.randomDouble() - 1.0;
      x2 = 2.0 * this.randomDouble() - 1.0;
      r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 === 0.0);
    const fac = Math.sqrt((-2.0 * this.log(r2)) / r2);
    this.gauss = fac * x1;
    this.hasGauss = true;
    return fac * x2;
  }

  /** RandomState.randn(*shape), element by element in memory order. */
  randn(shape: readonly number[]): Float64Array {
    const out = new Float64Array(numelOf(shape));
    for (let i = 0; i < out.length; i++) out[i] = this.gaussian();
    return out;
  }

  /** RandomState.random_sample / rand. */
  rand(shape: readonly number[]): Float64Array {
    const out = new Float64Array(numelOf(shape));
    for (let i = 0; i < out.length; i++) out[i] = this.randomDouble();
    return out;
  }

  /** The state as numpy's `get_state()` holds it. */
  getNumpyState(): NumpyLegacyState {
    const st = this.engine.getState();
    return { key: st.words, pos: st.pos, hasGauss: this.hasGauss, cachedGaussian: this.gauss };
  }

  setNumpyState(state: NumpyLegacyState): void {
    this.engine.setState({ words: state.key, pos: state.pos });
    this.hasGauss = state.hasGauss;
    this.gauss = state.hasGauss ? state.cachedGaussian : 0;
  }

  /**
   * Bytes (version 1, little-endian): 0 magic "NPMT" | 4 u16 version | 6 u16 flags (1: has_gauss)
   * | 8 u32 pos | 12 u32 0 | 16 f64 gauss | 24 624 × u32 key.
   */
  getState(): Uint8Array {
    const bytes = new Uint8Array(NP_BYTES);
    const dv = new DataView(bytes.buffer);
    const st = this.engine.getState();
    dv.setUint32(0, NP_MAGIC, true);
    dv.setUint16(4, NP_VERSION, true);
    dv.setUint16(6, this.hasGauss ? 1 : 0, true);
    dv.setUint32(8, st.pos, true);
    dv.setFloat64(16, this.gauss, true);
    for (let i = 0; i < N; i++) dv.setUint32(24 + 4 * i, st.words[i], true);
    return bytes;
  }

  setState(state: Uint8Array): void {
    if (state.length !== NP_BYTES) throw new RangeError(`RandomState.setState: ${state.length} bytes, expected ${NP_BYTES}`);
    const dv = new DataView(state.buffer, state.byteOffset, state.byteLength);
    if (dv.getUint32(0, true) !== NP_MAGIC) throw new RangeError('RandomState.setState: not a RandomState state');
    const version = dv.getUint16(4, true);
    if (version !== NP_VERSION) throw new RangeError(`RandomState.setState: unsupported state version ${version}`);
    const key = new Uint32Array(N);
    for (let i = 0; i < N; i++) key[i] = dv.getUint32(24 + 4 * i, true);
    const hasGauss = (dv.getUint16(6, true) & 1) !== 0;
    this.setNumpyState({ key, pos: dv.getUint32(8, true), hasGauss, cachedGaussian: dv.getFloat64(16, true) });
  }
}
