// Resampling with the semantics of torch 1.13's F.interpolate and kornia 0.6.9's resize.
//
// Every mode here is separable: along one spatial axis the output is a fixed linear map of the
// input, out = M @ in with M of shape (outSize, inSize). The maps are built on the host (cached per
// axis configuration) and applied with MatMul (dense modes) or Gather (nearest), so autodiff and
// ONNX emission come from those primitives. For (N, C, H, W): out = Mh @ x @ Mw^T.
//
// ---------------------------------------------------------------------------------------------
// Formulas (torch 1.13, CPU kernels; scalar_t = float for float32 inputs):
//
// aten/src/ATen/native/UpSample.h
//   compute_scales_value(scale, in, out)   = scale > 0 ? float(1.0 / scale) : float(in) / out
//   area_pixel_compute_scale(in, out, ac, scale)
//       ac  ? (out > 1 ? float(in - 1) / (out - 1) : 0)
//       !ac ? compute_scales_value(scale, in, out)
//     `scale` is the user's scale_factor when interpolate() was called with scale_factor and
//     recompute_scale_factor unset/False; it is absent (-> in/out) when called with size.
//   area_pixel_compute_source_index(scale, i, ac, cubic)
//       ac  ? scale * i
//       !ac ? src = float(scale * (i + 0.5) - 0.5);  (!cubic && src < 0) ? 0 : src
//   cubic_convolution1(x, A) = ((A + 2) * x - (A + 3)) * x * x + 1          (|x| <= 1)
//   cubic_convolution2(x, A) = ((A * x - 5A) * x + 8A) * x - 4A             (1 < |x| < 2)
//   get_cubic_upsample_coefficients(t), A = -0.75:
//       [cc2(t + 1), cc1(t), cc1(1 - t), cc2(2 - t)]
//
// aten/src/ATen/native/cpu/UpSampleKernel.cpp
//   HelperInterpNearest::compute_indices_weights (mode='nearest', the legacy OpenCV rule):
//       scale = area_pixel_compute_scale(in, out, false, scale); src = min(floor(float(scale * i)), in - 1)
//   compute_source_index_and_lambda (HelperInterpLinear, bilinear / linear):
//       in == out -> copy (i0 = i1 = i, weights 1, 0)
//       else real = area_pixel_compute_source_index(scale, i, ac, cubic=false)
//            i0 = int(real); i1 = i0 + (i0 < in - 1 ? 1 : 0); l1 = real - i0; l0 = 1 - l1
//   HelperInterpCubic::compute_indices_weights (bicubic):
//       real = area_pixel_compute_source_index(scale, i, ac, cubic=true); k = floor(real); t = real - k
//       taps clamp(k - 1 + j, 0, in - 1), j = 0..3, weights get_cubic_upsample_coefficients(t)
//   HelperInterpBase::_compute_weights_aa / _compute_indices_weights_aa (antialias=True; the
//   _upsample_bilinear2d_aa / _upsample_bicubic2d_aa ops, used for up- and downsampling alike):
//       scale    = area_pixel_compute_scale(in, out, ac, scale)   (ac only changes the scale)
//       support  = scale >= 1 ? (interp_size / 2) * scale : interp_size / 2   (interp_size 2 | 4)
//       center   = scale * (i + 0.5)
//       invscale = scale >= 1 ? 1 / scale : 1
//       xmin     = max(int(center - support + 0.5), 0)
//       xsize    = min(int(center + support + 0.5), in) - xmin
//       w_j      = filter((j + xmin - center + 0.5) * invscale), j < xsize; then w_j /= sum(w) if sum != 0
//     filters: HelperInterpLinear::aa_filter  = max(0, 1 - |x|)
//              HelperInterpCubic::aa_filter   = Keys cubic with A = -0.5 (cc1 for |x| < 1, cc2 for |x| < 2)
// torch/nn/functional.py (1.13) interpolate + upsample::compute_output_size:
//       out = size, or floor(in * scale_factor) (double math); with recompute_scale_factor=True the
//       kernel gets no scale (-> in / out). antialias only for 4-d bilinear / bicubic.
//
// The index/weight arithmetic above emulates torch's scalar_t rounding (Math.fround at each float
// operation for float32 / half inputs, plain double for float64 inputs), so indices (the floors in
// 'nearest') and weights agree with torch's to ~1 ulp (torch's AVX2 build may contract to FMA); the
// sums themselves run in ORT's MatMul, whose accumulation order differs from torch's loops.
//
// kornia 0.6.9 (kornia/geometry/transform/affwarp.py resize, kornia/filters/gaussian.py
// gaussian_blur2d, kornia/filters/filter.py filter2d_separable, kornia/filters/kernels.py gaussian):
//   size int -> _side_to_image_size; size == (h, w) -> input returned unchanged
//   factors = (h / out_h, w / out_w); antialias applies only if max(factors) > 1, then
//     sigma_a = max((factor_a - 1) / 2, 0.001); ks_a = int(max(4 * sigma_a, 3)), +1 if even
//     x = gaussian_blur2d(x, ks, sigma, border 'reflect'): 1-d kernels exp(-d^2 / (2 sigma^2)) / sum,
//     d = -(ks//2)..ks//2, applied along W then along H, each after reflect padding ((ks-1)/2 a side)
//   then F.interpolate(x, size, mode=interpolation, align_corners) without antialias.
// Blur and interpolation are both linear per axis, so kresize folds them into one map per axis,
// M = W_interp @ B_blur (B includes the reflect padding).
// ---------------------------------------------------------------------------------------------
import { cast, gather, matmul, reshape, tensor } from './ops.js';
import { isFloat, type DType } from './dtype.js';
import { fmtShape, ShapeError, type Tensor } from './tensor.js';

