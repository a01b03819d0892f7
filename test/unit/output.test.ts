import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { writeFileAtomic, AtomicWriteError } from '../../src/io/atomic.js';
import { HashError, sha256File, verifySha256 } from '../../src/io/hash.js';
import { readImageRgb, rgbToBgr } from '../../src/io/image.js';
import { PngError, crc32, encodePng, parsePngText, pngChunks, readPngText, writePng } from '../../src/io/png.js';
import {
  OutputError,
  WATERMARK_DESCRIPTION,
  makeGrid,
  saveSamples,
  savedPngPixels,
  toUint8Hwc,
  watermarkSamples,
} from '../../src/inference/output.js';
import { VERSION } from '../../src/version.js';
import { MATCH_VALUES, decodeWatermark, watermarkVerdict } from '../../src/watermark/dwtdct.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'sgm-output-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Deterministic pseudo-random bytes (xorshift32), independent of the code under test. */
function noiseBytes(n: number, seed = 12345): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s & 0xff;
  }
  return out;
}

async function decodeRaw(png: Uint8Array | string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 3);
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

/** A smooth RGB image in [0, 1] as float32 CHW (n copies with different phases), like a decoded sample. */
function smoothBatch(n: number, h: number, w: number): Float32Array {
  const out = new Float32Array(n * 3 * h * w);
  for (let k = 0; k < n; k++) {
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const v = 0.5 + 0.3 * Math.sin(y / 17 + c + k) * Math.cos(x / 23 - c) + 0.1 * Math.sin((x + y) / 41);
          out[((k * 3 + c) * h + y) * w + x] = v;
        }
      }
    }
  }
  return out;
}

/**
 * Images dwtDct can carry: it hides each bit in the largest coefficient of a 4x4 block of the U
 * plane's Haar LL band, and decoding fails where that maximum is ambiguous (flat, smooth or noisy
 * blocks, where the embedding's change of up to 27 moves the maximum elsewhere). So blue ramps up
 * steeply to the right and down inside every 8x8 pixel block (random base per block), which makes
 * the block maximum unambiguous; red and green are smooth.
 */
