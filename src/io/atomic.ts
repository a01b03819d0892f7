// Atomic whole-file writes: the bytes go to a temporary file beside the target (same directory, so
// the final rename never crosses file systems), are fsynced, and only then get the final name. A crash
// or an error at any point leaves either the old file or nothing under the final name, never a
// partial one. (SafetensorsWriter in safetensors.ts does the same for streamed tensor data.)
import { randomBytes } from 'node:crypto';
import { link, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** A file that could not be written; the message names the file and says why. */
export class AtomicWriteError extends Error {
  readonly path: string;
  readonly code: string | undefined;
  constructor(path: string, reason: string, code?: string) {
    super(`cannot write ${path}: ${reason}`);
    this.name = 'AtomicWriteError';
    this.path = path;
    this.code = code;
  }
}

export interface WriteFileAtomicOptions {
  /**
   * Never replace an existing file: fails with code 'EEXIST' when `path` exists (checked atomically
   * with a hard link where the file system supports one). Default false: an existing file is replaced.
   */
  exclusive?: boolean;
  /** File mode of a new file (default 0o644, before the umask). */
  mode?: number;
}

/** The temporary name used for `path`: hidden, unique per process and call, in the same directory. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Writes `bytes` to `path` atomically (temporary file, fsync, rename, directory fsync). On any error
 * the temporary file is removed and whatever was at `path` is left untouched.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array, options: WriteFileAtomicOptions = {}): Promise<void> {
  const temp = tempPathFor(path);
  let handle: FileHandle | null = null;
  let placed = false;
  try {
    try {
      handle = await open(temp, 'wx', options.mode ?? 0o644);
      await handle.writeFile(bytes);
      await handle.sync();
      await handle.close();
      handle = null;
    } catch (e) {
      throw new AtomicWriteError(path, `cannot write the temporary file ${temp}: ${(e as Error).message}`, (e as NodeJS.ErrnoException).code);
    }
    if (options.exclusive) await placeExclusive(temp, path);
    else {
      try {
        await rename(temp, path);
      } catch (e) {
        throw new AtomicWriteError(path, `cannot rename ${temp} into place: ${(e as Error).message}`, (e as NodeJS.ErrnoException).code);
      }
    }
    placed = true;
  } finally {
    // (a cast: TypeScript narrows `handle` to null here, but the try block may have thrown before)
    const h = handle as FileHandle | null;
    if (h !== null) await h.close().catch(() => undefined);
    // after an exclusive link the temporary name still exists and must go too
    await unlink(temp).catch(() => undefined);
  }
  if (placed) await syncDir(dirname(path));
}

/** Gives `temp` the name `path` unless `path` exists (link() fails with EEXIST instead of replacing). */
async function placeExclusive(temp: string, path: string): Promise<void> {
  try {
    await link(temp, path);
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new AtomicWriteError(path, 'the file exists (exclusive write)', 'EEXIST');
    // file systems without hard links (some FUSE / SMB / FAT mounts): check, then rename (small race)
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS' && code !== 'EXDEV') {
      throw new AtomicWriteError(path, `cannot link ${temp} into place: ${(e as Error).message}`, code);
    }
  }
  try {
    const h = await open(path, 'r');
    await h.close();
    throw new AtomicWriteError(path, 'the file exists (exclusive write)', 'EEXIST');
  } catch (e) {
    if (e instanceof AtomicWriteError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new AtomicWriteError(path, (e as Error).message, (e as NodeJS.ErrnoException).code);
  }
  try {
    await rename(temp, path);
  } catch (e) {
    throw new AtomicWriteError(path, `cannot rename ${temp} into place: ${(e as Error).message}`, (e as NodeJS.ErrnoException).code);
  }
}

/** Makes a rename durable (best effort: not every platform can fsync a directory). */
async function syncDir(dir: string): Promise<void> {
  try {
    const h = await open(dir, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  } catch {
    // ignore: durability of the directory entry is best effort
  }
}