export type InterpolateMode = 'nearest' | 'linear' | 'bilinear' | 'bicubic';

export interface InterpolateOptions {
  /** Output spatial size (one number for every spatial dim, or one per dim). */
  size?: number | readonly number[];
  /** Multiplier of the spatial size (one number, or one per dim); exclusive with `size`. */
  scaleFactor?: number | readonly number[];
  /** Default 'nearest' as in torch. */
  mode?: InterpolateMode;
  /** torch's align_corners; must be left undefined for 'nearest' (torch raises). Default false. */
  alignCorners?: boolean;
  /** torch's recompute_scale_factor: true makes the kernel use in/out instead of 1/scaleFactor. */
  recomputeScaleFactor?: boolean;
  /** Anti-aliased bilinear / bicubic (torch's _upsample_bilinear2d_aa / _upsample_bicubic2d_aa). */
  antialias?: boolean;
}

export interface KResizeOptions {
  /** kornia's interpolation: default 'bilinear'. */
  interpolation?: InterpolateMode;
  alignCorners?: boolean;
  /** Gaussian pre-blur when downscaling (kornia's antialias). Default false. */
  antialias?: boolean;
  /** Which side an integer `size` sets: default 'short'. */
  side?: 'short' | 'long' | 'vert' | 'horz';
}

// ---------------------------------------------------------------- per-axis maps (host side)

const f32 = Math.fround;

/** A linear map along one axis: identity, a gather of input indices, or a dense (out x in) matrix. */
type AxisMap =
  | { kind: 'identity'; size: number }
  | { kind: 'gather'; inSize: number; index: readonly number[] }
  | { kind: 'dense'; inSize: number; outSize: number; m: Float64Array; cache: Map<string, unknown> };

type Kind = 'nearest' | 'linear' | 'cubic';

interface AxisSpec {
  kind: Kind;
  inSize: number;
  outSize: number;
  alignCorners: boolean;
  antialias: boolean;
  /** The user's scale factor for this axis when torch would pass it to the kernel. */
  scale: number | undefined;
  /** Index / weight arithmetic in double (float64 inputs) instead of float32. */
  double: boolean;
}

const MAX_CACHE = 256;
const mapCache = new Map<string, AxisMap>();

