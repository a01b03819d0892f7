// External data for ONNX initializers. Weights read from a checkpoint are referenced where they
// lie in the file; data held in JavaScript is appended once to a per-process spill file, so the
// model proto stays small (no 2 GB limit) and ORT reads initializers straight from disk.
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './dtype-convert.js';
import { bytesOf, ITEMSIZE, viewBytes, type DType, type TypedArray } from './dtype.js';
import type { ResolvedStorage } from './tensor.js';

export interface FileRegion {
  path: string;
  offset: number;
  byteLength: number;
}

let spill: { dir: string; path: string; fd: number; size: number } | null = null;
const written = new WeakMap<TypedArray, FileRegion>();

function spillFile(): NonNullable<typeof spill> {
  if (!spill) {
    const dir = mkdtempSync(join(tmpdir(), 'sgm-ts-'));
    const path = join(dir, 'weights.bin');
    spill = { dir, path, fd: openSync(path, 'w+'), size: 0 };
    process.once('exit', () => {
      try {
        if (spill) {
          closeSync(spill.fd);
          rmSync(spill.dir, { recursive: true, force: true });
        }
      } catch {
        // best effort at exit
      }
    });
  }
  return spill;
}

function append(bytes: Uint8Array): FileRegion {
  const f = spillFile();
  // 64-byte alignment keeps ORT free to map the data directly.
  const offset = Math.ceil(f.size / 64) * 64;
  let done = 0;
  while (done < bytes.byteLength) {
    done += writeSync(f.fd, bytes, done, Math.min(bytes.byteLength - done, 1 << 30), offset + done);
  }
  f.size = offset + bytes.byteLength;
  return { path: f.path, offset, byteLength: bytes.byteLength };
}

/** Float conversions between storage and compute dtypes, chunk by chunk. */
function convertChunk(src: TypedArray, from: DType, to: DType): TypedArray {
  const f32 =
    from === 'float32' ? (src as Float32Array)
    : from === 'float16' ? f16ToF32(src as Uint16Array)
    : from === 'bfloat16' ? bf16ToF32(src as Uint16Array)
    : from === 'float64' ? Float32Array.from(src as Float64Array)
    : null;
  if (!f32) throw new Error(`cannot convert ${from} weights to ${to}`);
  switch (to) {
    case 'float32':
      return f32;
    case 'float16':
      return f32ToF16(f32);
    case 'bfloat16':
      return f32ToBf16(f32);
    case 'float64':
      return Float64Array.from(f32);
    default:
      throw new Error(`cannot convert ${from} weights to ${to}`);
  }
}

const converted = new Map<string, FileRegion>();

/**
 * The storage converted to `dtype` on disk (once per file region), streamed in chunks so that
 * neither JavaScript nor ONNX Runtime ever holds both precisions of a checkpoint: an fp16
 * checkpoint feeding an fp32 graph becomes one fp32 initializer.
 */
export function convertedRegion(storage: ResolvedStorage, dtype: DType): FileRegion {
  if (storage.dtype === dtype) return externalRegion(storage);
  if (storage.kind === 'host') {
    const known = written.get(storage.data);
    const key = known ? `${known.path}:${known.offset}:${dtype}` : null;
    if (key && converted.has(key)) return converted.get(key)!;
    const region = append(bytesOf(convertChunk(storage.data, storage.dtype, dtype)));
    if (key) converted.set(key, region);
    return region;
  }
  const key = `${storage.path}:${storage.offset}:${storage.byteLength}:${dtype}`;
  const known = converted.get(key);
  if (known) return known;
  const inSize = ITEMSIZE[storage.dtype];
  const n = storage.byteLength / inSize;
  const chunk = 1 << 22;
  const fd = openSync(storage.path, 'r');
  let first: FileRegion | null = null;
  let total = 0;
  try {
    for (let i = 0; i < n; i += chunk) {
      const m = Math.min(chunk, n - i);
      const buf = new Uint8Array(m * inSize);
      let done = 0;
      while (done < buf.byteLength) {
        const r = readSync(fd, buf, done, buf.byteLength - done, storage.offset + i * inSize + done);
        if (r <= 0) throw new Error(`${storage.path}: unexpected end of file converting weights`);
        done += r;
      }
      const out = bytesOf(convertChunk(viewBytes(buf, storage.dtype), storage.dtype, dtype));
      if (first === null) {
        first = append(out);
      } else {
        // Chunks after the first follow it directly (append() aligns only the first).
        const f = spillFile();
        let w = 0;
        while (w < out.byteLength) w += writeSync(f.fd, out, w, out.byteLength - w, f.size + w);
        f.size += out.byteLength;
      }
      total += out.byteLength;
    }
  } finally {
    closeSync(fd);
  }
  const region = first ? { path: first.path, offset: first.offset, byteLength: total } : append(new Uint8Array(0));
  converted.set(key, region);
  return region;
}

/** Where a storage's bytes are on disk (writing host data to the spill file once). */
export function externalRegion(storage: ResolvedStorage): FileRegion {
  if (storage.kind === 'file') return { path: storage.path, offset: storage.offset, byteLength: storage.byteLength };
  const known = written.get(storage.data);
  if (known) return known;
  const region = append(bytesOf(storage.data));
  written.set(storage.data, region);
  return region;
}
