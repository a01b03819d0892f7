// External data for ONNX initializers. Weights read from a checkpoint are referenced where they
// lie in the file; data held in JavaScript is appended once to a per-process spill file, so the
// model proto stays small (no 2 GB limit) and ORT reads initializers straight from disk.
import { closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, realpathSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
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

interface DataFile {
  path: string;
  fd: number;
  size: number;
}

function append(bytes: Uint8Array, f: DataFile = spillFile()): FileRegion {
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
  const cache = weightCacheFor(storage.path, dtype);
  const cached = cache?.lookup(storage.offset, storage.byteLength);
  if (cached) {
    converted.set(key, cached);
    return cached;
  }
  const target = cache ? cache.dataFile() : spillFile();
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
        first = append(out, target);
      } else {
        // Chunks after the first follow it directly (append() aligns only the first).
        const f = target;
        let w = 0;
        while (w < out.byteLength) w += writeSync(f.fd, out, w, out.byteLength - w, f.size + w);
        f.size += out.byteLength;
      }
      total += out.byteLength;
    }
  } finally {
    closeSync(fd);
  }
  const region = first ? { path: first.path, offset: first.offset, byteLength: total } : append(new Uint8Array(0), target);
  converted.set(key, region);
  cache?.record(storage.offset, storage.byteLength, region);
  return region;
}

// ------------------------------------------------------------------ persistent conversion cache
//
// Opt-in (SGM_WEIGHT_CACHE=<dir>, or setWeightCache(dir)): weights converted to another precision
// (an fp16 checkpoint feeding fp32 graphs) are kept in <dir> and reused by later processes, so
// only the first run pays for the conversion (28 s for the SDXL UNet here; ~10 GB of disk for it).
// Per source file and target dtype there is an index `<key>.json` (replaced atomically) naming
// regions of data files; every process appends only to its own new data file, and records it in
// the index when it exits, after syncing the data. A crash loses at most that process's additions;
// an index never names data that was not completely written. The key covers the source file's
// real path, size and modification time, so a changed checkpoint is converted again.

interface CacheEntry {
  file: string;
  offset: number;
  byteLength: number;
}

interface CacheIndex {
  source: { path: string; size: number; mtimeMs: number };
  dtype: DType;
  entries: Record<string, CacheEntry>;
}

let cacheDir: string | null | undefined;

/** Sets (or, with null, turns off) the persistent conversion cache; default: $SGM_WEIGHT_CACHE. */
export function setWeightCache(dir: string | null): void {
  cacheDir = dir;
  caches.clear();
}

function currentCacheDir(): string | null {
  if (cacheDir === undefined) cacheDir = process.env.SGM_WEIGHT_CACHE ? process.env.SGM_WEIGHT_CACHE : null;
  return cacheDir;
}

class WeightCache {
  private index: CacheIndex;
  private file: DataFile | null = null;
  private readonly added: Record<string, CacheEntry> = {};

  constructor(
    readonly dir: string,
    readonly key: string,
    source: CacheIndex['source'],
    dtype: DType,
  ) {
    this.index = this.read() ?? { source, dtype, entries: {} };
    if (this.index.source.size !== source.size || this.index.source.mtimeMs !== source.mtimeMs) this.index = { source, dtype, entries: {} };
    process.once('exit', () => this.persist());
  }

  private get indexPath(): string {
    return join(this.dir, `${this.key}.json`);
  }

  private read(): CacheIndex | null {
    try {
      return JSON.parse(readFileSync(this.indexPath, 'utf8')) as CacheIndex;
    } catch {
      return null; // absent or unreadable: it is only a cache
    }
  }

  lookup(offset: number, byteLength: number): FileRegion | null {
    const e = this.index.entries[`${offset}:${byteLength}`];
    if (!e) return null;
    const path = join(this.dir, e.file);
    try {
      if (statSync(path).size < e.offset + e.byteLength) return null;
    } catch {
      return null;
    }
    return { path, offset: e.offset, byteLength: e.byteLength };
  }

  dataFile(): DataFile {
    if (!this.file) {
      mkdirSync(this.dir, { recursive: true });
      const name = `${this.key}-${process.pid}-${randomBytes(4).toString('hex')}.bin`;
      const path = join(this.dir, name);
      this.file = { path, fd: openSync(path, 'w+'), size: 0 };
    }
    return this.file;
  }

  record(offset: number, byteLength: number, region: FileRegion): void {
    this.added[`${offset}:${byteLength}`] = { file: basename(region.path), offset: region.offset, byteLength: region.byteLength };
  }

  /** Syncs this process's data file, then merges its regions into the index (atomic replace). */
  persist(): void {
    if (!this.file || Object.keys(this.added).length === 0) return;
    try {
      fsyncSync(this.file.fd);
      closeSync(this.file.fd);
      const latest = this.read();
      const base = latest && latest.source.size === this.index.source.size && latest.source.mtimeMs === this.index.source.mtimeMs ? latest : this.index;
      const merged: CacheIndex = { ...base, entries: { ...base.entries, ...this.added } };
      const tmp = `${this.indexPath}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(merged));
      renameSync(tmp, this.indexPath);
    } catch {
      // best effort: a cache that cannot be written is simply not used next time
    }
  }
}

const caches = new Map<string, WeightCache | null>();

function weightCacheFor(path: string, dtype: DType): WeightCache | null {
  const dir = currentCacheDir();
  if (!dir) return null;
  const id = `${path}|${dtype}`;
  if (caches.has(id)) return caches.get(id)!;
  let cache: WeightCache | null = null;
  try {
    const real = realpathSync(path);
    const st = statSync(real);
    const source = { path: real, size: st.size, mtimeMs: st.mtimeMs };
    const key = createHash('sha256').update(`${real}|${st.size}|${st.mtimeMs}|${dtype}`).digest('hex').slice(0, 24);
    cache = new WeightCache(resolve(dir), key, source, dtype);
  } catch {
    cache = null;
  }
  caches.set(id, cache);
  return cache;
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