function cached(key: string, build: () => AxisMap): AxisMap {
  const hit = mapCache.get(key);
  if (hit) {
    // Refresh its place so the oldest entry is the least recently used.
    mapCache.delete(key);
    mapCache.set(key, hit);
    return hit;
  }
  const m = build();
  mapCache.set(key, m);
  if (mapCache.size > MAX_CACHE) mapCache.delete(mapCache.keys().next().value!);
  return m;
}

/** Rounding of torch's scalar_t: float32 for float32 / half inputs, none for float64. */
type Round = (v: number) => number;
const exact: Round = (v) => v;

/** area_pixel_compute_scale. */
function pixelScale(r: Round, inSize: number, outSize: number, alignCorners: boolean, scale: number | undefined): number {
  if (alignCorners) return outSize > 1 ? r((inSize - 1) / (outSize - 1)) : 0;
  return scale !== undefined && scale > 0 ? r(1 / scale) : r(inSize / outSize);
}

/** area_pixel_compute_source_index (the products are exact in double, then rounded once). */
function sourceIndex(r: Round, scale: number, i: number, alignCorners: boolean, cubic: boolean): number {
  if (alignCorners) return r(scale * i);
  const src = r(scale * (i + 0.5) - 0.5);
  return !cubic && src < 0 ? 0 : src;
}

/** cubic_convolution1, rounded at each operation. */
function cc1(r: Round, x: number, a: number): number {
  return r(r(r(r(r(r(a + 2) * x) - r(a + 3)) * x) * x) + 1);
}

/** cubic_convolution2, rounded at each operation. */
function cc2(r: Round, x: number, a: number): number {
  return r(r(r(r(r(r(a * x) - r(5 * a)) * x) + r(8 * a)) * x) - r(4 * a));
}

function aaFilterLinear(r: Round, x: number): number {
  const v = Math.abs(x);
  return v < 1 ? r(1 - v) : 0;
}

function aaFilterCubic(r: Round, x: number): number {
  const v = Math.abs(x);
  if (v < 1) return cc1(r, v, -0.5);
  if (v < 2) return cc2(r, v, -0.5);
  return 0;
}

function isIdentity(m: Float64Array, n: number): boolean {
  for (let i = 0; i < n; i++) for (let c = 0; c < n; c++) if (m[i * n + c] !== (i === c ? 1 : 0)) return false;
  return true;
}

function dense(inSize: number, outSize: number, m: Float64Array): AxisMap {
  if (inSize === outSize && isIdentity(m, inSize)) return { kind: 'identity', size: inSize };
  return { kind: 'dense', inSize, outSize, m, cache: new Map() };
}