function rampBatch(n: number, h: number, w: number): Float32Array {
  const out = new Float32Array(n * 3 * h * w);
  const noise = noiseBytes(n * Math.ceil(h / 8) * Math.ceil(w / 8), 4242);
  const bw = Math.ceil(w / 8);
  for (let k = 0; k < n; k++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const o = (k * 3 * h + y) * w + x;
        const base = 8 + noise[(k * Math.ceil(h / 8) + Math.floor(y / 8)) * bw + Math.floor(x / 8)]! / 16;
        out[o] = 0.5 + 0.3 * Math.sin(y / 17 + k) * Math.cos(x / 23);
        out[o + h * w] = 0.5 + 0.3 * Math.sin(y / 29 + 1) * Math.cos(x / 13 - k);
        out[o + 2 * h * w] = (base + 16 * (x % 8) + 16 * (y % 8)) / 255;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- PNG

test('png: crc32 check value', () => {
  assert.equal(crc32(Buffer.from('123456789', 'latin1')), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
  // continuing a CRC equals the CRC of the concatenation
  assert.equal(crc32(Buffer.from('6789'), crc32(Buffer.from('12345'))), 0xcbf43926);
});

test('png: pixels and text round trip (tEXt, iTXt for non-Latin-1, long values)', async () => {
  const width = 7, height = 5;
  const rgb = noiseBytes(width * height * 3);
  const long = 'a photograph of '.repeat(6000);
  const text = {
    prompt: 'Astronaut in a jungle, cold color palette, 8k',
    negative: 'café, naïve (Latin-1 only)',
    utf8: '宇宙飛行士 in a jungle 🚀🌴',
    multiline: 'line 1\nline 2',
    long,
    empty: '',
  };
  const png = await encodePng(rgb, width, height, text);
  const back = await decodeRaw(png);
  assert.equal(back.width, width);
  assert.equal(back.height, height);
  assert.deepEqual(back.data, rgb);
  assert.deepEqual(parsePngText(png), text);
  assert.deepEqual(await readPngText(png), text);

  const chunks = pngChunks(png, { checkCrc: true });
  const types = chunks.map((c) => c.type);
  assert.equal(types[0], 'IHDR');
  assert.equal(types[types.length - 1], 'IEND');
  const textTypes = chunks.filter((c) => c.type === 'tEXt' || c.type === 'iTXt');
  assert.equal(textTypes.length, Object.keys(text).length);
  const byKey = new Map(textTypes.map((c) => [Buffer.from(c.data.subarray(0, c.data.indexOf(0))).toString('latin1'), c.type]));
  assert.equal(byKey.get('utf8'), 'iTXt');
  assert.equal(byKey.get('negative'), 'tEXt');
  assert.equal(byKey.get('long'), 'tEXt');
  // every CRC recomputed here over type + data
  for (const c of chunks) {
    const typeAndData = png.subarray(c.offset + 4, c.offset + 8 + c.data.length);
    assert.equal(crc32(typeAndData), c.crc, `CRC of ${c.type}`);
  }
  // Latin-1 text is stored as Latin-1 bytes (é = 0xe9), not UTF-8
  const neg = textTypes.find((c) => Buffer.from(c.data).subarray(0, 9).equals(Buffer.from('negative\0')))!;
  assert.ok(Buffer.from(neg.data).includes(Buffer.of(0x63, 0x61, 0x66, 0xe9)));
  // a corrupted CRC is detected
  const bad = Buffer.from(png);
  const t = chunks.find((c) => c.type === 'tEXt')!;
  bad[t.offset + 8] ^= 0xff;
  assert.throws(() => pngChunks(bad, { checkCrc: true }), /bad CRC in chunk tEXt/);
});

test('png: no text gives a plain PNG; invalid keywords and NUL values are refused', async () => {
  const rgb = noiseBytes(2 * 2 * 3, 7);
  const png = await encodePng(rgb, 2, 2);
  assert.deepEqual(parsePngText(png), {});
  await assert.rejects(encodePng(rgb, 2, 2, { '': 'x' }), PngError);
  await assert.rejects(encodePng(rgb, 2, 2, { ' lead': 'x' }), /invalid PNG text keyword/);
  await assert.rejects(encodePng(rgb, 2, 2, { ['k'.repeat(80)]: 'x' }), /invalid PNG text keyword/);
  await assert.rejects(encodePng(rgb, 2, 2, { 'プロンプト': 'x' }), /invalid PNG text keyword/);
  await assert.rejects(encodePng(rgb, 2, 2, { k: 'a\0b' }), /NUL/);
  await assert.rejects(encodePng(rgb, 3, 2), /expected 18 bytes/);
  assert.throws(() => parsePngText(Buffer.from('not a png at all')), /bad signature/);
});

test('png: writePng is atomic and leaves no temporary files', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'img.png');
  const rgb = noiseBytes(4 * 3 * 3, 3);
  await writePng(path, rgb, 4, 3, { prompt: 'p' });
  assert.deepEqual(readdirSync(dir), ['img.png']);
  assert.deepEqual((await readImageRgb(path)).data, rgb);
  assert.deepEqual(await readPngText(path), { prompt: 'p' });
  const before = readFileSync(path);

  // an encoding failure writes nothing
  await assert.rejects(writePng(path, rgb, 5, 3), PngError);
  assert.deepEqual(readFileSync(path), before);

  // exclusive: an existing file is neither replaced nor touched
  await assert.rejects(writePng(path, noiseBytes(4 * 3 * 3, 4), 4, 3, {}, { exclusive: true }), (e: unknown) => {
    return e instanceof AtomicWriteError && e.code === 'EEXIST';
  });
  assert.deepEqual(readFileSync(path), before);
  assert.deepEqual(readdirSync(dir), ['img.png']);

  // a failing rename (the target is a non-empty directory) removes the temporary file
  const blocker = join(dir, 'blocked.png');
  mkdirSync(blocker);
  writeFileSync(join(blocker, 'keep'), 'x');
  await assert.rejects(writeFileAtomic(blocker, Buffer.from('data')), AtomicWriteError);
  assert.deepEqual(readdirSync(dir).sort(), ['blocked.png', 'img.png']);
  assert.deepEqual(readdirSync(blocker), ['keep']);

  // a missing folder is an error that names the file
  await assert.rejects(writeFileAtomic(join(dir, 'nope', 'x.png'), Buffer.from('x')), /cannot write .*x\.png/);

  // replacing (non-exclusive) works and still leaves no temporary file
  await writePng(path, noiseBytes(4 * 3 * 3, 5), 4, 3);
  assert.deepEqual((await readImageRgb(path)).data, noiseBytes(4 * 3 * 3, 5));
  assert.deepEqual(readdirSync(dir).sort(), ['blocked.png', 'img.png']);
});

// ---------------------------------------------------------------- conversion and watermark

test('output: toUint8Hwc is 255 * x in float32, truncated, CHW -> HWC', () => {
  const h = 1, w = 4, n = 2;
  const x = new Float32Array(n * 3 * h * w);
  // sample 1, channel 0 (R): 0.99999 -> float32 255 * 0.99999 = 254.997... -> 254; 1 -> 255; 0.5 -> 127.5 -> 127
  x.set([0.99999, 1, 0.5, 0], 12);
  // sample 1, channel 1 (G): 0.2 -> 51.0000008 in float32 -> 51; 0.1 -> 25.5 -> 25; out of range saturates
  x.set([0.2, 0.1, 1.5, -0.25], 16);
  x.set([NaN, 0.004, 0.003, 0.9999999], 20); // B: NaN -> 0; 1.02 -> 1; 0.765 -> 0; 254.99997 -> 254
  const out = toUint8Hwc(x, n, 3, h, w, 1);
  assert.deepEqual([...out], [254, 51, 0, 255, 25, 1, 127, 255, 0, 0, 0, 254]);
  assert.deepEqual([...toUint8Hwc(x, n, 3, h, w, 0)], new Array(12).fill(0));
  assert.throws(() => toUint8Hwc(x, n, 3, h, w, 2), /index 2/);
  assert.throws(() => toUint8Hwc(x, n, 4, h, w, 0), /3 \(RGB\) channels/);
  assert.throws(() => toUint8Hwc(x, 3, 3, h, w, 0), /expected 36 values/);
});

test('output: watermarking refuses images under 256x256 pixels', () => {
  assert.throws(() => watermarkSamples(new Float32Array(3 * 255 * 256), 1, 255, 256), (e: unknown) => {
    return e instanceof OutputError && /256x255/.test(e.message) && /at least 256x256/.test(e.message);
  });
  assert.throws(() => savedPngPixels(new Float32Array(3 * 64 * 64), 1, 64, 64, true), OutputError);
  assert.equal(savedPngPixels(new Float32Array(3 * 64 * 64).fill(1), 1, 64, 64, false).every((v) => v === 255), true);
});

test('output: saved samples carry the watermark (true) and not (false), with metadata', async (t) => {
  const dir = tempDir(t);
  const n = 2, h = 256, w = 256;
  const x = rampBatch(n, h, w);
  const marked = await saveSamples(x, {
    n, h, w,
    outDir: join(dir, 'marked'),
    metadata: (i) => ({ prompt: `an astronaut 🚀 #${i}`, index: String(i), software: 'caller value is replaced' }),
  });
  assert.equal(marked.files.length, 2);
  assert.equal(marked.grid, null);
  for (const [i, path] of marked.files.entries()) {
    const img = await readImageRgb(path);
    const { numMatched, verdict } = watermarkVerdict(decodeWatermark(rgbToBgr(img.data), h, w));
    assert.ok(numMatched >= 46, `sample ${i}: ${numMatched} bits matched`);
    assert.equal(verdict, MATCH_VALUES[MATCH_VALUES.length - 1]![1]);
    assert.deepEqual(await readPngText(path), {
      prompt: `an astronaut 🚀 #${i}`,
      index: String(i),
      software: `sgm-ts ${VERSION}`,
      watermark: WATERMARK_DESCRIPTION,
    });
  }
  // the files hold exactly savedPngPixels
  const expected = savedPngPixels(x, n, h, w, true);
  assert.deepEqual((await readImageRgb(marked.files[1]!)).data, expected.subarray(3 * h * w));

  await assert.rejects(saveSamples(x, { n: 1, h, w, outDir: join(dir, 'plain'), watermark: false }), OutputError, 'a 2-sample batch passed as n=1');
  const one = await saveSamples(x.subarray(0, 3 * h * w), { n: 1, h, w, outDir: join(dir, 'plain'), watermark: false, metadata: { prompt: 'p' } });
  const img = await readImageRgb(one.files[0]!);
  assert.deepEqual(img.data, toUint8Hwc(x, n, 3, h, w, 0));
  const unmarked = watermarkVerdict(decodeWatermark(rgbToBgr(img.data), h, w));
  assert.equal(unmarked.verdict, MATCH_VALUES[0]![1], `${unmarked.numMatched} bits matched without a watermark`);
  assert.deepEqual(await readPngText(one.files[0]!), { prompt: 'p', watermark: 'none', software: `sgm-ts ${VERSION}` });
});

test('output: small images: watermark true throws before writing, auto warns and saves without', async (t) => {
  const dir = tempDir(t);
  const x = smoothBatch(1, 16, 16);
  await assert.rejects(saveSamples(x, { n: 1, h: 16, w: 16, outDir: join(dir, 'a') }), /at least 256x256/);
  assert.deepEqual(readdirSync(dir), []);
  const warnings: string[] = [];
  const r = await saveSamples(x, { n: 1, h: 16, w: 16, outDir: join(dir, 'b'), watermark: 'auto', onWarning: (m) => warnings.push(m) });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /too small for the invisible watermark/);
  assert.equal((await readPngText(r.files[0]!)).watermark, 'none');
});

