// safetensors: an 8-byte little-endian header length, a JSON header, then raw little-endian
// tensor bytes. Files are read lazily: only the header is parsed on open, tensors are read on
// demand with positioned reads, so a multi-gigabyte checkpoint never sits in memory whole.
//
// The reader treats every file as untrusted: a header value can never make it allocate more than
// the file holds, and every defect is reported as a SafetensorsError whose message starts with the
// file's path. The writer writes atomically (temporary file, fsync, rename), and its files follow
// the format exactly as the reference implementation writes and checks it.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  fsyncSync,
  openSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { endianness } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { bf16ToF32, f16ToF32 } from '../tensor/dtype-convert.js';

export type SafetensorsDType =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U8'
  | 'BOOL';

export const SAFETENSORS_ITEMSIZE: Record<SafetensorsDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Dtypes of the format that this project does not read (named so the error can say so). */
const OTHER_FORMAT_DTYPES = new Set(['U16', 'U32', 'U64', 'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F6_E2M3', 'F6_E3M2', 'F4', 'C64']);

/** Typed array a tensor of each dtype is returned as (F16/BF16 as raw 16-bit words). */
export type SafetensorsArray =
  | Float64Array
  | Float32Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/** Any typed array (the writer accepts raw bytes of every dtype and each dtype's own array). */
export type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Byte offset of the tensor's data from the start of the file. */
  fileOffset: number;
  byteLength: number;
}

export class SafetensorsError extends Error {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'SafetensorsError';
  }
}

/** Headers larger than this are rejected (the format's own reader uses the same bound). */
export const MAX_HEADER_BYTES = 100_000_000;

const KNOWN_DTYPES = Object.keys(SAFETENSORS_ITEMSIZE).join(', ');

function isDType(s: unknown): s is SafetensorsDType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(SAFETENSORS_ITEMSIZE, s);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Short JSON rendering of a header value for messages (bounded, whatever the value). */
function show(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** Number of elements of a shape; a problem string when the shape is not valid. */
function numelOf(shape: unknown): number | string {
  if (!Array.isArray(shape)) return `shape ${show(shape)} is not a list`;
  let numel = 1;
  let zero = false;
  for (let i = 0; i < shape.length; i++) {
    const d: unknown = shape[i];
    if (typeof d !== 'number' || !Number.isFinite(d)) return `shape ${show(shape)}: dimension ${i} is not a number`;
    if (!Number.isInteger(d)) return `shape ${show(shape)}: dimension ${i} (${d}) is not an integer`;
    if (d < 0) return `shape ${show(shape)}: dimension ${i} (${d}) is negative`;
    if (!Number.isSafeInteger(d)) return `shape ${show(shape)}: dimension ${i} (${d}) is too large`;
    if (d === 0) zero = true;
    else if (!zero) {
      numel *= d;
      if (numel > Number.MAX_SAFE_INTEGER) return `shape ${show(shape)} has more than 2^53 elements`;
    }
  }
  return zero ? 0 : numel;
}

/**
 * Finds the first key that occurs twice in one object of a JSON text (JSON.parse silently keeps
 * the last one, so a file with duplicates reads differently in different readers). The text must
 * already be valid JSON; the scan then only needs to tell strings, brackets and commas apart.
 * Returns the path of the duplicate key (enclosing keys, then the key), or null.
 */
export function findDuplicateJsonKey(text: string): string[] | null {
  // Per open object: its keys so far (an array while small, a Set once large) and the last key,
  // which names the value nested under it in messages. Arrays have keys === null.
  interface Frame {
    keys: string[] | null;
    set: Set<string> | null;
    key: string;
  }
  const stack: Frame[] = [];
  let expectKey = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Find the closing quote: the next quote not preceded by an odd number of backslashes.
      let j = i;
      for (;;) {
        j = text.indexOf('"', j + 1);
        if (j < 0) return null; // not valid JSON; JSON.parse reports it
        let k = j - 1;
        while (text.charCodeAt(k) === 0x5c /* \ */) k--;
        if ((j - 1 - k) % 2 === 0) break;
      }
      const top = stack[stack.length - 1];
      if (expectKey && top !== undefined && top.keys !== null) {
        const raw = text.slice(i + 1, j);
        const key: string = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
        if (top.set ? top.set.has(key) : top.keys.includes(key)) return [...stack.slice(0, -1).map((f) => f.key), key];
        if (top.set) top.set.add(key);
        else {
          top.keys.push(key);
          if (top.keys.length > 16) top.set = new Set(top.keys);
        }
        top.key = key;
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */) {
      const parent = stack[stack.length - 1];
      if (parent && parent.keys === null) parent.key = '[]';
      stack.push({ keys: [], set: null, key: '' });
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      stack.push({ keys: null, set: null, key: '' });
      expectKey = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1]?.keys != null;
    }
  }
  return null;
}

