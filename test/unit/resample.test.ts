// interpolate (torch 1.13 F.interpolate) and kresize (kornia 0.6.9 resize) against a naive
// per-output-pixel reference written from the formulas, hand-derived values, and gradients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.js';
import { gaussianKernel1d, interpolate, kresize, type InterpolateMode } from '../../src/tensor/resample.js';
import { assertClose } from '../helpers/close.js';
import { gradCheck, lcg, randomArray } from '../helpers/gradcheck.js';

// ---------------------------------------------------------------- naive reference

interface RefAxis {
  mode: InterpolateMode;
  inSize: number;
  outSize: number;
  alignCorners: boolean;
  antialias: boolean;
  /** user scale factor handed to the kernel (torch: scale_factor given, recompute unset) */
  sf?: number;
}

function refScale(a: RefAxis): number {
  if (a.alignCorners) return a.outSize > 1 ? (a.inSize - 1) / (a.outSize - 1) : 0;
  return a.sf !== undefined ? 1 / a.sf : a.inSize / a.outSize;
}

/** Keys cubic kernel K_A(x). */
function keys(x: number, A: number): number {
  const v = Math.abs(x);
  if (v <= 1) return (A + 2) * v ** 3 - (A + 3) * v ** 2 + 1;
  if (v < 2) return A * v ** 3 - 5 * A * v ** 2 + 8 * A * v - 4 * A;
  return 0;
}

/** (input index, weight) pairs producing output index `i` along one axis. */
function refTaps(a: RefAxis, i: number): [number, number][] {
  const { inSize: n, alignCorners: ac } = a;
  const clampIdx = (k: number): number => Math.min(Math.max(k, 0), n - 1);
  if (a.mode === 'nearest') {
    // torch keeps the scale and the product in float32 here, and the floor makes that visible.
    const s = Math.fround(a.sf !== undefined ? 1 / a.sf : n / a.outSize);
    return [[Math.min(Math.floor(Math.fround(s * i)), n - 1), 1]];
  }
  const scale = refScale(a);
  if (a.antialias) {
    // Every input pixel j, weight filter((j + 0.5 - center) / max(scale, 1)), normalised.
    const center = scale * (i + 0.5);
    const stretch = Math.max(scale, 1);
    const filter = a.mode === 'bicubic' ? (x: number) => keys(x, -0.5) : (x: number) => Math.max(0, 1 - Math.abs(x));
    const taps: [number, number][] = [];
    for (let j = 0; j < n; j++) {
      const w = filter((j + 0.5 - center) / stretch);
      if (w !== 0) taps.push([j, w]);
    }
    const total = taps.reduce((p, [, w]) => p + w, 0);
    return taps.map(([j, w]) => [j, w / total]);
  }
  const src = ac ? scale * i : scale * (i + 0.5) - 0.5;
  if (a.mode === 'bicubic') {
    const k = Math.floor(src);
    const t = src - k;
    return [-1, 0, 1, 2].map((d) => [clampIdx(k + d), keys(t - d, -0.75)]);
  }
  if (n === a.outSize) return [[i, 1]];
  const s = Math.max(src, 0);
  const k = Math.floor(s);
  const t = s - k;
  return [
    [clampIdx(k), 1 - t],
    [clampIdx(k + 1), t],
  ];
}

/** Naive separable resampling of an (N*C, H, W) block, one output pixel at a time. */
function refResize2d(x: Float32Array, planes: number, h: number, w: number, ay: RefAxis, ax: RefAxis): Float64Array {
  const out = new Float64Array(planes * ay.outSize * ax.outSize);
  for (let p = 0; p < planes; p++) {
    for (let oy = 0; oy < ay.outSize; oy++) {
      for (let ox = 0; ox < ax.outSize; ox++) {
        let acc = 0;
        for (const [iy, wy] of refTaps(ay, oy)) for (const [ix, wx] of refTaps(ax, ox)) acc += wy * wx * x[p * h * w + iy * w + ix]!;
        out[(p * ay.outSize + oy) * ax.outSize + ox] = acc;
      }
    }
  }
  return out;
}

