// The SHA-256 of a checkpoint for the PNG metadata, cached so a multi-GB file is read in full only
// once: the cache (a JSON file in the user's cache folder, written atomically) is keyed by the
// file's absolute path, size and modification time.
import { mkdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { sha256File } from '../io/hash.js';
import { writeFileAtomic } from '../io/atomic.js';

interface Entry {
  size: number;
  mtimeMs: number;
  sha256: string;
}

/** The cache file: $SGM_CACHE_DIR/sha256.json, else ~/.cache/sgm-ts/sha256.json. */
export function hashCachePath(): string {
  const dir = process.env.SGM_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'sgm-ts');
  return join(dir, 'sha256.json');
}

function readCache(path: string): Record<string, Entry> {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8'));
    return v && typeof v === 'object' ? (v as Record<string, Entry>) : {};
  } catch {
    return {}; // absent or unreadable: start over (it is only a cache)
  }
}

export async function cachedSha256(file: string, onProgress?: (done: number, total: number) => void): Promise<string> {
  const abs = realpathSync(file);
  const st = statSync(abs);
  const cachePath = hashCachePath();
  const cache = readCache(cachePath);
  const hit = cache[abs];
  if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return hit.sha256;
  const sha256 = await sha256File(abs, { onProgress });
  try {
    mkdirSync(join(cachePath, '..'), { recursive: true });
    const fresh = readCache(cachePath);
    fresh[abs] = { size: st.size, mtimeMs: st.mtimeMs, sha256 };
    await writeFileAtomic(cachePath, new TextEncoder().encode(JSON.stringify(fresh, null, 1)));
  } catch {
    // A read-only home is fine: the hash is just computed again next time.
  }
  return sha256;
}