/** An open safetensors file. Call close() when done (or use readSafetensors for small files). */
export class SafetensorsFile {
  readonly metadata: Record<string, string>;
  private readonly infos: Map<string, TensorInfo>;
  private fd: number | null;

  private constructor(
    readonly path: string,
    fd: number,
    readonly fileSize: number,
    metadata: Record<string, string>,
    infos: Map<string, TensorInfo>,
  ) {
    this.fd = fd;
    this.metadata = metadata;
    this.infos = infos;
  }

  /** Opens a file and parses and validates its header; tensor data is not read. */
  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw new SafetensorsError(path, `cannot open: ${(e as Error).message}`);
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new SafetensorsError(path, 'not a regular file');
      const { metadata, infos } = parseHeader(path, fd, st.size);
      return new SafetensorsFile(path, fd, st.size, metadata, infos);
    } catch (e) {
      closeSync(fd);
      if (e instanceof SafetensorsError) throw e;
      throw new SafetensorsError(path, `cannot read the header: ${(e as Error).message}`);
    }
  }

  /** Tensor names in file order (by data offset). */
  keys(): string[] {
    return [...this.infos.keys()];
  }

  has(name: string): boolean {
    return this.infos.has(name);
  }

  info(name: string): TensorInfo {
    const i = this.infos.get(name);
    if (!i) throw new SafetensorsError(this.path, `no tensor named "${name}"`);
    return i;
  }

  tensors(): TensorInfo[] {
    return [...this.infos.values()];
  }

  /** Reads a tensor's raw bytes into a fresh, 8-byte aligned buffer. */
  readBytes(name: string): Uint8Array {
    const i = this.info(name);
    let buf: Uint8Array;
    try {
      buf = new Uint8Array(new ArrayBuffer(i.byteLength));
    } catch (e) {
      throw new SafetensorsError(
        this.path,
        `cannot allocate ${i.byteLength} bytes for "${name}" (${(e as Error).message}); read it in pieces with readChunk`,
      );
    }
    this.readInto(i, buf);
    return buf;
  }

  /** Reads a whole tensor into `dst`, which must have exactly the tensor's byte length. */
  readInto(info: TensorInfo | string, dst: Uint8Array): void {
    const own = this.info(typeof info === 'string' ? info : info.name);
    if (typeof info !== 'string' && (info.fileOffset !== own.fileOffset || info.byteLength !== own.byteLength)) {
      throw new SafetensorsError(this.path, `readInto "${own.name}": the TensorInfo given is not this file's`);
    }
    if (dst.byteLength !== own.byteLength) {
      throw new SafetensorsError(this.path, `readInto "${own.name}": buffer has ${dst.byteLength} bytes, tensor has ${own.byteLength}`);
    }
    this.readAt(own, 0, dst);
  }

  /** Reads `dst.byteLength` bytes of a tensor's data starting at `byteOffset` within the tensor. */
  readChunk(name: string, byteOffset: number, dst: Uint8Array): void {
    const i = this.info(name);
    if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset + dst.byteLength > i.byteLength) {
      throw new SafetensorsError(
        this.path,
        `readChunk "${name}": bytes [${byteOffset}, ${byteOffset + dst.byteLength}) are outside the tensor's ${i.byteLength} bytes`,
      );
    }
    this.readAt(i, byteOffset, dst);
  }

  private readAt(info: TensorInfo, offset: number, dst: Uint8Array): void {
    if (this.fd === null) throw new SafetensorsError(this.path, 'file is closed');
    const total = dst.byteLength;
    let done = 0;
    while (done < total) {
      let n: number;
      try {
        n = readSync(this.fd, dst, done, Math.min(total - done, 1 << 30), info.fileOffset + offset + done);
      } catch (e) {
        throw new SafetensorsError(this.path, `cannot read "${info.name}": ${(e as Error).message}`);
      }
      if (n <= 0) {
        throw new SafetensorsError(this.path, `unexpected end of file while reading "${info.name}" (was the file truncated after it was opened?)`);
      }
      done += n;
    }
  }

  /** Reads a tensor as a typed array of its dtype (F16/BF16 as Uint16Array words). */
  read(name: string): SafetensorsArray {
    const i = this.info(name);
    return bytesToArray(this.readBytes(name), i.dtype);
  }

  /** Reads a floating-point tensor (F64, F32, F16, BF16) converted to float32. */
  readFloat32(name: string): Float32Array {
    const i = this.info(name);
    switch (i.dtype) {
      case 'F32':
        return this.read(name) as Float32Array;
      case 'F16':
        return f16ToF32(this.read(name) as Uint16Array);
      case 'BF16':
        return bf16ToF32(this.read(name) as Uint16Array);
      case 'F64':
        return Float32Array.from(this.read(name) as Float64Array);
      default:
        throw new SafetensorsError(this.path, `readFloat32 "${name}": dtype ${i.dtype} is not a floating-point type`);
    }
  }

  close(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
  }
}