/** kornia: reflect-padded separable Gaussian blur, W direction then H, by direct loops. */
function refBlur(x: Float64Array | Float32Array, planes: number, h: number, w: number, ksH: number, sH: number, ksW: number, sW: number): Float64Array {
  const kern = (ks: number, s: number): number[] => {
    const g = Array.from({ length: ks }, (_, i) => Math.exp(-((i - (ks - 1) / 2) ** 2) / (2 * s * s)));
    const tot = g.reduce((a, b) => a + b, 0);
    return g.map((v) => v / tot);
  };
  const reflect = (k: number, n: number): number => (k < 0 ? -k : k >= n ? 2 * (n - 1) - k : k);
  const kw = kern(ksW, sW);
  const kh = kern(ksH, sH);
  const tmp = new Float64Array(planes * h * w);
  const out = new Float64Array(planes * h * w);
  for (let p = 0; p < planes; p++) {
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        let acc = 0;
        for (let t = 0; t < ksW; t++) acc += kw[t]! * x[p * h * w + y * w + reflect(xx - (ksW - 1) / 2 + t, w)]!;
        tmp[p * h * w + y * w + xx] = acc;
      }
    }
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        let acc = 0;
        for (let t = 0; t < ksH; t++) acc += kh[t]! * tmp[p * h * w + reflect(y - (ksH - 1) / 2 + t, h) * w + xx]!;
        out[p * h * w + y * w + xx] = acc;
      }
    }
  }
  return out;
}

const TOL = { atol: 2e-5, rtol: 1e-5 };

async function values(t: T.Tensor): Promise<number[]> {
  return t.toArray();
}

function rand(n: number, seed: number): Float32Array {
  return randomArray(n, lcg(seed), -2, 2);
}

// ---------------------------------------------------------------- interpolate vs the reference

test('bilinear / bicubic / nearest against the per-pixel reference (size)', async () => {
  const cases: { hw: [number, number]; out: [number, number] }[] = [
    { hw: [5, 7], out: [3, 4] }, // downsampling, non-integer ratios
    { hw: [3, 4], out: [7, 9] }, // upsampling, non-integer ratios
    { hw: [6, 6], out: [4, 11] }, // mixed
    { hw: [4, 8], out: [4, 2] }, // one axis unchanged, integer downsampling
    { hw: [7, 5], out: [1, 2] }, // output size 1
  ];
  let seed = 10;
  for (const { hw, out } of cases) {
    const [h, w] = hw;
    const x = rand(2 * 3 * h * w, seed++);
    const xt = T.tensor(x, [2, 3, h, w]);
    for (const mode of ['bilinear', 'bicubic', 'nearest'] as const) {
      for (const alignCorners of mode === 'nearest' ? [undefined] : [false, true]) {
        for (const antialias of mode === 'nearest' ? [false] : [false, true]) {
          const y = interpolate(xt, { size: out, mode, alignCorners, antialias });
          assert.deepEqual(y.shape, [2, 3, out[0], out[1]]);
          const ac = alignCorners ?? false;
          const ref = refResize2d(x, 6, h, w, { mode, inSize: h, outSize: out[0], alignCorners: ac, antialias }, { mode, inSize: w, outSize: out[1], alignCorners: ac, antialias });
          assertClose(await values(y), ref, TOL, `${mode} ${h}x${w}->${out.join('x')} ac=${ac} aa=${antialias}`);
        }
      }
    }
  }
});

test('scale_factor: kernel uses 1/scale_factor unless recomputeScaleFactor', async () => {
  const [h, w] = [4, 6];
  const x = rand(h * w * 2, 3);
  const xt = T.tensor(x, [1, 2, h, w]);
  const sfs: [number, number][] = [
    [1.7, 0.6],
    [2.5, 1.3],
    [0.45, 2],
  ];
  for (const sf of sfs) {
    const out = [Math.floor(h * sf[0]), Math.floor(w * sf[1])] as [number, number];
    for (const mode of ['bilinear', 'bicubic', 'nearest'] as const) {
      for (const alignCorners of mode === 'nearest' ? [undefined] : [false, true]) {
        for (const antialias of mode === 'nearest' ? [false] : [false, true]) {
          const ac = alignCorners ?? false;
          const y = interpolate(xt, { scaleFactor: sf, mode, alignCorners, antialias });
          assert.deepEqual(y.shape, [1, 2, ...out]);
          const ref = refResize2d(x, 2, h, w, { mode, inSize: h, outSize: out[0], alignCorners: ac, antialias, sf: sf[0] }, { mode, inSize: w, outSize: out[1], alignCorners: ac, antialias, sf: sf[1] });
          assertClose(await values(y), ref, TOL, `${mode} sf=${sf} ac=${ac} aa=${antialias}`);
          // recompute_scale_factor=True is the same as passing the size.
          const yr = interpolate(xt, { scaleFactor: sf, mode, alignCorners, antialias, recomputeScaleFactor: true });
          const ys = interpolate(xt, { size: out, mode, alignCorners, antialias });
          assert.deepEqual(await values(yr), await values(ys));
        }
      }
    }
  }
});