function buildAxisMap(s: AxisSpec): AxisMap {
  const { inSize, outSize, alignCorners } = s;
  const r = s.double ? exact : f32;
  const scale = pixelScale(r, inSize, outSize, alignCorners, s.scale);
  if (s.kind === 'nearest') {
    const index: number[] = [];
    for (let i = 0; i < outSize; i++) index.push(Math.min(Math.floor(r(scale * i)), inSize - 1));
    if (inSize === outSize && index.every((v, i) => v === i)) return { kind: 'identity', size: inSize };
    return { kind: 'gather', inSize, index };
  }
  const m = new Float64Array(outSize * inSize);
  if (s.antialias) {
    const interp = s.kind === 'linear' ? 2 : 4;
    const filter = s.kind === 'linear' ? aaFilterLinear : aaFilterCubic;
    const support = r(scale >= 1 ? interp * 0.5 * scale : interp * 0.5);
    const invscale = r(scale >= 1 ? 1 / scale : 1);
    for (let i = 0; i < outSize; i++) {
      const center = r(scale * (i + 0.5));
      const xmin = Math.max(Math.trunc(r(center - support) + 0.5), 0);
      const xsize = Math.min(Math.trunc(r(center + support) + 0.5), inSize) - xmin;
      const w: number[] = [];
      let total = 0;
      for (let j = 0; j < xsize; j++) {
        const v = filter(r, r((r(j + xmin - center) + 0.5) * invscale));
        w.push(v);
        total = r(total + v);
      }
      for (let j = 0; j < xsize; j++) m[i * inSize + xmin + j] = total !== 0 ? r(w[j]! / total) : w[j]!;
    }
    return dense(inSize, outSize, m);
  }
  if (s.kind === 'linear') {
    for (let i = 0; i < outSize; i++) {
      if (inSize === outSize) {
        m[i * inSize + i] = 1;
        continue;
      }
      const real = sourceIndex(r, scale, i, alignCorners, false);
      const i0 = Math.min(Math.trunc(real), inSize - 1);
      const i1 = i0 + (i0 < inSize - 1 ? 1 : 0);
      const l1 = r(real - i0);
      const l0 = r(1 - l1);
      m[i * inSize + i0] += l0;
      m[i * inSize + i1] += l1;
    }
    return dense(inSize, outSize, m);
  }
  // Bicubic, A = -0.75, border taps clamped.
  const a = -0.75;
  for (let i = 0; i < outSize; i++) {
    const real = sourceIndex(r, scale, i, alignCorners, true);
    const k = Math.floor(real);
    const t = r(real - k);
    const t2 = r(1 - t);
    const coeffs = [cc2(r, r(t + 1), a), cc1(r, t, a), cc1(r, t2, a), cc2(r, r(t2 + 1), a)];
    for (let j = 0; j < 4; j++) {
      const src = Math.max(Math.min(k - 1 + j, inSize - 1), 0);
      m[i * inSize + src] += coeffs[j]!;
    }
  }
  return dense(inSize, outSize, m);
}

function axisMap(s: AxisSpec): AxisMap {
  const key = `${s.kind}|${s.inSize}|${s.outSize}|${s.alignCorners ? 1 : 0}|${s.antialias ? 1 : 0}|${s.scale ?? ''}|${s.double ? 64 : 32}`;
  return cached(key, () => buildAxisMap(s));
}

// ---------------------------------------------------------------- applying the maps

/** The dense matrix (or its transpose) as a constant of the compute dtype. */
function denseConstant(map: Extract<AxisMap, { kind: 'dense' }>, transposed: boolean, dtype: DType): Tensor {
  const hostDType = dtype === 'float64' ? 'float64' : 'float32';
  const key = `${transposed ? 'T' : 'N'}|${hostDType}`;
  let data = map.cache.get(key) as Float32Array | Float64Array | undefined;
  if (!data) {
    const { inSize, outSize, m } = map;
    data = hostDType === 'float64' ? new Float64Array(m.length) : new Float32Array(m.length);
    if (!transposed) data.set(m);
    else for (let r = 0; r < outSize; r++) for (let c = 0; c < inSize; c++) data[c * outSize + r] = m[r * inSize + c]!;
    map.cache.set(key, data);
  }
  const shape = transposed ? [map.inSize, map.outSize] : [map.outSize, map.inSize];
  const t = tensor(data, shape, hostDType);
  return hostDType === dtype ? t : cast(t, dtype);
}

function applyGather(x: Tensor, axis: number, map: Extract<AxisMap, { kind: 'gather' }>): Tensor {
  return gather(x, axis, tensor(map.index, [map.index.length], 'int64'));
}

/** Dense map along the last axis: x @ M^T. */
const alongLast = (x: Tensor, map: Extract<AxisMap, { kind: 'dense' }>): Tensor => matmul(x, denseConstant(map, true, x.dtype));
/** Dense map along the second-to-last axis: M @ x. */
const alongSecondLast = (x: Tensor, map: Extract<AxisMap, { kind: 'dense' }>): Tensor => matmul(denseConstant(map, false, x.dtype), x);

