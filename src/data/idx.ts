// The IDX file format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): a 4-byte
// magic (0, 0, element type, number of dimensions), the dimensions as big-endian uint32, then the
// elements, big-endian, row-major. Files may be gzip-compressed (detected by the gzip magic, not by
// the name).
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import { DataFileError, DatasetNotFoundError } from './errors.js';

const gunzipAsync = promisify(gunzip);

export type IdxDType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

const IDX_TYPES: Record<number, { dtype: IdxDType; size: number }> = {
  0x08: { dtype: 'uint8', size: 1 },
  0x09: { dtype: 'int8', size: 1 },
  0x0b: { dtype: 'int16', size: 2 },
  0x0c: { dtype: 'int32', size: 4 },
  0x0d: { dtype: 'float32', size: 4 },
  0x0e: { dtype: 'float64', size: 8 },
};

export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dtype: IdxDType;
  dims: number[];
  /** The elements in native byte order (a view of the file's bytes for uint8/int8). */
  data: IdxData;
}

export interface ParseIdxOptions {
  /** Expected element type (MNIST: uint8). */
  dtype?: IdxDType;
  /** Expected number of dimensions (MNIST labels 1, images 3). */
  ndim?: number;
  /** Keep only the first `limit` entries along the first dimension. */
  limit?: number;
}

