// SHA-256 of files, streamed: checkpoints are several GB and must never be read into memory whole.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

/** A file that could not be hashed (missing, unreadable, aborted); the message names it. */
export class HashError extends Error {
  readonly path: string;
  constructor(path: string, reason: string) {
    super(`cannot hash ${path}: ${reason}`);
    this.name = 'HashError';
    this.path = path;
  }
}

export interface HashOptions {
  /** Called after every chunk read with the bytes hashed so far; a last call has bytesDone === bytesTotal. */
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
  /** Aborting stops the read and rejects with a HashError. */
  signal?: AbortSignal;
  /** Read size in bytes (default 4 MiB). */
  chunkSize?: number;
}

/** Lowercase hex SHA-256 of a file's contents, read as a stream. */
export async function sha256File(path: string, options: HashOptions = {}): Promise<string> {
  const { onProgress, signal } = options;
  if (signal?.aborted) throw new HashError(path, 'aborted');
  let total: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error('not a regular file');
    total = st.size;
  } catch (e) {
    throw new HashError(path, (e as Error).message);
  }
  const hash = createHash('sha256');
  const stream = createReadStream(path, { highWaterMark: options.chunkSize ?? 4 << 20 });
  const onAbort = () => stream.destroy(new Error('aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  let done = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      hash.update(chunk);
      done += chunk.length;
      // a file growing while it is read must not report more than 100 %
      onProgress?.(done, Math.max(total, done));
    }
  } catch (e) {
    throw new HashError(path, signal?.aborted ? 'aborted' : (e as Error).message);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (signal?.aborted) throw new HashError(path, 'aborted');
  if (done === 0) onProgress?.(0, 0); // empty file: still one final call
  return hash.digest('hex');
}

export interface VerifyResult {
  ok: boolean;
  /** lowercase hex digest of the file */
  actual: string;
  /** the expected digest, normalised to lowercase hex */
  expected: string;
}

/**
 * Compares a file's SHA-256 with `expectedHex` (case-insensitive; a `sha256:` prefix is allowed).
 * A malformed expected digest is an error, not a mismatch.
 */
export async function verifySha256(path: string, expectedHex: string, options: HashOptions = {}): Promise<VerifyResult> {
  const expected = expectedHex.trim().replace(/^sha256:/i, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(expected)) {
    throw new HashError(path, `the expected SHA-256 ${JSON.stringify(expectedHex)} is not 64 hexadecimal digits`);
  }
  const actual = await sha256File(path, options);
  return { ok: actual === expected, actual, expected };
}