test('output: file names continue the folder count and never clobber existing files', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'notes.txt'), 'x');
  writeFileSync(join(dir, '000000002.png'), 'not mine');
  // two entries -> count starts at 2; 000000002.png is taken, so 3, 4, 5
  const x = smoothBatch(3, 8, 8);
  const r = await saveSamples(x, { n: 3, h: 8, w: 8, outDir: dir, watermark: false, grid: true });
  assert.deepEqual(r.files, ['000000003.png', '000000004.png', '000000005.png'].map((f) => join(dir, f)));
  assert.equal(r.grid, join(dir, 'grid-000000003.png'));
  assert.equal(readFileSync(join(dir, '000000002.png'), 'utf8'), 'not mine');
  // a second batch: 6 entries now
  const r2 = await saveSamples(x.subarray(0, 3 * 64), { n: 1, h: 8, w: 8, outDir: dir, watermark: false, prefix: 'run-' });
  assert.deepEqual(r2.files, [join(dir, 'run-000000006.png')]);
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  await assert.rejects(saveSamples(x, { n: 3, h: 8, w: 8, outDir: dir, watermark: false, prefix: '../x' }), /path separators/);
});

test('output: grid layout follows torchvision make_grid (padding 2, pad value 0)', async (t) => {
  const dir = tempDir(t);
  const n = 3, h = 2, w = 3;
  // sample k, channel c, pixel (y, x) = (40k + 10c + 3y + x + 1) / 255 -> uint8 exactly that integer
  const x = new Float32Array(n * 3 * h * w);
  const val = (k: number, c: number, y: number, xx: number) => 40 * k + 10 * c + 3 * y + xx + 1;
  for (let k = 0; k < n; k++)
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) x[((k * 3 + c) * h + y) * w + xx] = (val(k, c, y, xx) + 0.5) / 255;
  const r = await saveSamples(x, { n, h, w, outDir: dir, watermark: false, grid: true, metadata: { prompt: 'grid' } });
  const g = await decodeRaw(r.grid!);
  // default nrow = ceil(sqrt(3)) = 2: 2 columns, 2 rows
  assert.equal(g.width, 2 * (w + 2) + 2);
  assert.equal(g.height, 2 * (h + 2) + 2);
  const expectAt = (gy: number, gx: number, c: number): number => {
    for (let k = 0; k < n; k++) {
      const y0 = 2 + Math.floor(k / 2) * (h + 2), x0 = 2 + (k % 2) * (w + 2);
      if (gy >= y0 && gy < y0 + h && gx >= x0 && gx < x0 + w) return val(k, c, gy - y0, gx - x0);
    }
    return 0;
  };
  for (let gy = 0; gy < g.height; gy++)
    for (let gx = 0; gx < g.width; gx++)
      for (let c = 0; c < 3; c++) assert.equal(g.data[(gy * g.width + gx) * 3 + c], expectAt(gy, gx, c), `grid pixel (${gy}, ${gx}, ${c})`);
  assert.deepEqual(await readPngText(r.grid!), { prompt: 'grid', watermark: 'none', software: `sgm-ts ${VERSION}` });

  // nrow 3: one row; nrow larger than the batch: still as many columns as images
  const imgs = [0, 1, 2].map((k) => toUint8Hwc(x, n, 3, h, w, k));
  for (const nrow of [3, 8]) {
    const row = makeGrid(imgs, h, w, { nrow });
    assert.equal(row.width, 3 * (w + 2) + 2);
    assert.equal(row.height, h + 4);
    assert.equal(row.data[((2 + 1) * row.width + 2 + 2 * (w + 2)) * 3], val(2, 0, 1, 0));
  }
  const padded = makeGrid(imgs, h, w, { nrow: 1, padding: 1, padValue: 7 });
  assert.equal(padded.width, w + 2);
  assert.equal(padded.height, 3 * (h + 1) + 1);
  assert.equal(padded.data[0], 7);
  assert.equal(padded.data[((1 + 2 * (h + 1)) * padded.width + 1) * 3 + 1], val(2, 1, 0, 0));
});