function isGzip(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

/** Parses IDX bytes (already decompressed); `path` names the file in errors. */
export function parseIdx(buf: Uint8Array, path: string, options: ParseIdxOptions = {}): IdxArray {
  if (buf.length < 4) throw new DataFileError(path, `not an IDX file: ${buf.length} bytes, too short for the 4-byte magic`);
  const magic = ((buf[0]! << 24) | (buf[1]! << 16) | (buf[2]! << 8) | buf[3]!) >>> 0;
  const hex = `0x${magic.toString(16).padStart(8, '0')}`;
  const type = IDX_TYPES[buf[2]!];
  if (buf[0] !== 0 || buf[1] !== 0 || type === undefined) {
    throw new DataFileError(path, `not an IDX file: bad magic number ${hex} (expected 0x000008NN for unsigned bytes, e.g. 0x00000801 labels, 0x00000803 images)`);
  }
  const ndim = buf[3]!;
  if (options.dtype !== undefined && type.dtype !== options.dtype) {
    throw new DataFileError(path, `IDX magic ${hex}: element type ${type.dtype}, expected ${options.dtype}`);
  }
  if (options.ndim !== undefined && ndim !== options.ndim) {
    const want = (0x0800 | options.ndim).toString(16).padStart(8, '0');
    throw new DataFileError(path, `IDX magic ${hex}: ${ndim} dimension(s), expected ${options.ndim} (magic 0x${want})`);
  }
  const headerBytes = 4 + 4 * ndim;
  if (buf.length < headerBytes) throw new DataFileError(path, `truncated IDX header: ${buf.length} bytes, the ${ndim} dimensions need ${headerBytes}`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(dv.getUint32(4 + 4 * i, false));
  let count = 1;
  for (const d of dims) count *= d;
  const expected = headerBytes + count * type.size;
  if (buf.length < expected) {
    throw new DataFileError(path, `truncated IDX data: dimensions [${dims.join(', ')}] need ${expected} bytes, the file has ${buf.length}`);
  }
  if (buf.length > expected) {
    throw new DataFileError(path, `IDX file has ${buf.length - expected} unexpected trailing bytes after the data of dimensions [${dims.join(', ')}]`);
  }
  let outDims = dims;
  if (options.limit !== undefined && ndim > 0 && options.limit < dims[0]!) {
    outDims = [Math.max(0, options.limit), ...dims.slice(1)];
    count = 1;
    for (const d of outDims) count *= d;
  }
  const start = buf.byteOffset + headerBytes;
  let data: IdxData;
  switch (type.dtype) {
    case 'uint8':
      data = new Uint8Array(buf.buffer, start, count);
      break;
    case 'int8':
      data = new Int8Array(buf.buffer, start, count);
      break;
    default: {
      const ctor = { int16: Int16Array, int32: Int32Array, float32: Float32Array, float64: Float64Array }[type.dtype];
      const out = new ctor(count);
      const get = {
        int16: (o: number) => dv.getInt16(o, false),
        int32: (o: number) => dv.getInt32(o, false),
        float32: (o: number) => dv.getFloat32(o, false),
        float64: (o: number) => dv.getFloat64(o, false),
      }[type.dtype];
      for (let i = 0; i < count; i++) out[i] = get(headerBytes + i * type.size);
      data = out;
    }
  }
  return { dtype: type.dtype, dims: outDims, data };
}

/** Reads bytes, gunzipping when the content is gzip; errors name the file. */
export async function readMaybeGzip(path: string): Promise<Uint8Array> {
  let raw: Buffer;
  try {
    raw = await readFile(path);
  } catch (e) {
    throw new DataFileError(path, `cannot read: ${(e as Error).message}`, { cause: e });
  }
  if (!isGzip(raw)) return raw;
  try {
    return await gunzipAsync(raw);
  } catch (e) {
    throw new DataFileError(path, `corrupt or truncated gzip data: ${(e as Error).message}`, { cause: e });
  }
}

/** Reads an IDX file, raw or gzip-compressed. */
export async function readIdxFile(path: string, options: ParseIdxOptions = {}): Promise<IdxArray> {
  return parseIdx(await readMaybeGzip(path), path, options);
}

export type MnistSplit = 'train' | 'test';

export interface MnistArrays {
  /** N x rows x cols uint8 pixels, row-major. */
  images: Uint8Array;
  /** N uint8 labels. */
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
  imagesPath: string;
  labelsPath: string;
}

const SPLIT_PREFIX: Record<MnistSplit, string> = { train: 'train', test: 't10k' };

/**
 * The path of an MNIST-format file in `dir` (`name`, else `name.gz`), also looking in the
 * torchvision layouts `dir/MNIST/raw` and `dir/FashionMNIST/raw`; null when absent.
 */
export function findMnistFile(dir: string, name: string): string | null {
  for (const sub of ['', join('MNIST', 'raw'), join('FashionMNIST', 'raw')]) {
    for (const n of [name, `${name}.gz`]) {
      const p = join(dir, sub, n);
      if (existsSync(p)) return p;
    }
  }
  return null;
}

/** Whether `dir` holds both files of the split. */
export function hasMnistSplit(dir: string, split: MnistSplit): boolean {
  const pre = SPLIT_PREFIX[split];
  return findMnistFile(dir, `${pre}-images-idx3-ubyte`) !== null && findMnistFile(dir, `${pre}-labels-idx1-ubyte`) !== null;
}

/**
 * Reads one split of an MNIST-format dataset folder (`train-images-idx3-ubyte[.gz]`,
 * `train-labels-idx1-ubyte[.gz]`, `t10k-...`), checking that images and labels agree.
 */
export async function readMnistSplit(dir: string, split: MnistSplit, options: { limit?: number } = {}): Promise<MnistArrays> {
  const pre = SPLIT_PREFIX[split];
  const imgName = `${pre}-images-idx3-ubyte`;
  const lblName = `${pre}-labels-idx1-ubyte`;
  const imagesPath = findMnistFile(dir, imgName);
  const labelsPath = findMnistFile(dir, lblName);
  const missing = [imagesPath === null ? imgName : null, labelsPath === null ? lblName : null].filter((x) => x !== null);
  if (imagesPath === null || labelsPath === null) {
    throw new DatasetNotFoundError(
      `MNIST-format ${split} split not found in ${dir}: missing ${missing.map((m) => `${m}(.gz)`).join(' and ')}. ` +
        'Install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or point data_dir (or SGM_MNIST_DIR) at a folder with the MNIST files.',
    );
  }
  const [img, lbl] = await Promise.all([
    readIdxFile(imagesPath, { dtype: 'uint8', ndim: 3 }),
    readIdxFile(labelsPath, { dtype: 'uint8', ndim: 1 }),
  ]);
  if (img.dims[0] !== lbl.dims[0]) {
    throw new DataFileError(imagesPath, `has ${img.dims[0]} images but ${labelsPath} has ${lbl.dims[0]} labels`);
  }
  let count = img.dims[0]!;
  const rows = img.dims[1]!;
  const cols = img.dims[2]!;
  if (options.limit !== undefined) {
    if (!Number.isInteger(options.limit) || options.limit < 0) throw new RangeError(`readMnistSplit: limit must be a non-negative integer, got ${options.limit}`);
    count = Math.min(count, options.limit);
  }
  return {
    images: (img.data as Uint8Array).subarray(0, count * rows * cols),
    labels: (lbl.data as Uint8Array).subarray(0, count),
    count,
    rows,
    cols,
    imagesPath,
    labelsPath,
  };
}
