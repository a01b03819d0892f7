// A streaming tar reader (POSIX ustar, pax extended headers, GNU long names): members are read one
// by one from a file stream, so a shard is never held in memory whole.
import { createReadStream } from 'node:fs';
import { DataFileError } from './errors.js';

export interface TarMember {
  /** Full member name (pax `path`, GNU long name or ustar prefix/name). */
  name: string;
  /** Member bytes. */
  data: Buffer;
}

const BLOCK = 512;

/** Pulls exact byte counts from an async stream of chunks. */
class ChunkReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;
  private readonly it: AsyncIterator<Buffer>;
  /** Bytes consumed so far. */
  offset = 0;

  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** Exactly n bytes, or fewer only at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    while (this.buffered < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else {
        this.chunks.push(r.value);
        this.buffered += r.value.length;
      }
    }
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const take = Math.min(n, all.length);
    const out = all.subarray(0, take);
    const rest = all.subarray(take);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    this.offset += take;
    return out;
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}

function cstring(b: Buffer, start: number, len: number): string {
  const field = b.subarray(start, start + len);
  const z = field.indexOf(0);
  return field.subarray(0, z < 0 ? len : z).toString('utf8');
}

function octal(b: Buffer, start: number, len: number, path: string, what: string): number {
  const field = b.subarray(start, start + len);
  if (field[0]! & 0x80) {
    // GNU base-256 for large values
    let v = 0;
    for (let i = 1; i < len; i++) v = v * 256 + field[i]!;
    return v;
  }
  const s = cstring(b, start, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new DataFileError(path, `corrupt tar header: ${what} field '${s}' is not octal`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  const stored = parseInt(cstring(h, 148, 8).trim() || 'NaN', 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return sum === stored;
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(data.subarray(i, sp).toString('ascii'), 10);
    if (!(len > 0)) break;
    const rec = data.subarray(sp + 1, i + len - 1).toString('utf8'); // without the trailing newline
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/** Reads tar members from a stream of chunks; `path` names the archive in errors. */
export async function* readTarStream(source: AsyncIterable<Buffer>, path: string): AsyncGenerator<TarMember, void, undefined> {
  const r = new ChunkReader(source);
  let longName: string | null = null;
  let pax: Record<string, string> = {};
  let globalPax: Record<string, string> = {};
  try {
    for (;;) {
      const at = r.offset;
      const h = await r.read(BLOCK);
      if (h.length === 0) return; // no end-of-archive blocks: accepted, as GNU tar does with a warning
      if (h.length < BLOCK) throw new DataFileError(path, `truncated tar archive: ${h.length}-byte header block at offset ${at}`);
      if (h.every((b) => b === 0)) return; // end-of-archive marker
      if (!checksumOk(h)) throw new DataFileError(path, `corrupt tar header at offset ${at} (bad checksum; not a tar file?)`);
      const size = octal(h, 124, 12, path, 'size');
      const type = String.fromCharCode(h[156]!);
      const padded = Math.ceil(size / BLOCK) * BLOCK;
      const body = await r.read(padded);
      if (body.length < padded) {
        throw new DataFileError(path, `truncated tar archive: member at offset ${at} needs ${size} bytes of data, ${Math.min(body.length, size)} present`);
      }
      const data = body.subarray(0, size);
      if (type === 'x') {
        pax = parsePax(data);
        continue;
      }
      if (type === 'g') {
        globalPax = { ...globalPax, ...parsePax(data) };
        continue;
      }
      if (type === 'L') {
        longName = data.toString('utf8').replace(/\0+$/, '');
        continue;
      }
      let name = cstring(h, 0, 100);
      const magic = cstring(h, 257, 6);
      if (magic.startsWith('ustar')) {
        const prefix = cstring(h, 345, 155);
        if (prefix !== '' && magic === 'ustar') name = `${prefix}/${name}`;
      }
      if (longName !== null) name = longName;
      const paxPath = pax.path ?? globalPax.path;
      if (paxPath !== undefined) name = paxPath;
      const paxSize = pax.size;
      longName = null;
      pax = {};
      if (paxSize !== undefined && Number(paxSize) !== size) {
        throw new DataFileError(path, `tar member ${name}: pax size ${paxSize} differs from the header's ${size} (large members are not supported)`);
      }
      if (type === '0' || type === '\0' || type === '7') yield { name, data: Buffer.from(data) };
      // directories, links and other entries are skipped
    }
  } finally {
    await r.close();
  }
}

/** Reads the members of a tar file, streaming. */
export function readTarFile(path: string): AsyncGenerator<TarMember, void, undefined> {
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  const source = (async function* () {
    try {
      for await (const chunk of stream) yield chunk as Buffer;
    } catch (e) {
      throw new DataFileError(path, `cannot read tar shard: ${(e as Error).message}`, { cause: e });
    } finally {
      stream.destroy();
    }
  })();
  return readTarStream(source, path);
}