/** Applies one map per spatial axis (axes 2..ndim-1); dense maps only on the last two axes. */
function applyMaps(x: Tensor, maps: readonly AxisMap[]): Tensor {
  const nd = maps.length;
  let y = x;
  // Nearest maps are gathers (exact, and inf/NaN stay local); interpolate never mixes them with
  // dense maps, kresize folds its blur into dense maps.
  maps.forEach((m, i) => {
    if (m.kind === 'gather') y = applyGather(y, 2 + i, m);
  });
  const denseAxes = maps.flatMap((m, i) => (m.kind === 'dense' ? [i] : []));
  if (denseAxes.some((i) => i < nd - 2)) throw new ShapeError('interpolate', 'dense resampling is only supported on the last two axes');
  const mw = maps[nd - 1]!;
  const mh = nd >= 2 ? maps[nd - 2]! : undefined;
  if (mw.kind === 'dense' && mh?.kind === 'dense') {
    // Pick the cheaper order: H first costs Ho*H*W + Ho*W*Wo, W first costs H*W*Wo + Ho*H*Wo.
    const { inSize: h, outSize: ho } = mh;
    const { inSize: w, outSize: wo } = mw;
    const hFirst = ho * h * w + ho * w * wo;
    const wFirst = h * w * wo + ho * h * wo;
    return hFirst <= wFirst ? alongLast(alongSecondLast(y, mh), mw) : alongSecondLast(alongLast(y, mw), mh);
  }
  if (mw.kind === 'dense') y = alongLast(y, mw);
  if (mh?.kind === 'dense') y = alongSecondLast(y, mh);
  return y;
}

// ---------------------------------------------------------------- interpolate

function perDim(op: string, v: number | readonly number[], nd: number, name: string): number[] {
  if (typeof v === 'number') return new Array<number>(nd).fill(v);
  if (v.length !== nd) throw new ShapeError(op, `${name} ${JSON.stringify(v)} must have ${nd} entries for ${nd} spatial dims`);
  return [...v];
}

interface Plan {
  outSizes: number[];
  scales: (number | undefined)[];
}

function planSizes(op: string, x: Tensor, opts: InterpolateOptions): Plan {
  const nd = x.ndim - 2;
  const inSizes = x.shape.slice(2);
  if (opts.size !== undefined && opts.scaleFactor !== undefined) throw new ShapeError(op, 'only one of size or scaleFactor should be defined');
  let outSizes: number[];
  let scales: (number | undefined)[];
  if (opts.size !== undefined) {
    if (opts.recomputeScaleFactor) throw new ShapeError(op, 'recomputeScaleFactor is not meaningful with an explicit size');
    outSizes = perDim(op, opts.size, nd, 'size');
    scales = new Array<undefined>(nd).fill(undefined);
  } else if (opts.scaleFactor !== undefined) {
    const sf = perDim(op, opts.scaleFactor, nd, 'scaleFactor');
    if (sf.some((v) => !Number.isFinite(v) || v <= 0)) throw new ShapeError(op, `scale factors must be positive, got ${JSON.stringify(opts.scaleFactor)}`);
    outSizes = inSizes.map((d, i) => Math.floor(d * sf[i]!));
    scales = opts.recomputeScaleFactor ? new Array<undefined>(nd).fill(undefined) : sf;
  } else {
    throw new ShapeError(op, 'either size or scaleFactor should be defined');
  }
  if (outSizes.some((d) => !Number.isInteger(d) || d <= 0) || inSizes.some((d) => d <= 0)) {
    throw new ShapeError(op, `input and output sizes should be greater than 0, got input ${fmtShape(inSizes)} and output ${fmtShape(outSizes)}`);
  }
  return { outSizes, scales };
}

function checkModeRank(op: string, x: Tensor, mode: InterpolateMode): void {
  if (!isFloat(x.dtype)) throw new ShapeError(op, `needs a floating-point tensor, got ${x.dtype}`);
  const want: Record<InterpolateMode, number[]> = { nearest: [3, 4, 5], linear: [3], bilinear: [4], bicubic: [4] };
  if (!want[mode].includes(x.ndim)) {
    throw new ShapeError(op, `mode '${mode}' needs a ${want[mode].join('-d, ')}-d input (N, C, spatial...), got ${fmtShape(x.shape)}`);
  }
}

