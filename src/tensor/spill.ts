// External data for ONNX initializers. Weights read from a checkpoint are referenced where they
// lie in the file; data held in JavaScript is appended once to a per-process spill file, so the
// model proto stays small (no 2 GB limit) and ORT reads initializers straight from disk.
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesOf, type TypedArray } from './dtype.js';
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

/** Where a storage's bytes are on disk (writing host data to the spill file once). */
export function externalRegion(storage: ResolvedStorage): FileRegion {
  if (storage.kind === 'file') return { path: storage.path, offset: storage.offset, byteLength: storage.byteLength };
  const known = written.get(storage.data);
  if (known) return known;
  const f = spillFile();
  // 64-byte alignment keeps ORT free to map the data directly.
  const offset = Math.ceil(f.size / 64) * 64;
  const bytes = bytesOf(storage.data);
  let done = 0;
  while (done < bytes.byteLength) {
    done += writeSync(f.fd, bytes, done, Math.min(bytes.byteLength - done, 1 << 30), offset + done);
  }
  f.size = offset + bytes.byteLength;
  const region = { path: f.path, offset, byteLength: bytes.byteLength };
  written.set(storage.data, region);
  return region;
}