/** A tensor held in memory. */
export interface SafetensorsTensor {
  dtype: SafetensorsDType;
  shape: number[];
  data: SafetensorsArray;
}

/** Reads every tensor of a (small) file, in file order. */
export function readSafetensors(path: string): Map<string, SafetensorsTensor> {
  const f = SafetensorsFile.open(path);
  try {
    const out = new Map<string, SafetensorsTensor>();
    for (const i of f.tensors()) out.set(i.name, { dtype: i.dtype, shape: [...i.shape], data: f.read(i.name) });
    return out;
  } finally {
    f.close();
  }
}

/**
 * Views raw little-endian bytes as the typed array of `dtype` (F16/BF16 as Uint16Array words).
 * Shares memory with `bytes` when its offset is aligned for the dtype, else copies.
 */
export function bytesToArray(bytes: Uint8Array, dtype: SafetensorsDType): SafetensorsArray {
  const size = SAFETENSORS_ITEMSIZE[dtype];
  if (bytes.byteLength % size !== 0) {
    throw new RangeError(`bytesToArray: ${bytes.byteLength} bytes is not a whole number of ${dtype} elements (${size} bytes each)`);
  }
  if (bytes.byteOffset % size !== 0) bytes = bytes.slice();
  const { buffer, byteOffset, byteLength } = bytes;
  const n = byteLength / size;
  switch (dtype) {
    case 'F64':
      return new Float64Array(buffer, byteOffset, n);
    case 'F32':
      return new Float32Array(buffer, byteOffset, n);
    case 'F16':
    case 'BF16':
      return new Uint16Array(buffer, byteOffset, n);
    case 'I64':
      return new BigInt64Array(buffer, byteOffset, n);
    case 'I32':
      return new Int32Array(buffer, byteOffset, n);
    case 'I16':
      return new Int16Array(buffer, byteOffset, n);
    case 'I8':
      return new Int8Array(buffer, byteOffset, n);
    case 'U8':
    case 'BOOL':
      return new Uint8Array(buffer, byteOffset, n);
  }
}

function readExact(path: string, fd: number, length: number, position: number, what: string): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n <= 0) throw new SafetensorsError(path, `truncated: file ends inside the ${what}`);
    done += n;
  }
  return buf;
}

const CORRUPT = 'the file is corrupt or not a safetensors file';

/**
 * Parses and validates the header. Rejected: a file under 8 bytes; a header length over
 * MAX_HEADER_BYTES or past the end of the file (checked before anything is allocated); a header
 * that is not UTF-8, not JSON, not a JSON object, or has a key twice in any object; __metadata__
 * that is not an object of strings; unknown dtypes; shapes that are not lists of non-negative
 * safe integers or whose byte size exceeds 2^53; data_offsets that are not [begin, end] safe
 * integers with begin <= end, whose span differs from dtype x shape, that end past the file, or
 * that overlap another tensor's. So no tensor read can allocate more than the file holds.
 * Accepted, as the reference reader accepts them: `"__metadata__": null`, unknown fields in a
 * tensor entry, trailing spaces in the header. Accepted although the reference reader refuses
 * them: gaps between tensors and bytes after the last one (harmless to a positioned reader).
 */