/**
 * torch.nn.functional.interpolate (torch 1.13 semantics) for modes nearest (3-5 d), linear (3 d),
 * bilinear and bicubic (4 d), with align_corners, scale_factor / recompute_scale_factor and the
 * anti-aliased bilinear / bicubic kernels. Differentiable (MatMul / Gather underneath).
 */
export function interpolate(x: Tensor, opts: InterpolateOptions): Tensor {
  const op = 'interpolate';
  const mode = opts.mode ?? 'nearest';
  if (!['nearest', 'linear', 'bilinear', 'bicubic'].includes(mode)) throw new ShapeError(op, `unsupported mode '${String(mode)}'`);
  checkModeRank(op, x, mode);
  if (mode === 'nearest' && opts.alignCorners !== undefined) {
    throw new ShapeError(op, 'alignCorners can only be used with the interpolating modes linear | bilinear | bicubic');
  }
  if (opts.antialias && !(mode === 'bilinear' || mode === 'bicubic')) {
    throw new ShapeError(op, 'antialias is only supported for bilinear and bicubic modes');
  }
  const { outSizes, scales } = planSizes(op, x, opts);
  const kind: Kind = mode === 'nearest' ? 'nearest' : mode === 'bicubic' ? 'cubic' : 'linear';
  const maps = outSizes.map((outSize, i) =>
    axisMap({
      kind,
      inSize: x.shape[2 + i]!,
      outSize,
      alignCorners: opts.alignCorners ?? false,
      antialias: opts.antialias ?? false,
      scale: scales[i],
      double: x.dtype === 'float64',
    }),
  );
  return applyMaps(x, maps);
}

// ---------------------------------------------------------------- kornia resize

/** kornia's gaussian(window_size, sigma): exp(-d^2 / (2 sigma^2)) normalised, float32 rounding. */
export function gaussianKernel1d(size: number, sigma: number): Float64Array {
  if (!Number.isInteger(size) || size <= 0) throw new ShapeError('gaussian_kernel1d', `kernel size must be a positive integer, got ${size}`);
  const half = Math.floor(size / 2);
  const denom = f32(2 * sigma * sigma);
  const g = new Float64Array(size);
  let total = 0;
  for (let i = 0; i < size; i++) {
    const d = i - half + (size % 2 === 0 ? 0.5 : 0);
    g[i] = f32(Math.exp(f32(-(d * d) / denom)));
    total = f32(total + g[i]!);
  }
  for (let i = 0; i < size; i++) g[i] = f32(g[i]! / total);
  return g;
}

/** Reflect-padded ("reflect", edge not repeated) 1-d convolution with `kernel` as an (n x n) matrix. */
function blurMatrix(n: number, kernel: Float64Array): Float64Array {
  const ks = kernel.length;
  const front = Math.floor((ks - 1) / 2);
  const rear = ks - 1 - front;
  if (front >= n || rear >= n) {
    throw new ShapeError('kresize', `reflect padding of ${Math.max(front, rear)} needs a dimension larger than ${n}`);
  }
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < ks; t++) {
      let r = i - front + t;
      if (r < 0) r = -r;
      else if (r > n - 1) r = 2 * (n - 1) - r;
      m[i * n + r] += kernel[t]!;
    }
  }
  return m;
}

/** The blur B (n x n) followed by the interpolation map, as one map. */
function composeBlur(map: AxisMap, n: number, kernel: Float64Array): AxisMap {
  const b = blurMatrix(n, kernel);
  if (map.kind === 'identity') return dense(n, n, b);
  if (map.kind === 'gather') {
    const out = map.index.length;
    const m = new Float64Array(out * n);
    map.index.forEach((src, r) => m.set(b.subarray(src * n, src * n + n), r * n));
    return dense(n, out, m);
  }
  const { outSize, m: w } = map;
  const m = new Float64Array(outSize * n);
  for (let r = 0; r < outSize; r++) {
    for (let k = 0; k < n; k++) {
      const wk = w[r * n + k]!;
      if (wk === 0) continue;
      for (let c = 0; c < n; c++) m[r * n + c] += wk * b[k * n + c]!;
    }
  }
  return dense(n, outSize, m);
}

