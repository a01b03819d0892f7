import test from 'node:test';
import assert from 'node:assert/strict';
import {
  WATERMARK_BITS,
  decodeWatermark,
  embedWatermarkBgrU8,
  watermarkVerdict,
} from '../../src/watermark/dwtdct.js';
import { fma32 } from '../../src/tensor/random.js';

test('watermark: WATERMARK_BITS is 0xB3EC907BB19E, MSB first', () => {
  assert.equal(WATERMARK_BITS.length, 48);
  assert.equal(parseInt(WATERMARK_BITS.join(''), 2), 0xb3ec907bb19e);
});

test('watermark: fma32 rounds once (no double rounding through float64)', () => {
  const a = 1 + 2 ** -23, b = 2 ** -24 * (1 - 2 ** -23), c = 1 + 2 ** -23;
  assert.equal(Math.fround(a * b + c), 1 + 2 ** -22); // float64 lands on the float32 midpoint
  assert.equal(fma32(a, b, c), 1 + 2 ** -23);
  assert.equal(fma32(2, 3, 0.5), 6.5);
  assert.equal(fma32(Math.fround(0.1), Math.fround(0.2), 0), Math.fround(Math.fround(0.1) * Math.fround(0.2)));
});

test('watermark: size check on the pixel count only', () => {
  assert.throws(() => embedWatermarkBgrU8(new Uint8Array(255 * 256 * 3), 255, 256), /image too small/);
  assert.throws(() => decodeWatermark(new Uint8Array(255 * 256 * 3), 255, 256), /image too small/);
  assert.doesNotThrow(() => decodeWatermark(new Uint8Array(128 * 512 * 3), 128, 512));
});

test('watermark: verdict boundaries', () => {
  const flip = (k: number) => WATERMARK_BITS.map((b, i) => (i < k ? b : 1 - b));
  assert.deepEqual([27, 28, 33, 34, 35, 36, 48].map((m) => watermarkVerdict(flip(m)).numMatched), [27, 28, 33, 34, 35, 36, 48]);
  assert.match(watermarkVerdict(flip(27)).verdict, /^No watermark/);
  assert.match(watermarkVerdict(flip(28)).verdict, /^Partial/);
  assert.match(watermarkVerdict(flip(34)).verdict, /^Likely/);
  assert.match(watermarkVerdict(flip(36)).verdict, /^Very likely/);
});