function parseHeader(
  path: string,
  fd: number,
  size: number,
): { metadata: Record<string, string>; infos: Map<string, TensorInfo> } {
  if (size < 8) {
    throw new SafetensorsError(
      path,
      `not a safetensors file: ${size} byte(s), fewer than the 8-byte header length (empty or truncated file; is the download complete?)`,
    );
  }
  const headerLen = readExact(path, fd, 8, 0, 'header length').readBigUInt64LE(0);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    const rel = headerLen > BigInt(size - 8) ? `larger than the file (${size} bytes) and ` : '';
    throw new SafetensorsError(path, `header length ${headerLen} is ${rel}over the ${MAX_HEADER_BYTES}-byte limit: ${CORRUPT}`);
  }
  const hl = Number(headerLen);
  if (8 + hl > size) {
    throw new SafetensorsError(
      path,
      `truncated: the header length says ${hl} bytes but only ${size - 8} follow it (incomplete download, or ${CORRUPT})`,
    );
  }
  if (hl === 0) throw new SafetensorsError(path, `header length is 0: ${CORRUPT}`);
  const raw = readExact(path, fd, hl, 8, 'header');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
  } catch {
    throw new SafetensorsError(path, `header is not valid UTF-8: ${CORRUPT}`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    throw new SafetensorsError(path, `header is not valid JSON (${msg.length > 200 ? `${msg.slice(0, 197)}...` : msg}): ${CORRUPT}`);
  }
  if (!isPlainObject(header)) {
    throw new SafetensorsError(path, `header is a JSON ${header === null ? 'null' : Array.isArray(header) ? 'array' : typeof header}, not an object: ${CORRUPT}`);
  }
  const dup = findDuplicateJsonKey(text);
  if (dup) {
    throw new SafetensorsError(
      path,
      `header has the key ${dup.map((k) => JSON.stringify(k)).join(' > ')} twice; readers disagree on which entry counts, so the file is rejected (rewrite it with a conforming writer)`,
    );
  }

  const dataStart = 8 + hl;
  const dataSize = size - dataStart;
  let metadata: Record<string, string> = {};
  const infos = new Map<string, TensorInfo>();
  const ranges: Array<[number, number, string]> = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (entry === null) continue; // the reference reader accepts null as "no metadata"
      if (!isPlainObject(entry)) {
        throw new SafetensorsError(path, `__metadata__ is ${show(entry)}, not an object of strings`);
      }
      const pairs: Array<[string, string]> = [];
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') {
          throw new SafetensorsError(path, `__metadata__ ${JSON.stringify(k)} is ${show(v)}; metadata values must be strings`);
        }
        pairs.push([k, v]);
      }
      metadata = Object.fromEntries(pairs); // own properties even for a key like "__proto__"
      continue;
    }
    const where = `tensor ${JSON.stringify(name)}`;
    if (!isPlainObject(entry)) throw new SafetensorsError(path, `${where}: entry ${show(entry)} is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry;
    for (const field of ['dtype', 'shape', 'data_offsets']) {
      if (entry[field] === undefined) throw new SafetensorsError(path, `${where}: entry has no "${field}": ${CORRUPT}`);
    }
    if (!isDType(dtype)) {
      if (typeof dtype === 'string' && OTHER_FORMAT_DTYPES.has(dtype)) {
        throw new SafetensorsError(
          path,
          `${where}: dtype ${dtype} is not supported by sgm-ts (supported: ${KNOWN_DTYPES}); convert the checkpoint to F32, F16 or BF16`,
        );
      }
      throw new SafetensorsError(path, `${where}: unknown dtype ${show(dtype)} (known: ${KNOWN_DTYPES})`);
    }
    const numel = numelOf(shape);
    if (typeof numel === 'string') throw new SafetensorsError(path, `${where}: ${numel}`);
    const expected = numel * SAFETENSORS_ITEMSIZE[dtype];
    if (!Number.isSafeInteger(expected)) {
      throw new SafetensorsError(path, `${where}: ${dtype}${show(shape)} is larger than any file can hold`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o: unknown) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0) ||
      (offsets[1] as number) < (offsets[0] as number)
    ) {
      throw new SafetensorsError(path, `${where}: data_offsets ${show(offsets)} must be [begin, end] with integers 0 <= begin <= end`);
    }
    const begin = offsets[0] as number;
    const end = offsets[1] as number;
    if (end - begin !== expected) {
      throw new SafetensorsError(
        path,
        `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${dtype}${show(shape)} needs ${expected}: ${CORRUPT}`,
      );
    }
    if (end > dataSize) {
      throw new SafetensorsError(
        path,
        `${where}: data ends at byte ${end} of the data section, which has only ${dataSize} bytes: the file is truncated (incomplete download?) or corrupt`,
      );
    }
    if (expected > 0) ranges.push([begin, end, name]);
    infos.set(name, {
      name,
      dtype,
      shape: (shape as number[]).map((d) => d + 0), // + 0 turns -0 into 0
      fileOffset: dataStart + begin,
      byteLength: expected,
    });
  }
  // Overlap: sorted by begin, each non-empty range must start at or after the furthest end so far.
  ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let maxEnd = 0;
  let maxName = '';
  for (const [b, e, n] of ranges) {
    if (b < maxEnd) {
      throw new SafetensorsError(path, `tensors ${JSON.stringify(maxName)} and ${JSON.stringify(n)} overlap in the data section: ${CORRUPT}`);
    }
    maxEnd = e;
    maxName = n;
  }
  // Tensors are listed in file order (by data offset; header order among empty tensors), which
  // is also the fastest order to read them in. (JavaScript would list integer-like names first.)
  const ordered = new Map([...infos].sort((a, b) => a[1].fileOffset - b[1].fileOffset));
  return { metadata, infos: ordered };
}

// ---------------------------------------------------------------------------------------------
// Writing

/** A tensor declared to SafetensorsWriter: name, dtype and shape (the data comes later). */
export interface TensorSpec {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
}

/** A tensor to write: `data` is raw little-endian bytes (any 1-byte array) or the dtype's array. */
export interface TensorToWrite {
  dtype: SafetensorsDType;
  shape: readonly number[];
  data: TypedArray;
}

type SpecInput =
  | readonly TensorSpec[]
  | Record<string, { dtype: SafetensorsDType; shape: readonly number[] }>
  | Map<string, { dtype: SafetensorsDType; shape: readonly number[] }>;

/** Typed arrays (besides 1-byte arrays, which are raw bytes) accepted for each dtype. */
const ARRAY_KINDS: Record<SafetensorsDType, readonly string[]> = {
  F64: ['Float64Array'],
  F32: ['Float32Array'],
  F16: ['Uint16Array', 'Int16Array'],
  BF16: ['Uint16Array', 'Int16Array'],
  I64: ['BigInt64Array', 'BigUint64Array'],
  I32: ['Int32Array', 'Uint32Array'],
  I16: ['Int16Array', 'Uint16Array'],
  I8: [],
  U8: [],
  BOOL: [],
};

function typedArrayKind(a: TypedArray): string {
  return Object.prototype.toString.call(a).slice(8, -1);
}

/** Checks that `data` can be the bytes of a `dtype` tensor; returns a problem string or null. */
function dataProblem(dtype: SafetensorsDType, data: unknown): string | null {
  if (!ArrayBuffer.isView(data) || data instanceof DataView) return `data is ${show(data)}, not a typed array`;
  const a = data as TypedArray;
  if (a.BYTES_PER_ELEMENT === 1) return null;
  if (!ARRAY_KINDS[dtype].includes(typedArrayKind(a))) {
    const ok = [...ARRAY_KINDS[dtype], 'Uint8Array (raw bytes)'].join(', ');
    return `data is a ${typedArrayKind(a)}, which does not hold ${dtype} values (give ${ok}; convert first, e.g. with f32ToF16)`;
  }
  if (endianness() !== 'LE') return 'multi-byte typed arrays can only be written on little-endian hosts; pass the bytes as a Uint8Array';
  return null;
}

function asBytes(a: TypedArray): Uint8Array {
  return a instanceof Uint8Array ? a : new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function wellFormed(s: string): boolean {
  // A lone surrogate does not survive UTF-8 encoding (it becomes U+FFFD).
  return Buffer.from(s, 'utf8').toString('utf8') === s;
}

/** Orders names by their UTF-8 bytes (Unicode code point order, as the reference writer sorts). */
function compareNames(a: string, b: string): number {
  // UTF-16 order equals code point order unless a surrogate meets a unit of U+E000..U+FFFF.
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) {
      const sx = x >= 0xd800 && x <= 0xdfff;
      const sy = y >= 0xd800 && y <= 0xdfff;
      if (sx !== sy) return sx ? 1 : -1; // a surrogate pair encodes a code point above U+FFFF
      return x - y;
    }
  }
  return a.length - b.length;
}

interface Planned extends TensorInfo {
  /** Bytes of the tensor written so far. */
  written: number;
}

interface Plan {
  header: Buffer;
  entries: Planned[];
  total: number;
}

/**
 * Lays out a file. Data order (and header order): larger itemsize first, then name. With the
 * header padded to a multiple of 8, every tensor then starts at a multiple of its itemsize in the
 * file, so readers that map or view the file in place get naturally aligned arrays, as with the
 * reference writer (safetensors sorts by dtype, then name, for the same reason).
 */
function planFile(path: string, specs: SpecInput, metadata: Record<string, string> | undefined): Plan {
  const list: TensorSpec[] = [];
  if (specs instanceof Map) for (const [name, s] of specs) list.push({ name, dtype: s.dtype, shape: s.shape });
  else if (Array.isArray(specs)) for (const s of specs as readonly TensorSpec[]) list.push(s);
  else if (isPlainObject(specs)) {
    for (const [name, s] of Object.entries(specs as Record<string, TensorSpec>)) list.push({ name, dtype: s.dtype, shape: s.shape });
  } else throw new SafetensorsError(path, 'tensors must be a Map, an object or an array of {name, dtype, shape}');

  const seen = new Set<string>();
  const entries: Planned[] = [];
  for (const s of list) {
    if (!isPlainObject(s)) throw new SafetensorsError(path, `tensor spec ${show(s)} is not {name, dtype, shape}`);
    if (typeof s.name !== 'string') throw new SafetensorsError(path, `tensor name ${show(s.name)} is not a string`);
    const where = `tensor ${JSON.stringify(s.name)}`;
    if (s.name === '__metadata__') throw new SafetensorsError(path, `"__metadata__" is reserved and cannot name a tensor`);
    if (!wellFormed(s.name)) throw new SafetensorsError(path, `${where}: the name has an unpaired UTF-16 surrogate and cannot be stored as UTF-8`);
    if (seen.has(s.name)) throw new SafetensorsError(path, `${where} is declared twice`);
    seen.add(s.name);
    if (!isDType(s.dtype)) throw new SafetensorsError(path, `${where}: unknown dtype ${show(s.dtype)} (known: ${KNOWN_DTYPES})`);
    const numel = numelOf(s.shape);
    if (typeof numel === 'string') throw new SafetensorsError(path, `${where}: ${numel}`);
    const byteLength = numel * SAFETENSORS_ITEMSIZE[s.dtype];
    if (!Number.isSafeInteger(byteLength)) throw new SafetensorsError(path, `${where}: too large`);
    entries.push({ name: s.name, dtype: s.dtype, shape: s.shape.map((d) => d + 0), fileOffset: 0, byteLength, written: 0 });
  }
  entries.sort((a, b) => SAFETENSORS_ITEMSIZE[b.dtype] - SAFETENSORS_ITEMSIZE[a.dtype] || compareNames(a.name, b.name));

  const parts: string[] = [];
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) throw new SafetensorsError(path, 'metadata must be an object of strings');
    const keys = Object.keys(metadata).sort(compareNames);
    const items: string[] = [];
    for (const k of keys) {
      const v: unknown = metadata[k];
      if (typeof v !== 'string') throw new SafetensorsError(path, `metadata ${JSON.stringify(k)} is ${show(v)}; metadata values must be strings`);
      if (!wellFormed(k) || !wellFormed(v)) throw new SafetensorsError(path, `metadata ${JSON.stringify(k)} has an unpaired UTF-16 surrogate`);
      items.push(`${JSON.stringify(k)}:${JSON.stringify(v)}`);
    }
    parts.push(`"__metadata__":{${items.join(',')}}`);
  }
  let offset = 0;
  for (const e of entries) {
    const begin = offset;
    offset += e.byteLength;
    if (!Number.isSafeInteger(offset)) throw new SafetensorsError(path, 'the tensors add up to more than 2^53 bytes');
    parts.push(`${JSON.stringify(e.name)}:{"dtype":"${e.dtype}","shape":[${e.shape.join(',')}],"data_offsets":[${begin},${offset}]}`);
    e.fileOffset = begin; // made absolute below
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES) {
    throw new SafetensorsError(path, `the header would take ${padded} bytes, over the ${MAX_HEADER_BYTES}-byte limit readers accept`);
  }
  const header = Buffer.alloc(8 + padded, 0x20);
  header.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(header, 8);
  for (const e of entries) e.fileOffset += header.length;
  return { header, entries, total: header.length + offset };
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.byteLength) {
    done += writeSync(fd, bytes, done, Math.min(bytes.byteLength - done, 1 << 30), position + done);
  }
}

/**
 * Writes a safetensors file tensor by tensor, so a file larger than memory can be written: every
 * tensor is declared up front (the header comes first in the file), then its bytes are given with
 * write(), in any order and in as many pieces as wanted. commit() makes the file appear at `path`
 * atomically; until then the data goes to a temporary file beside it
 * (`.<name>.<pid>.<random>.tmp`), which abort() — or any failed call — removes, leaving whatever
 * was at `path` untouched. A writer neither committed nor aborted leaves its temporary file.
 */
export class SafetensorsWriter {
  readonly tempPath: string;
  /** Size of the finished file in bytes. */
  readonly totalBytes: number;
  private fd: number | null;
  private readonly entries: Map<string, Planned>;
  private state: 'open' | 'committed' | 'aborted' = 'open';

  private constructor(
    readonly path: string,
    tempPath: string,
    fd: number,
    entries: Planned[],
    totalBytes: number,
  ) {
    this.tempPath = tempPath;
    this.fd = fd;
    this.totalBytes = totalBytes;
    this.entries = new Map(entries.map((e) => [e.name, e]));
  }

  /** Declares the tensors (and metadata), creates the temporary file and writes the header. */
  static create(path: string, tensors: SpecInput, metadata?: Record<string, string>): SafetensorsWriter {
    const plan = planFile(path, tensors, metadata);
    const tempPath = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    let fd: number;
    try {
      fd = openSync(tempPath, 'wx');
    } catch (e) {
      throw new SafetensorsError(path, `cannot create the temporary file ${tempPath}: ${(e as Error).message}`);
    }
    const w = new SafetensorsWriter(path, tempPath, fd, plan.entries, plan.total);
    w.guard(() => writeAll(fd, plan.header, 0), 'cannot write the header');
    return w;
  }

  /** The layout of the file: each tensor's absolute file offset and byte length. */
  tensors(): TensorInfo[] {
    return [...this.entries.values()].map(({ name, dtype, shape, fileOffset, byteLength }) => ({
      name,
      dtype,
      shape: [...shape],
      fileOffset,
      byteLength,
    }));
  }

  /** Bytes of tensor `name` still to be written. */
  remaining(name: string): number {
    const e = this.entries.get(name);
    if (!e) throw new SafetensorsError(this.path, `no tensor named "${name}" was declared`);
    return e.byteLength - e.written;
  }

  /**
   * Appends bytes to tensor `name`: its whole data at once, or the next piece of it. `data` is
   * raw little-endian bytes (any 1-byte typed array) or the dtype's own typed array.
   */
  write(name: string, data: TypedArray): void {
    this.guard(() => {
      const e = this.entries.get(name);
      if (!e) throw new SafetensorsError(this.path, `no tensor named "${name}" was declared`);
      const problem = dataProblem(e.dtype, data);
      if (problem) throw new SafetensorsError(this.path, `tensor "${name}": ${problem}`);
      const bytes = asBytes(data);
      if (e.written + bytes.byteLength > e.byteLength) {
        throw new SafetensorsError(
          this.path,
          `tensor "${name}": ${e.written + bytes.byteLength} bytes given but ${e.dtype}${show(e.shape)} has ${e.byteLength}`,
        );
      }
      if (e.dtype === 'BOOL') {
        const bad = bytes.findIndex((b) => b > 1);
        if (bad >= 0) throw new SafetensorsError(this.path, `tensor "${name}": BOOL byte ${e.written + bad} is ${bytes[bad]}, not 0 or 1`);
      }
      try {
        writeAll(this.fd!, bytes, e.fileOffset + e.written);
      } catch (err) {
        throw new SafetensorsError(this.path, `cannot write "${name}" to ${this.tempPath}: ${(err as Error).message}`);
      }
      e.written += bytes.byteLength;
    });
  }

  /** Checks that every tensor is complete, syncs the data and renames the file into place. */
  commit(): void {
    this.guard(() => {
      const missing = [...this.entries.values()].filter((e) => e.written !== e.byteLength);
      if (missing.length > 0) {
        const list = missing.slice(0, 5).map((e) => `"${e.name}" (${e.written}/${e.byteLength} bytes)`);
        throw new SafetensorsError(
          this.path,
          `commit: ${missing.length} tensor(s) not fully written: ${list.join(', ')}${missing.length > 5 ? ', ...' : ''}`,
        );
      }
      const fd = this.fd!;
      try {
        const size = fstatSync(fd).size;
        if (size !== this.totalBytes) throw new Error(`temporary file has ${size} bytes, expected ${this.totalBytes}`);
        fsyncSync(fd);
        closeSync(fd);
        this.fd = null;
        renameSync(this.tempPath, this.path);
      } catch (err) {
        throw new SafetensorsError(this.path, `cannot finish writing: ${(err as Error).message}`);
      }
      this.state = 'committed';
      syncDir(dirname(this.path));
    });
  }

  /** Discards the temporary file; the file at `path` is left as it was. Safe to call twice. */
  abort(): void {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        // already unusable; removing the file is what matters
      }
      this.fd = null;
    }
    try {
      unlinkSync(this.tempPath);
    } catch {
      // already gone
    }
  }

  /** Runs `f`; on any error removes the temporary file and rethrows. */
  private guard(f: () => void, context?: string): void {
    if (this.state !== 'open') throw new SafetensorsError(this.path, `the writer is ${this.state}`);
    try {
      f();
    } catch (e) {
      this.abort();
      if (e instanceof SafetensorsError) throw e;
      throw new SafetensorsError(this.path, `${context ?? 'write failed'}: ${(e as Error).message}`);
    }
  }
}

/** Makes a rename durable (best effort: not every platform can fsync a directory). */
function syncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // ignore
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/**
 * Writes tensors (and optional string metadata) to `path` atomically. Every tensor's data is
 * checked against its dtype and shape before anything is written; on any error the file at
 * `path` is left as it was and no temporary file remains.
 */
export function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite> | Map<string, TensorToWrite>,
  metadata?: Record<string, string>,
): void {
  if (!(tensors instanceof Map) && !isPlainObject(tensors)) {
    throw new SafetensorsError(path, 'tensors must be a Map or an object of {dtype, shape, data}');
  }
  const entries: Array<[string, TensorToWrite]> = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  for (const [name, t] of entries) {
    if (!isPlainObject(t)) throw new SafetensorsError(path, `tensor ${JSON.stringify(name)}: ${show(t)} is not {dtype, shape, data}`);
    if (!isDType(t.dtype)) throw new SafetensorsError(path, `tensor ${JSON.stringify(name)}: unknown dtype ${show(t.dtype)} (known: ${KNOWN_DTYPES})`);
    const problem = dataProblem(t.dtype, t.data);
    if (problem) throw new SafetensorsError(path, `tensor ${JSON.stringify(name)}: ${problem}`);
    const numel = numelOf(t.shape);
    if (typeof numel === 'string') throw new SafetensorsError(path, `tensor ${JSON.stringify(name)}: ${numel}`);
    const need = numel * SAFETENSORS_ITEMSIZE[t.dtype];
    if (t.data.byteLength !== need) {
      throw new SafetensorsError(
        path,
        `tensor ${JSON.stringify(name)}: data has ${t.data.byteLength} bytes but ${t.dtype}${show(t.shape)} needs ${need}`,
      );
    }
  }
  const w = SafetensorsWriter.create(
    path,
    entries.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })),
    metadata,
  );
  const byName = new Map(entries);
  try {
    for (const info of w.tensors()) w.write(info.name, byName.get(info.name)!.data);
    w.commit();
  } finally {
    w.abort(); // no-op after a commit
  }
}
