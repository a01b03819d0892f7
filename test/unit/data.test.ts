// The data layer: IDX (MNIST) and CIFAR-10 binary readers, normalization, collation, the
// DataLoader (seeded shuffling, prefetch, resume), tar shards (WebDataset), mappers, config targets.
// Data files are written into a temporary folder by the tests themselves.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import {
  CIFAR10Loader,
  DataFileError,
  DataLoader,
  DatasetNotFoundError,
  MNISTLoader,
  SIGNED_LUT,
  WebDataset,
  addOriginalImageSizeAsTupleAndCropToSquare,
  batchIterable,
  batchToTensors,
  braceExpand,
  centerCrop,
  collate,
  imageTransforms,
  isDecodedImage,
  loadCifar10Dataset,
  parseIdx,
  randperm,
  readMnistSplit,
  readTarFile,
  rescaler,
  resizeOutputSize,
  shuffleBuffer,
  splitKey,
  toTensorImage,
  type ArrayData,
  type Batch,
  type MapDataset,
  type Sample,
} from '../../src/data/index.js';
import { Generator } from '../../src/tensor/random.js';
import { instantiateFromConfig } from '../../src/config/index.js';
import { registry } from '../../src/registry.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sgm-data-test-'));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// writers (independent of the code under test)
// ---------------------------------------------------------------------------------------------

function idx(typeCode: number, dims: number[], body: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = typeCode;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(body)]);
}

/** n images rows x cols with pixel (i, k) = (i * 37 + k * 11) % 256, labels (i * 3) % 10. */
function mnistArrays(n: number, rows: number, cols: number): { pixels: Uint8Array; labels: Uint8Array } {
  const pixels = new Uint8Array(n * rows * cols);
  for (let i = 0; i < n; i++) for (let k = 0; k < rows * cols; k++) pixels[i * rows * cols + k] = (i * 37 + k * 11) % 256;
  const labels = Uint8Array.from({ length: n }, (_, i) => (i * 3) % 10);
  return { pixels, labels };
}

function writeMnist(folder: string, n: number, gz: boolean, split = 'train', rows = 4, cols = 3): { pixels: Uint8Array; labels: Uint8Array } {
  mkdirSync(folder, { recursive: true });
  const a = mnistArrays(n, rows, cols);
  const img = idx(0x08, [n, rows, cols], a.pixels);
  const lbl = idx(0x08, [n], a.labels);
  const sfx = gz ? '.gz' : '';
  writeFileSync(join(folder, `${split}-images-idx3-ubyte${sfx}`), gz ? gzipSync(img) : img);
  writeFileSync(join(folder, `${split}-labels-idx1-ubyte${sfx}`), gz ? gzipSync(lbl) : lbl);
  return a;
}