function sideToImageSize(sideSize: number, aspectRatio: number, side: string): [number, number] {
  if (side === 'vert') return [sideSize, Math.trunc(sideSize * aspectRatio)];
  if (side === 'horz') return [Math.trunc(sideSize / aspectRatio), sideSize];
  if ((side === 'short') !== aspectRatio < 1.0) return [sideSize, Math.trunc(sideSize * aspectRatio)];
  return [Math.trunc(sideSize / aspectRatio), sideSize];
}

/**
 * kornia.geometry.transform.resize (kornia 0.6.9) for (*, H, W) images: when `antialias` and
 * downscaling, a separable Gaussian blur (reflect border, sigma = max((factor - 1) / 2, 0.001),
 * kernel 2*2*sigma rounded down, at least 3, made odd) precedes F.interpolate(size, mode,
 * align_corners) without torch's antialias.
 */
export function kresize(x: Tensor, size: number | readonly [number, number], opts: KResizeOptions = {}): Tensor {
  const op = 'kresize';
  if (x.ndim < 2) throw new ShapeError(op, `input must have at least two dimensions, got ${fmtShape(x.shape)}`);
  if (x.size === 0) throw new ShapeError(op, 'input is empty');
  const side = opts.side ?? 'short';
  if (!['short', 'long', 'vert', 'horz'].includes(side)) throw new ShapeError(op, `side must be short, long, vert or horz, got '${side}'`);
  const h = x.shape[x.ndim - 2]!;
  const w = x.shape[x.ndim - 1]!;
  if (typeof size !== 'number' && size.length !== 2) throw new ShapeError(op, `size must be a number or (h, w), got ${JSON.stringify(size)}`);
  const target: [number, number] = typeof size === 'number' ? sideToImageSize(size, w / h, side) : [size[0], size[1]];
  if (target[0] === h && target[1] === w) return x;

  // View as (B, C, H, W) like kornia's perform_keep_shape_image.
  const c = x.ndim >= 3 ? x.shape[x.ndim - 3]! : 1;
  const x4 = reshape(x, [-1, c, h, w]);
  const mode = opts.interpolation ?? 'bilinear';
  const factors = [h / target[0], w / target[1]];
  const antialias = (opts.antialias ?? false) && Math.max(...factors) > 1;
  let y: Tensor;
  if (!antialias) {
    y = interpolate(x4, { size: target, mode, alignCorners: opts.alignCorners });
  } else {
    checkModeRank(op, x4, mode);
    if (mode === 'nearest' && opts.alignCorners !== undefined) {
      throw new ShapeError(op, 'alignCorners can only be used with the interpolating modes linear | bilinear | bicubic');
    }
    const sigmas = factors.map((f) => Math.max((f - 1.0) / 2.0, 0.001));
    const ks = sigmas.map((s) => {
      const k = Math.trunc(Math.max(2.0 * 2 * s, 3));
      return k % 2 === 0 ? k + 1 : k;
    });
    const kind: Kind = mode === 'nearest' ? 'nearest' : mode === 'bicubic' ? 'cubic' : 'linear';
    const maps = [0, 1].map((i) => {
      const n = i === 0 ? h : w;
      const double = x.dtype === 'float64';
      const key = `kresize|${kind}|${n}|${target[i]}|${opts.alignCorners ? 1 : 0}|${sigmas[i]}|${ks[i]}|${double ? 64 : 32}`;
      return cached(key, () => {
        const interp = axisMap({ kind, inSize: n, outSize: target[i]!, alignCorners: opts.alignCorners ?? false, antialias: false, scale: undefined, double });
        return composeBlur(interp, n, gaussianKernel1d(ks[i]!, sigmas[i]!));
      });
    });
    y = applyMaps(x4, maps);
  }
  return reshape(y, [...x.shape.slice(0, -2), target[0], target[1]]);
}