test('nearest: legacy floor(dst * scale) rule, and scale_factor vs size differ', async () => {
  const xt = T.tensor([10, 11, 12, 13], [1, 1, 4]);
  // size 6: scale 4/6 -> floor(0, .67, 1.33, 2, 2.67, 3.33) = 0 0 1 2 2 3
  assert.deepEqual(await values(interpolate(xt, { size: 6 })), [10, 10, 11, 12, 12, 13]);
  // scale_factor 1.7 -> 6 outputs, scale 1/1.7: floor(0, .59, 1.18, 1.76, 2.35, 2.94) = 0 0 1 1 2 2
  assert.deepEqual(await values(interpolate(xt, { scaleFactor: 1.7 })), [10, 10, 11, 11, 12, 12]);
  // downsampling 4 -> 3: scale 4/3: floor(0, 1.33, 2.67) = 0 1 2
  assert.deepEqual(await values(interpolate(xt, { size: 3 })), [10, 11, 12]);
  // integer upsampling of a 2x2 image
  const img = T.tensor([1, 2, 3, 4], [1, 1, 2, 2]);
  assert.deepEqual(await values(interpolate(img, { scaleFactor: 2 })), [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  // 5-d input: nearest along three axes
  const vol = T.tensor(Float32Array.from({ length: 8 }, (_, i) => i), [1, 1, 2, 2, 2]);
  const v = await values(interpolate(vol, { size: [2, 1, 3] }));
  assert.deepEqual(v, [0, 0, 1, 4, 4, 5]);
});

test('linear (N, C, L) against the reference', async () => {
  const x = rand(2 * 9, 21);
  const xt = T.tensor(x, [1, 2, 9]);
  for (const out of [4, 9, 13, 1]) {
    for (const ac of [false, true]) {
      const y = interpolate(xt, { size: out, mode: 'linear', alignCorners: ac });
      const ref = refResize2d(x, 2, 1, 9, { mode: 'linear', inSize: 1, outSize: 1, alignCorners: ac, antialias: false }, { mode: 'linear', inSize: 9, outSize: out, alignCorners: ac, antialias: false });
      assertClose(await values(y), ref, TOL, `linear 9->${out} ac=${ac}`);
    }
  }
});

// ---------------------------------------------------------------- hand-derived values

test('hand-derived values from the torch formulas', async () => {
  const img = T.tensor([1, 2, 3, 4], [1, 1, 2, 2]);
  // bilinear 2x2 -> 4x4, align_corners=False: sources -0.25 (clamped to 0), 0.25, 0.75, 1.25 (weight on 1)
  assertClose(
    await values(interpolate(img, { size: 4, mode: 'bilinear' })),
    [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4],
    { atol: 1e-6, rtol: 0 },
    'bilinear ac=False',
  );
  // align_corners=True: sources 0, 1/3, 2/3, 1
  const t3 = 1 / 3;
  assertClose(
    await values(interpolate(img, { size: 4, mode: 'bilinear', alignCorners: true })),
    [1, 1 + t3, 1 + 2 * t3, 2, 1 + 2 * t3, 2, 2 + t3, 2 + 2 * t3, 2 + t3, 2 + 2 * t3, 3, 3 + t3, 3, 3 + t3, 3 + 2 * t3, 4],
    { atol: 1e-6, rtol: 0 },
    'bilinear ac=True',
  );
  // The 3x3 example of torch's nn.Upsample docs (first row), scale_factor 2.
  const x3 = T.tensor([1, 2, 0, 3, 4, 0, 0, 0, 0], [1, 1, 3, 3]);
  const up = await values(interpolate(x3, { scaleFactor: 2, mode: 'bilinear', alignCorners: false }));
  assertClose(up.slice(0, 6), [1, 1.25, 1.75, 1.5, 0.5, 0], { atol: 1e-6, rtol: 0 }, 'docs bilinear row 0');
  assertClose(up.slice(18, 24), [2.25, 2.4375, 2.8125, 2.25, 0.75, 0], { atol: 1e-6, rtol: 0 }, 'docs bilinear row 3');
  const upac = await values(interpolate(x3, { scaleFactor: 2, mode: 'bilinear', alignCorners: true }));
  assertClose(upac.slice(0, 6), [1, 1.4, 1.8, 1.6, 0.8, 0], { atol: 1e-6, rtol: 0 }, 'docs bilinear ac=True row 0');
  // bicubic [0, 1] -> 4, A = -0.75: sources -0.25, 0.25, 0.75, 1.25; cc1(x) = 1.25x^3 - 2.25x^2 + 1,
  // cc2(x) = -0.75x^3 + 3.75x^2 - 6x + 3: cc1(.25)=.87890625 cc1(.75)=.26171875 cc2(1.25)=-.10546875 cc2(1.75)=-.03515625
  const row = T.tensor([0, 1], [1, 1, 1, 2]);
  assertClose(await values(interpolate(row, { size: [1, 4], mode: 'bicubic' })), [-0.10546875, 0.2265625, 0.7734375, 1.10546875], { atol: 1e-6, rtol: 0 }, 'bicubic');
  // anti-aliased bilinear [0, 1, 2, 3] -> 2: support 2, weights 3/7 3/7 1/7 and 1/7 3/7 3/7
  const r4 = T.tensor([0, 1, 2, 3], [1, 1, 1, 4]);
  assertClose(await values(interpolate(r4, { size: [1, 2], mode: 'bilinear', antialias: true })), [5 / 7, 16 / 7], { atol: 1e-6, rtol: 0 }, 'bilinear aa');
  // anti-aliased bicubic (A = -0.5) [0, 1, 2, 3] -> 2: taps at -0.25, 0.25, 0.75, 1.25 (in units of
  // 2 pixels): .8671875 .8671875 .2265625 -.0703125, sum 1.890625 -> 71/121 and 292/121
  assertClose(await values(interpolate(r4, { size: [1, 2], mode: 'bicubic', antialias: true })), [71 / 121, 292 / 121], { atol: 1e-6, rtol: 0 }, 'bicubic aa');
  // Without antialias, bilinear 4 -> 2 samples at 0.5 and 2.5.
  assertClose(await values(interpolate(r4, { size: [1, 2], mode: 'bilinear' })), [0.5, 2.5], { atol: 1e-6, rtol: 0 }, 'bilinear no aa');
  // Output size 1, align_corners=False: scale 4 -> source 1.5 (torch >= 1.10 no longer maps it to 0).
  assertClose(await values(interpolate(r4, { size: [1, 1], mode: 'bilinear' })), [1.5], { atol: 1e-6, rtol: 0 }, 'bilinear to 1');
});

test('float64 inputs and identity shortcuts', async () => {
  const x = rand(2 * 5 * 6, 5);
  const x64 = T.tensor(Float64Array.from(x), [1, 2, 5, 6], 'float64');
  const y = interpolate(x64, { size: [3, 8], mode: 'bicubic', antialias: true });
  assert.equal(y.dtype, 'float64');
  const ref = refResize2d(x, 2, 5, 6, { mode: 'bicubic', inSize: 5, outSize: 3, alignCorners: false, antialias: true }, { mode: 'bicubic', inSize: 6, outSize: 8, alignCorners: false, antialias: true });
  assertClose(await values(y), ref, { atol: 1e-12, rtol: 1e-6 }, 'float64 bicubic aa');
  // Same size: bilinear is a copy (and builds no matmul at all).
  const xt = T.tensor(x, [1, 2, 5, 6]);
  assert.equal(interpolate(xt, { size: [5, 6], mode: 'bilinear' }), xt);
  assert.equal(interpolate(xt, { size: [5, 6], mode: 'bicubic', alignCorners: true }), xt);
  assert.equal(interpolate(xt, { size: [5, 6] }), xt);
});

test('argument checks follow torch', () => {
  const x = T.zeros([1, 1, 4, 4]);
  assert.throws(() => interpolate(x, { size: 2, alignCorners: false }), /alignCorners/);
  assert.throws(() => interpolate(x, { size: 2, antialias: true }), /antialias/);
  assert.throws(() => interpolate(x, { size: 2, scaleFactor: 2 }), /only one/);
  assert.throws(() => interpolate(x, {}), /either size or scaleFactor/);
  assert.throws(() => interpolate(x, { size: 2, mode: 'linear' }), /mode 'linear'/);
  assert.throws(() => interpolate(T.zeros([1, 4, 4]), { size: 2, mode: 'bilinear' }), /mode 'bilinear'/);
  assert.throws(() => interpolate(x, { scaleFactor: 0.1 }), /greater than 0/);
  assert.throws(() => interpolate(x, { size: [2, 2, 2] }), /3 entries|2 entries/);
});

// ---------------------------------------------------------------- kornia resize

test('gaussian kernel matches kornia docs', () => {
  assertClose(gaussianKernel1d(3, 2.5), [0.3243, 0.3513, 0.3243], { atol: 1e-4, rtol: 0 }, 'ks 3 sigma 2.5');
  assertClose(gaussianKernel1d(5, 1.5), [0.1201, 0.2339, 0.2921, 0.2339, 0.1201], { atol: 1e-4, rtol: 0 }, 'ks 5 sigma 1.5');
});

test('kresize against blur + per-pixel reference', async () => {
  const cases: { hw: [number, number]; out: [number, number]; mode: InterpolateMode; ac: boolean | undefined }[] = [
    { hw: [16, 12], out: [4, 5], mode: 'bicubic', ac: true }, // sgm's CLIP preprocessing settings
    { hw: [9, 14], out: [4, 4], mode: 'bicubic', ac: true },
    { hw: [10, 6], out: [4, 9], mode: 'bilinear', ac: false }, // one axis up: sigma 0.001 there
    { hw: [12, 12], out: [5, 7], mode: 'nearest', ac: undefined },
  ];
  let seed = 40;
  for (const { hw, out, mode, ac } of cases) {
    const [h, w] = hw;
    const x = rand(2 * 3 * h * w, seed++);
    const xt = T.tensor(x, [2, 3, h, w]);
    const fh = h / out[0];
    const fw = w / out[1];
    const sH = Math.max((fh - 1) / 2, 0.001);
    const sW = Math.max((fw - 1) / 2, 0.001);
    const odd = (k: number): number => (k % 2 === 0 ? k + 1 : k);
    const ksH = odd(Math.trunc(Math.max(4 * sH, 3)));
    const ksW = odd(Math.trunc(Math.max(4 * sW, 3)));
    const blurred = refBlur(x, 6, h, w, ksH, sH, ksW, sW);
    const acb = ac ?? false;
    const ref = refResize2d(Float32Array.from(blurred), 6, h, w, { mode, inSize: h, outSize: out[0], alignCorners: acb, antialias: false }, { mode, inSize: w, outSize: out[1], alignCorners: acb, antialias: false });
    const y = kresize(xt, out, { interpolation: mode, alignCorners: ac, antialias: true });
    assert.deepEqual(y.shape, [2, 3, ...out]);
    assertClose(await values(y), ref, { atol: 5e-5, rtol: 1e-5 }, `kresize aa ${mode} ${h}x${w}->${out.join('x')}`);
    // Without antialias it is plain interpolate.
    const plain = kresize(xt, out, { interpolation: mode, alignCorners: ac });
    assert.deepEqual(await values(plain), await values(interpolate(xt, { size: out, mode, alignCorners: ac })));
  }
});

test('kresize shapes, integer size and the no-op case', async () => {
  const x = T.tensor(rand(3 * 6 * 9, 7), [3, 6, 9]);
  assert.equal(kresize(x, [6, 9], { antialias: true }), x);
  // short side 6 -> 4, aspect 1.5 -> (4, 6)
  const y = kresize(x, 4, { interpolation: 'bicubic', alignCorners: true, antialias: true });
  assert.deepEqual(y.shape, [3, 4, 6]);
  assert.deepEqual(kresize(x, 4, { side: 'long' }).shape, [3, 2, 4]);
  const x5 = T.tensor(rand(2 * 2 * 3 * 6 * 9, 8), [2, 2, 3, 6, 9]);
  const y5 = kresize(x5, [3, 3], { antialias: true });
  assert.deepEqual(y5.shape, [2, 2, 3, 3, 3]);
  const y4 = kresize(T.reshape(x5, [4, 3, 6, 9]), [3, 3], { antialias: true });
  assert.deepEqual(await values(y5), await values(y4));
});

// ---------------------------------------------------------------- gradients

test('gradients (finite differences)', async () => {
  await gradCheck('bilinear aa down', (a) => interpolate(a, { size: [3, 4], mode: 'bilinear', antialias: true }), [[1, 2, 5, 7]]);
  await gradCheck('bicubic up ac', (a) => interpolate(a, { size: [5, 6], mode: 'bicubic', alignCorners: true }), [[1, 1, 3, 4]]);
  await gradCheck('bicubic aa mixed', (a) => interpolate(a, { size: [2, 7], mode: 'bicubic', antialias: true }), [[2, 1, 5, 4]]);
  await gradCheck('nearest sf', (a) => interpolate(a, { scaleFactor: [1.5, 0.7] }), [[1, 2, 4, 5]]);
  await gradCheck('linear 1d', (a) => interpolate(a, { size: 7, mode: 'linear' }), [[2, 1, 4]]);
  await gradCheck('kresize aa bicubic', (a) => kresize(a, [3, 4], { interpolation: 'bicubic', alignCorners: true, antialias: true }), [[1, 1, 9, 10]]);
});