// ---------------------------------------------------------------- hashing

test('hash: sha256File streams with increasing progress and matches node:crypto', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'blob.bin');
  const data = noiseBytes(100_000, 99);
  writeFileSync(path, data);
  const calls: [number, number][] = [];
  const digest = await sha256File(path, { chunkSize: 8192, onProgress: (d, tot) => calls.push([d, tot]) });
  assert.equal(digest, createHash('sha256').update(data).digest('hex'));
  assert.ok(calls.length >= 100_000 / 8192, `${calls.length} progress calls`);
  for (let i = 1; i < calls.length; i++) assert.ok(calls[i]![0] > calls[i - 1]![0]);
  assert.deepEqual(calls[calls.length - 1], [100_000, 100_000]);
  assert.ok(calls.every(([, tot]) => tot === 100_000));

  const empty = join(dir, 'empty');
  writeFileSync(empty, '');
  const emptyCalls: [number, number][] = [];
  assert.equal(await sha256File(empty, { onProgress: (d, tot) => emptyCalls.push([d, tot]) }), createHash('sha256').digest('hex'));
  assert.deepEqual(emptyCalls, [[0, 0]]);

  await assert.rejects(sha256File(join(dir, 'missing')), (e: unknown) => e instanceof HashError && /missing/.test(e.message));
  await assert.rejects(sha256File(dir), /not a regular file/);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(sha256File(path, { signal: ac.signal }), /aborted/);
  const ac2 = new AbortController();
  await assert.rejects(
    sha256File(path, { chunkSize: 1024, signal: ac2.signal, onProgress: (d) => d >= 4096 && ac2.abort() }),
    /aborted/,
  );
});

test('hash: verifySha256 reports match and mismatch', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'f.txt');
  writeFileSync(path, 'hello\n');
  const good = createHash('sha256').update('hello\n').digest('hex');
  assert.deepEqual(await verifySha256(path, good.toUpperCase()), { ok: true, actual: good, expected: good });
  assert.equal((await verifySha256(path, `sha256:${good}`)).ok, true);
  const wrong = '0'.repeat(64);
  assert.deepEqual(await verifySha256(path, wrong), { ok: false, actual: good, expected: wrong });
  await assert.rejects(verifySha256(path, 'abc'), /not 64 hexadecimal digits/);
});
