// Parity of the invisible watermark (sgm WatermarkEmbedder / detect.py via imwatermark dwtDct)
// against ../shared/fixtures/watermark. Every recorded detection is re-run on the decoded file
// (sharp; PNG pixels are exactly cv2.imread's). Raw .jpg files are decoded by sharp's libjpeg, not
// OpenCV's, so only their verdict is required (the exact pixels are checked via `.decoded.png`).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { readImageRgb, rgbToBgr } from '../../src/io/image.js';
import { loadIo, parityArea, type ParityCase } from '../helpers/fixtures.js';
import {
  MATCH_VALUES,
  WATERMARK_BITS,
  WATERMARK_NUM_BITS,
  bgrF32ToRgbChwUnit,
  decodeWatermark,
  embedWatermarkBgrF32,
  embedWatermarkBgrU8,
  rgbChwUnitToBgrU8Truncated,
  watermarkVerdict,
} from '../../src/watermark/dwtdct.js';

/** Re-runs detect.py's detection on one recorded file and compares with the recorded entry. */
async function checkDetection(c: ParityCase, d: any, t: TestContext): Promise<void> {
  const file = d.file as string;
  const img = await readImageRgb(join(c.dir, file));
  if (typeof d.height === 'number') assert.equal(img.height, d.height, `${file}: height`);
  if (typeof d.width === 'number') assert.equal(img.width, d.width, `${file}: width`);
  const bgr = rgbToBgr(img.data);
  if (d.error) {
    assert.match(String(d.error), /image too small, should be larger than 256x256/);
    assert.throws(() => decodeWatermark(bgr, img.height, img.width), /image too small, should be larger than 256x256/);
    if (d.detect_py) assert.equal(d.detect_py.exit_code, 1);
    return;
  }
  const bits = decodeWatermark(bgr, img.height, img.width);
  const v = watermarkVerdict(bits);
  const lines = [`${file}: ${v.verdict}`, `\tBits that matched the watermark ${v.numMatched} from 48`];
  if (/\.jpe?g$/i.test(file)) {
    // other libjpeg than OpenCV's: the pixels may differ slightly; the verdict must not
    const sameBits = bits.every((b, i) => b === d.bits[i]);
    t.diagnostic(`${file}: ${v.numMatched}/48 matched (recorded ${d.num_matched}), bits ${sameBits ? 'identical' : 'differ'}`);
    assert.equal(v.verdict, d.verdict, `${file}: verdict (sharp-decoded JPEG)`);
    return;
  }
  assert.deepEqual(bits, d.bits, `${file}: decoded bits`);
  assert.equal(v.numMatched, d.num_matched, `${file}: num_matched`);
  assert.equal(v.verdict, d.verdict, `${file}: verdict`);
  if (d.detect_py?.stdout_lines) assert.deepEqual(lines, d.detect_py.stdout_lines, `${file}: detect.py stdout`);
}

function compareExact(t: TestContext, got: Float32Array, want: Float32Array, tol: Record<string, any>): void {
  assert.equal(got.length, want.length);
  const atol = typeof tol.atol === 'number' ? tol.atol : 0;
  let maxDiff = 0, same = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (d === 0) same++;
    if (d > maxDiff) maxDiff = d;
  }
  t.diagnostic(`out.image: ${same}/${got.length} identical, max |diff| ${maxDiff}`);
  assert.ok(maxDiff <= atol, `out.image max |diff| ${maxDiff} > atol ${atol} (${got.length - same} values differ)`);
}

async function runCase(c: ParityCase, t: TestContext): Promise<void> {
  const spec = c.spec;
  const h = spec.height as number, w = spec.width as number;
  const detection: any[] = Array.isArray(spec.detection) ? spec.detection : [];

  if (spec.expect_error) {
    // no io file: the size check needs no pixels
    const zeros = new Uint8Array(h * w * 3);
    assert.throws(() => embedWatermarkBgrU8(zeros, h, w), /image too small, should be larger than 256x256/);
    assert.throws(() => decodeWatermark(zeros, h, w), /image too small, should be larger than 256x256/);
    for (const d of detection) await t.test(`detect ${d.file}`, (tt) => checkDetection(c, d, tt));
    return;
  }
  if (!c.ioPath) {
    // detection-only cases (thresholds): every file is an image
    assert.ok(detection.length > 0, `${c.name}: no detection entries`);
    for (const d of detection) await t.test(`detect ${d.file}`, (tt) => checkDetection(c, d, tt));
    return;
  }

  const io = loadIo(c);
  let enc: Float32Array;
  if (io.has('enc.bgr_in_u8')) {
    enc = embedWatermarkBgrU8(io.get('enc.bgr_in_u8')!.data as Uint8Array, h, w);
  } else {
    const bgrIn = io.get('enc.bgr_in')!.data as Float32Array;
    const img = io.get('in.image');
    if (img) {
      // enc.bgr_in is 255 * in.image, channels reversed (float32)
      const x = img.data as Float32Array, n = h * w;
      for (let o = 0; o < n; o++) {
        for (let ch = 0; ch < 3; ch++) assert.equal(bgrIn[3 * o + ch], Math.fround(255 * x[(2 - ch) * n + o]!));
      }
    }
    enc = embedWatermarkBgrF32(bgrIn, h, w);
  }
  const out = bgrF32ToRgbChwUnit(enc, h, w);
  const ref = io.get('out.image');
  if (ref) compareExact(t, out, ref.data as Float32Array, spec.tolerance ?? {});

  // Saving truncates; the saved PNG's pixels are exactly these, so detect.py's result on
  // NAME.output.png must be reproduced from them without decoding the file.
  const saved = rgbChwUnitToBgrU8Truncated(ref ? (ref.data as Float32Array) : out, h, w);
  const mine = rgbChwUnitToBgrU8Truncated(out, h, w);
  for (const d of detection) {
    if (d.file === `${c.name}.output.png` && d.kind === 'watermarked_sgm') {
      const bits = decodeWatermark(saved, h, w);
      assert.deepEqual(bits, d.bits, `${d.file}: decoded bits`);
      assert.deepEqual(decodeWatermark(mine, h, w), d.bits, `${d.file}: decoded bits of our own embedding`);
      const v = watermarkVerdict(bits);
      assert.equal(v.numMatched, d.num_matched);
      assert.equal(v.verdict, d.verdict);
      if (d.detect_py?.stdout_lines) {
        assert.deepEqual(d.detect_py.stdout_lines, [`${d.file}: ${v.verdict}`, `\tBits that matched the watermark ${v.numMatched} from 48`]);
      }
      // and the same from the saved file itself
      await t.test(`detect ${d.file} [${d.kind}] (decoded file)`, (tt) => checkDetection(c, d, tt));
    } else {
      await t.test(`detect ${d.file} [${d.kind}]`, (tt) => checkDetection(c, d, tt));
    }
  }
}

// index.json: the constants against the reference's message and verdict table.
function runIndex(c: ParityCase): void {
  const index = c.spec;
  assert.equal(WATERMARK_NUM_BITS, 48);
  assert.deepEqual([...WATERMARK_BITS], index.watermark_bits);
  assert.equal(WATERMARK_BITS.join(''), '101100111110110010010000011110111011000110011110');
  assert.deepEqual(MATCH_VALUES.map((m) => [...m]), index.match_values);
}

parityArea('watermark', { watermark: runCase, index: runIndex });