function tarHeader(name: string, size: number, type = '0'): Buffer {
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write(' '.repeat(8), 148);
  h.write(type, 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i]!;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

function pad(b: Buffer): Buffer {
  const rem = b.length % 512;
  return rem === 0 ? b : Buffer.concat([b, Buffer.alloc(512 - rem)]);
}

function makeTar(members: { name: string; data: Buffer | string }[], options: { paxFor?: Set<string> } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const data = Buffer.isBuffer(m.data) ? m.data : Buffer.from(m.data, 'utf8');
    if (options.paxFor?.has(m.name)) {
      const body0 = ` path=${m.name}\n`;
      let len = body0.length + 2;
      while (`${len}${body0}`.length !== len) len = `${len}${body0}`.length;
      const rec = Buffer.from(`${len}${body0}`, 'utf8');
      parts.push(tarHeader('PaxHeaders/x', rec.length, 'x'), pad(rec));
      parts.push(tarHeader('truncated-name-ignored', data.length), pad(data));
    } else parts.push(tarHeader(m.name, data.length), pad(data));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

async function png(width: number, height: number, f: (x: number, y: number) => [number, number, number]): Promise<{ bytes: Buffer; rgb: Uint8Array }> {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) rgb.set(f(x, y), (y * width + x) * 3);
  const bytes = await sharp(Buffer.from(rgb), { raw: { width, height, channels: 3 } }).png().toBuffer();
  return { bytes, rgb };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function cls(b: Batch): number[] {
  return Array.from((b.cls as ArrayData<BigInt64Array>).data, Number);
}

// ---------------------------------------------------------------------------------------------
// normalization and IDX
// ---------------------------------------------------------------------------------------------

test('normalization: ToTensor then x * 2 - 1 in float32, equal to Normalize(0.5, 0.5)', () => {
  assert.equal(SIGNED_LUT[0], -1);
  assert.equal(SIGNED_LUT[255], 1);
  const f = Math.fround;
  assert.equal(SIGNED_LUT[128], f(f(128 / 255) * 2 - 1));
  for (let p = 0; p < 256; p++) {
    const y = f(p / 255);
    assert.equal(SIGNED_LUT[p], f(f(y - 0.5) / 0.5), `pixel ${p}`);
  }
});

test('IDX: raw and gzip MNIST files give the same images, labels and samples', async () => {
  const rawDir = join(dir, 'mnist-raw');
  const gzDir = join(dir, 'mnist-gz');
  const a = writeMnist(rawDir, 7, false, 'train');
  writeMnist(rawDir, 3, false, 't10k');
  writeMnist(gzDir, 7, true, 'train');
  writeMnist(gzDir, 3, true, 't10k');
  for (const d of [rawDir, gzDir]) {
    const s = await readMnistSplit(d, 'train');
    assert.equal(s.count, 7);
    assert.deepEqual([s.rows, s.cols], [4, 3]);
    assert.deepEqual(Array.from(s.images), Array.from(a.pixels));
    assert.deepEqual(Array.from(s.labels), Array.from(a.labels));
  }
  const limited = await readMnistSplit(gzDir, 'train', { limit: 2 });
  assert.equal(limited.count, 2);
  assert.equal(limited.images.length, 2 * 12);

  const dm = new MNISTLoader({ batch_size: 4, data_dir: gzDir, shuffle: false });
  await dm.setup();
  assert.equal(dm.trainDataset.length, 7);
  assert.equal(dm.testDataset.length, 3);
  const s3 = (await dm.trainDataset.get(3)) as Sample;
  const jpg = s3.jpg as ArrayData<Float32Array>;
  assert.deepEqual(jpg.shape, [1, 4, 3]);
  assert.ok(jpg.data instanceof Float32Array);
  for (let k = 0; k < 12; k++) assert.equal(jpg.data[k], Math.fround(Math.fround(a.pixels[36 + k]! / 255) * 2 - 1));
  assert.equal(s3.cls, 9);
  const batches = await collect(dm.trainDataloader());
  assert.deepEqual(batches.map((b) => (b.jpg as ArrayData).shape), [[4, 1, 4, 3], [3, 1, 4, 3]]);
  assert.deepEqual(batches.flatMap(cls), Array.from(a.labels));
  assert.ok((batches[0]!.cls as ArrayData).data instanceof BigInt64Array);
  const val = await collect(dm.valDataloader());
  assert.deepEqual(val.flatMap(cls), [0, 3, 6]); // validation reads the test split

  const lim = new MNISTLoader({ batch_size: 2, data_dir: gzDir, limit: 5 });
  await lim.setup();
  assert.equal(lim.trainDataset.length, 5);
  assert.equal(lim.testDataset.length, 3);
});

test('IDX: wrong magic, truncation, trailing bytes, count mismatch and bad gzip are named errors', async () => {
  const body = new Uint8Array(2 * 2 * 2);
  assert.throws(() => parseIdx(idx(0x08, [2, 2, 2], body).subarray(0, 2), 'x.idx'), /x\.idx: not an IDX file/);
  const bad = idx(0x08, [2, 2, 2], body);
  bad[0] = 0x12;
  assert.throws(() => parseIdx(bad, 'bad.idx'), /bad\.idx: not an IDX file: bad magic number 0x12000803/);
  assert.throws(() => parseIdx(idx(0x08, [2, 2, 2], body), 'lbl.idx', { ndim: 1 }), /lbl\.idx: IDX magic 0x00000803: 3 dimension\(s\), expected 1 \(magic 0x00000801\)/);
  assert.throws(() => parseIdx(idx(0x08, [2, 2, 2], body.subarray(0, 5)), 't.idx'), /t\.idx: truncated IDX data: dimensions \[2, 2, 2\] need 24 bytes, the file has 21/);
  assert.throws(() => parseIdx(idx(0x08, [3, 2, 2, 2], body), 'h.idx'), /truncated IDX/);
  assert.throws(() => parseIdx(Buffer.concat([idx(0x08, [2, 2, 2], body), Buffer.from([1])]), 'tr.idx'), /tr\.idx: IDX file has 1 unexpected trailing bytes/);
  const big = parseIdx(idx(0x0c, [2], Uint8Array.from([0, 0, 1, 2, 0xff, 0xff, 0xff, 0xfe])), 'i32.idx');
  assert.deepEqual(Array.from(big.data), [258, -2]);

  const d = join(dir, 'mnist-bad');
  writeMnist(d, 4, false, 'train');
  writeFileSync(join(d, 'train-labels-idx1-ubyte'), idx(0x08, [5], new Uint8Array(5)));
  await assert.rejects(readMnistSplit(d, 'train'), (e: Error) => e instanceof DataFileError && /train-images-idx3-ubyte: has 4 images but .*train-labels-idx1-ubyte has 5 labels/.test(e.message));
  const gz = gzipSync(idx(0x08, [4], new Uint8Array(4)));
  writeFileSync(join(d, 'train-labels-idx1-ubyte'), gz.subarray(0, gz.length - 6));
  await assert.rejects(readMnistSplit(d, 'train'), /train-labels-idx1-ubyte: corrupt or truncated gzip data/);
  await assert.rejects(readMnistSplit(d, 'test'), (e: Error) => e instanceof DatasetNotFoundError && /missing t10k-images-idx3-ubyte\(\.gz\) and t10k-labels-idx1-ubyte\(\.gz\).*dataset-fashion-mnist/.test(e.message));
  assert.throws(() => new MNISTLoader({ batch_size: 2, data_dir: d }), /test split not found.*dataset-fashion-mnist/);
  assert.throws(() => new MNISTLoader({ batch_size: 2, data_dir: join(dir, 'nope') }), /does not exist/);
});

// ---------------------------------------------------------------------------------------------
// CIFAR-10
// ---------------------------------------------------------------------------------------------

function cifarRecords(labels: number[], base: number): Buffer {
  const out = Buffer.alloc(labels.length * 3073);
  labels.forEach((l, i) => {
    out[i * 3073] = l;
    for (let k = 0; k < 3072; k++) out[i * 3073 + 1 + k] = (base + i * 7 + k) % 256;
  });
  return out;
}

test('CIFAR-10 binary: planar RGB records, files concatenated in order, errors', async () => {
  const d = join(dir, 'cifar', 'cifar-10-batches-bin');
  mkdirSync(d, { recursive: true });
  for (let f = 1; f <= 5; f++) writeFileSync(join(d, `data_batch_${f}.bin`), cifarRecords([f, (f + 5) % 10], f * 10));
  writeFileSync(join(d, 'test_batch.bin'), cifarRecords([9], 0));
  const dm = new CIFAR10Loader({ batch_size: 4, data_dir: join(dir, 'cifar'), shuffle: false });
  await dm.setup();
  assert.equal(dm.trainDataset.length, 10);
  assert.equal(dm.testDataset.length, 1);
  const s = (await dm.trainDataset.get(3)) as Sample; // data_batch_2, record 1
  assert.equal(s.cls, 7);
  const jpg = s.jpg as ArrayData<Float32Array>;
  assert.deepEqual(jpg.shape, [3, 32, 32]);
  // channel 1 (G), row 2, column 5: byte 1024 + 2 * 32 + 5 of the record
  const k = 1024 + 2 * 32 + 5;
  assert.equal(jpg.data[k], Math.fround(Math.fround(((20 + 7 + k) % 256) / 255) * 2 - 1));
  const batches = await collect(dm.trainDataloader());
  assert.deepEqual(batches.flatMap(cls), [1, 6, 2, 7, 3, 8, 4, 9, 5, 0]);
  assert.equal((await loadCifar10Dataset(d, ['data_batch_1.bin', 'data_batch_2.bin'], { limit: 3 })).length, 3);

  writeFileSync(join(d, 'data_batch_3.bin'), cifarRecords([1, 2], 0).subarray(0, 3073 + 100));
  await assert.rejects(new CIFAR10Loader({ batch_size: 4, data_dir: d }).setup(), /data_batch_3\.bin: truncated or not a CIFAR-10 binary batch: 3173 bytes .*1 records and 100 bytes left over/);
  writeFileSync(join(d, 'data_batch_3.bin'), cifarRecords([1, 12], 0));
  await assert.rejects(loadCifar10Dataset(d, ['data_batch_3.bin']), /record 1: label 12 is not a CIFAR-10 class/);
  rmSync(join(d, 'test_batch.bin'));
  assert.throws(() => new CIFAR10Loader({ batch_size: 4, data_dir: d }), (e: Error) => e instanceof DatasetNotFoundError && /missing test_batch\.bin.*cifar-10-binary/.test(e.message));
});

// ---------------------------------------------------------------------------------------------
// DataLoader
// ---------------------------------------------------------------------------------------------

class RangeDataset implements MapDataset {
  calls: number[] = [];
  constructor(readonly length: number) {}
  get(i: number): Sample {
    this.calls.push(i);
    return { x: { data: Float32Array.from([i, -i]), shape: [2] }, cls: i, name: `n${i}` };
  }
}

test('randperm: torch CPU algorithm (swap i with i + random() % (n - i)) on the generator', () => {
  const g = new Generator(7);
  const p = randperm(50, g);
  assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
  // independent replay of the documented algorithm on a copy of the stream
  const h = new Generator(7);
  const r = Array.from({ length: 50 }, (_, i) => i);
  for (let i = 0; i < 49; i++) {
    const z = h.random() % (50 - i);
    [r[i], r[i + z]] = [r[i + z]!, r[i]!];
  }
  assert.deepEqual(Array.from(p), r);
  assert.deepEqual(Array.from(randperm(1, g)), [0]);
  assert.deepEqual(Array.from(randperm(0, g)), []);
});

test('collate and batchToTensors: stacked arrays, int64 labels, lists of strings', () => {
  const ds = new RangeDataset(3);
  const b = collate([0, 1, 2].map((i) => ds.get(i)));
  assert.deepEqual((b.x as ArrayData).shape, [3, 2]);
  assert.deepEqual(Array.from((b.x as ArrayData<Float32Array>).data), [0, -0, 1, -1, 2, -2]);
  assert.deepEqual(Array.from((b.cls as ArrayData<BigInt64Array>).data), [0n, 1n, 2n]);
  assert.deepEqual(b.name, ['n0', 'n1', 'n2']);
  const t = batchToTensors(b);
  assert.deepEqual(Object.keys(t).sort(), ['cls', 'x']);
  assert.deepEqual(t.x!.shape, [3, 2]);
  assert.equal(t.x!.dtype, 'float32');
  assert.equal(t.cls!.dtype, 'int64');
  assert.throws(() => collate([{ x: { data: new Float32Array(2), shape: [2] } }, { x: { data: new Float32Array(3), shape: [3] } }]), /key 'x': sample 1 has shape \[3\], sample 0 \[2\]/);
});

test('DataLoader: batches, drop_last, seeded shuffling per epoch', async () => {
  const ds = new RangeDataset(10);
  const plain = await collect(new DataLoader(ds, { batchSize: 4 }));
  assert.deepEqual(plain.map(cls), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  const dl = new DataLoader(ds, { batchSize: 4, dropLast: true });
  assert.equal(dl.length, 2);
  assert.deepEqual((await collect(dl)).map(cls), [[0, 1, 2, 3], [4, 5, 6, 7]]);

  const epochOrders = async (seed: number): Promise<number[][]> => {
    const l = new DataLoader(ds, { batchSize: 3, shuffle: true, seed });
    const out: number[][] = [];
    for (let e = 0; e < 3; e++) out.push((await collect(l)).flatMap(cls));
    assert.equal(l.epoch, 3);
    return out;
  };
  const a = await epochOrders(5);
  assert.deepEqual(await epochOrders(5), a);
  assert.notDeepEqual(await epochOrders(6), a);
  for (const o of a) assert.deepEqual([...o].sort((x, y) => x - y), Array.from({ length: 10 }, (_, i) => i));
  assert.notDeepEqual(a[0], a[1]);
  // epoch e's order: one random64() (the worker base seed), then randperm(n)
  const g = new Generator(5);
  g.random64();
  assert.deepEqual(a[0], Array.from(randperm(10, g)));
  g.random64();
  assert.deepEqual(a[1], Array.from(randperm(10, g)));
});

test('DataLoader: a resumed run sees exactly the batches of an uninterrupted one', async () => {
  const ds = new RangeDataset(11);
  const opts = { batchSize: 3, shuffle: true, seed: 42 };
  const full = new DataLoader(ds, opts);
  const expected: number[][] = [];
  for await (const { batch } of full.batches(3)) expected.push(cls(batch));
  assert.equal(expected.length, 12);

  for (const stopAfter of [0, 2, 4, 5, 9]) {
    const first = new DataLoader(ds, opts);
    const seen: number[][] = [];
    if (stopAfter > 0) {
      for await (const { batch } of first.batches(3)) {
        seen.push(cls(batch));
        if (seen.length === stopAfter) break;
      }
    }
    const saved = JSON.parse(JSON.stringify(first.state()));
    const resumed = new DataLoader(ds, { ...opts, seed: 999 });
    resumed.setState(saved);
    for await (const { batch } of resumed.batches(3)) seen.push(cls(batch));
    assert.deepEqual(seen, expected, `stopped after ${stopAfter}`);
  }
  assert.throws(() => new DataLoader(ds, opts).setState({ epoch: 0, indexInEpoch: 9, generator: '' }), /indexInEpoch 9 is outside \[0, 4\]/);
});

test('DataLoader: the next batch is prepared while the consumer works on the current one', async () => {
  const log: string[] = [];
  const ds: MapDataset = {
    length: 6,
    async get(i: number) {
      log.push(`get ${i}`);
      await new Promise((r) => setImmediate(r));
      return { cls: i };
    },
  };
  const dl = new DataLoader(ds, { batchSize: 2, prefetch: 1 });
  for await (const b of dl) {
    const [first] = cls(b);
    log.push(`consume ${first} start`);
    await new Promise((r) => setTimeout(r, 5)); // "compute"
    log.push(`consume ${first} end`);
  }
  // batch 1's samples are requested before the consumer finished batch 0
  assert.ok(log.indexOf('get 2') < log.indexOf('consume 0 end'), log.join(', '));
  assert.ok(log.indexOf('get 4') < log.indexOf('consume 2 end'), log.join(', '));
});

// ---------------------------------------------------------------------------------------------
// tar shards
// ---------------------------------------------------------------------------------------------

test('brace expansion and keys', () => {
  assert.deepEqual(braceExpand('shard-{000000..000003}.tar'), ['shard-000000.tar', 'shard-000001.tar', 'shard-000002.tar', 'shard-000003.tar']);
  assert.deepEqual(braceExpand('{a,b}/{1..2}.tar'), ['a/1.tar', 'a/2.tar', 'b/1.tar', 'b/2.tar']);
  assert.deepEqual(braceExpand('x{8..10}'), ['x8', 'x9', 'x10']);
  assert.deepEqual(splitKey('dir/0001.seg.png'), { key: 'dir/0001', ext: 'seg.png' });
  assert.equal(splitKey('README'), null);
});

test('tar shards: members grouped by key and decoded; pax names; shards streamed in order', async () => {
  const imgs = await Promise.all([0, 1, 2, 3].map((i) => png(3 + i, 2, (x, y) => [x * 40 + i, y * 100, 255 - i])));
  const longKey = `${'k'.repeat(120)}`;
  for (let s = 0; s < 2; s++) {
    const members: { name: string; data: Buffer | string }[] = [];
    for (let j = 0; j < 2; j++) {
      const i = s * 2 + j;
      const key = i === 3 ? longKey : `${String(i).padStart(4, '0')}`;
      members.push({ name: `${key}.jpg`, data: imgs[i]!.bytes });
      members.push({ name: `${key}.txt`, data: `caption ${i}` });
      members.push({ name: `${key}.cls`, data: `${i + 1}\n` });
      members.push({ name: `${key}.json`, data: JSON.stringify({ original_height: 20 + i, original_width: 30 + i }) });
    }
    writeFileSync(join(dir, `shard-${String(s).padStart(6, '0')}.tar`), makeTar(members, { paxFor: new Set([`${longKey}.jpg`, `${longKey}.txt`, `${longKey}.cls`, `${longKey}.json`]) }));
  }
  const ds = new WebDataset({ urls: join(dir, 'shard-{000000..000001}.tar') });
  assert.equal(ds.shards.length, 2);
  const samples = await collect(ds);
  assert.deepEqual(samples.map((s) => s.__key__), ['0000', '0001', '0002', longKey]);
  assert.deepEqual(samples.map((s) => s.txt), ['caption 0', 'caption 1', 'caption 2', 'caption 3']);
  assert.deepEqual(samples.map((s) => s.cls), [1, 2, 3, 4]);
  assert.deepEqual(samples[2]!.json, { original_height: 22, original_width: 32 });
  const im = samples[1]!.jpg;
  assert.ok(isDecodedImage(im));
  assert.deepEqual([im.width, im.height], [4, 2]);
  assert.deepEqual(Array.from(im.data), Array.from(imgs[1]!.rgb)); // PNG: lossless

  // truncated shard: a named error
  const whole = makeTar([{ name: 'a.txt', data: 'x'.repeat(2000) }]);
  writeFileSync(join(dir, 'trunc.tar'), whole.subarray(0, 1200));
  await assert.rejects(collect(readTarFile(join(dir, 'trunc.tar'))), /trunc\.tar: truncated tar archive: member at offset 0 needs 2000 bytes of data, 688 present/);
  const corrupt = Buffer.from(whole);
  corrupt[10] = 0x41;
  writeFileSync(join(dir, 'corrupt.tar'), corrupt);
  await assert.rejects(collect(readTarFile(join(dir, 'corrupt.tar'))), /corrupt\.tar: corrupt tar header at offset 0 \(bad checksum/);
  assert.throws(() => new WebDataset({ urls: join(dir, 'shard-{000000..000002}.tar') }), /shard-000002\.tar: tar shard not found \(from pattern/);

  // mappers and batching: ToTensor, Rescaler, crop to square with the original size
  const mapped = new WebDataset({
    urls: [join(dir, 'shard-000000.tar')],
    mappers: [
      imageTransforms('jpg', [toTensorImage()]),
      rescaler(),
      addOriginalImageSizeAsTupleAndCropToSquare({ h_key: 'original_height', w_key: 'original_width', crop: 'center' }),
    ],
  });
  const batches = await collect(batchIterable(mapped, { batchSize: 1 }));
  assert.equal(batches.length, 2);
  const b1 = batches[1]!;
  assert.deepEqual((b1.jpg as ArrayData).shape, [1, 3, 2, 2]);
  assert.deepEqual(Array.from((b1.original_size_as_tuple as ArrayData<BigInt64Array>).data), [21n, 31n]);
  assert.deepEqual(Array.from((b1.crop_coords_top_left as ArrayData<BigInt64Array>).data), [0n, 1n]);
  // pixel (x=1+1, y=0) red of image 1, rescaled: (2 * 40 + 1) / 255 * 2 - 1
  const jd = (b1.jpg as ArrayData<Float32Array>).data;
  assert.equal(jd[1], Math.fround(Math.fround(81 / 255) * 2 - 1));
  assert.deepEqual(b1.txt, ['caption 1']);
});

test('shuffle buffer: deterministic per seed, a permutation of the input', async () => {
  async function* src(): AsyncGenerator<number> {
    for (let i = 0; i < 40; i++) yield i;
  }
  const a = await collect(shuffleBuffer(src(), 8, new Generator(1)));
  const b = await collect(shuffleBuffer(src(), 8, new Generator(1)));
  const c = await collect(shuffleBuffer(src(), 8, new Generator(2)));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 40 }, (_, i) => i));
  assert.notDeepEqual(a, Array.from({ length: 40 }, (_, i) => i));
});

test('mappers: Resize output size, center crop', () => {
  assert.deepEqual(resizeOutputSize(480, 640, 256), [256, 341]);
  assert.deepEqual(resizeOutputSize(640, 480, 256), [341, 256]);
  const img = { data: Float32Array.from({ length: 1 * 3 * 5 }, (_, i) => i), shape: [1, 3, 5] };
  const c = centerCrop(3)(img) as ArrayData<Float32Array>;
  assert.deepEqual(c.shape, [1, 3, 3]);
  assert.deepEqual(Array.from(c.data), [1, 2, 3, 6, 7, 8, 11, 12, 13]);
});

// ---------------------------------------------------------------------------------------------
// config targets
// ---------------------------------------------------------------------------------------------

test('targets: MNISTLoader and CIFAR10Loader from the toy configs\' data sections', async () => {
  assert.equal(registry.isPlaceholder('sgm.data.mnist.MNISTLoader'), false);
  assert.equal(registry.isPlaceholder('sgm.data.cifar10.CIFAR10Loader'), false);
  const d = join(dir, 'mnist-gz');
  const dm = instantiateFromConfig<MNISTLoader>({ target: 'sgm.data.mnist.MNISTLoader', params: { batch_size: 512, num_workers: 1, data_dir: d } }, { path: 'data' });
  assert.ok(dm instanceof MNISTLoader);
  assert.equal(dm.batchSize, 512);
  await dm.setup();
  assert.equal(dm.train_dataloader().length, 1);
  assert.throws(
    () => instantiateFromConfig({ target: 'sgm.data.cifar10.CIFAR10Loader', params: { batch_size: 512, data_dir: join(dir, 'nope') } }, { path: 'data' }),
    /data: cannot build sgm\.data\.cifar10\.CIFAR10Loader: CIFAR-10 binary files not found/,
  );
  const pipe = instantiateFromConfig<object>(
    {
      target: 'sgm.data.dataset.StableDataModuleFromConfig',
      params: {
        train: {
          datapipeline: {
            urls: [join(dir, 'shard-000001.tar')],
            pipeline_config: { shardshuffle: 10000, sample_shuffle: 10000 },
            decoders: ['pil'],
            postprocessors: [
              { target: 'sdata.mappers.TorchVisionImageTransforms', params: { key: 'jpg', transforms: [{ target: 'torchvision.transforms.Resize', params: { size: 2, interpolation: 3 } }, { target: 'torchvision.transforms.ToTensor' }] } },
              { target: 'sdata.mappers.Rescaler' },
              { target: 'sdata.mappers.AddOriginalImageSizeAsTupleAndCropToSquare' },
            ],
          },
          loader: { batch_size: 2, num_workers: 6 },
        },
      },
    },
    { path: 'data' },
  ) as { trainDataloader(): AsyncIterable<Batch> };
  const bs = await collect(pipe.trainDataloader());
  assert.equal(bs.length, 1);
  assert.deepEqual((bs[0]!.jpg as ArrayData).shape, [2, 3, 2, 2]);
  assert.deepEqual(new Set(Array.from((bs[0]!.original_size_as_tuple as ArrayData<BigInt64Array>).data, Number)), new Set([22, 32, 23, 33]));
});

// ---------------------------------------------------------------------------------------------
// the real dataset, when installed (Debian's dataset-fashion-mnist)
// ---------------------------------------------------------------------------------------------

const FASHION = '/usr/share/datasets/fashion-mnist';

test('Fashion-MNIST (Debian package): first labels and image 0', { skip: !existsSync(FASHION) && `${FASHION} not installed` }, async () => {
  const dm = new MNISTLoader({ batch_size: 10, data_dir: FASHION, shuffle: false, limit: 10 });
  await dm.setup();
  const [b] = await collect(dm.trainDataloader());
  // reference values read with Python's gzip module from the same files
  assert.deepEqual(cls(b!), [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
  const x = (b!.jpg as ArrayData<Float32Array>).data.subarray(0, 784);
  assert.deepEqual((b!.jpg as ArrayData).shape, [10, 1, 28, 28]);
  assert.equal(Math.min(...x), -1);
  assert.equal(Math.max(...x), 1);
  assert.equal(x.filter((v) => v === -1).length, 351);
  const mean = x.reduce((s, v) => s + v, 0) / 784;
  assert.ok(Math.abs(mean - ((76247 / 255) * 2 - 784) / 784) < 1e-6, String(mean));
  // row 14, column 12: 0xed = 237
  assert.equal(x[14 * 28 + 12], Math.fround(Math.fround(237 / 255) * 2 - 1));
});
