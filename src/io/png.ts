// PNG files with text metadata. sharp (libvips/libspng) encodes the pixels; the text chunks are
// spliced in here, before IEND, because sharp cannot write arbitrary tEXt/iTXt chunks. Values that
// fit Latin-1 go to tEXt (readable by every tool); anything else (emoji, CJK prompts) to an
// uncompressed UTF-8 iTXt chunk, as the PNG spec prescribes.
import { readFile } from 'node:fs/promises';
import { inflateSync } from 'node:zlib';
import sharp from 'sharp';
import { writeFileAtomic, type WriteFileAtomicOptions } from './atomic.js';

/** A malformed PNG, or text that PNG cannot carry; the message says which. */
export class PngError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PngError';
  }
}

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

const CRC_TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO 3309 / PNG / zlib). `crc` continues a previous result. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface PngChunk {
  /** four-letter chunk type, e.g. 'IHDR', 'tEXt' */
  type: string;
  /** the chunk data (a view into the file's bytes) */
  data: Uint8Array;
  /** the CRC stored in the file */
  crc: number;
  /** byte offset of the chunk's length field in the file */
  offset: number;
}

/** Splits a PNG file into its chunks. Checks the signature and the framing; `checkCrc` also each CRC. */
export function pngChunks(bytes: Uint8Array, options: { checkCrc?: boolean } = {}): PngChunk[] {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) throw new PngError('not a PNG file (bad signature)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunks: PngChunk[] = [];
  let o = 8;
  while (o < bytes.length) {
    if (o + 12 > bytes.length) throw new PngError(`truncated chunk header at byte ${o}`);
    const len = view.getUint32(o);
    const type = String.fromCharCode(bytes[o + 4]!, bytes[o + 5]!, bytes[o + 6]!, bytes[o + 7]!);
    if (!/^[A-Za-z]{4}$/.test(type)) throw new PngError(`invalid chunk type at byte ${o}`);
    if (o + 12 + len > bytes.length) throw new PngError(`chunk ${type} at byte ${o} runs past the end of the file`);
    const data = bytes.subarray(o + 8, o + 8 + len);
    const crc = view.getUint32(o + 8 + len);
    if (options.checkCrc && crc32(bytes.subarray(o + 4, o + 8 + len)) !== crc) throw new PngError(`bad CRC in chunk ${type} at byte ${o}`);
    chunks.push({ type, data, crc, offset: o });
    o += 12 + len;
    if (type === 'IEND') break;
  }
  if (chunks.length === 0 || chunks[0]!.type !== 'IHDR') throw new PngError('the first chunk is not IHDR');
  if (chunks[chunks.length - 1]!.type !== 'IEND') throw new PngError('no IEND chunk');
  return chunks;
}

/** One chunk: length, type, data, CRC over type + data. */
export function encodeChunk(type: string, data: Uint8Array): Buffer {
  if (!/^[A-Za-z]{4}$/.test(type)) throw new PngError(`invalid chunk type "${type}"`);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

function isLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

/** PNG keywords: 1-79 Latin-1 printable characters, no leading/trailing or double spaces. */
function checkKeyword(key: string): void {
  const ok =
    key.length >= 1 &&
    key.length <= 79 &&
    /^[\x20-\x7e\xa1-\xff]+$/.test(key) &&
    !key.startsWith(' ') &&
    !key.endsWith(' ') &&
    !key.includes('  ');
  if (!ok) {
    throw new PngError(
      `invalid PNG text keyword ${JSON.stringify(key)}: use 1-79 printable Latin-1 characters without leading, trailing or double spaces`,
    );
  }
}

/** The tEXt (Latin-1 value) or iTXt (uncompressed UTF-8 value) chunk for one key/value pair. */
export function textChunk(key: string, value: string): Buffer {
  checkKeyword(key);
  if (value.includes('\0')) throw new PngError(`the value of PNG text keyword "${key}" contains a NUL character`);
  const k = Buffer.from(key, 'latin1');
  if (isLatin1(value)) return encodeChunk('tEXt', Buffer.concat([k, Buffer.of(0), Buffer.from(value, 'latin1')]));
  // keyword \0, compression flag 0, method 0, language tag "" \0, translated keyword "" \0, UTF-8 text
  return encodeChunk('iTXt', Buffer.concat([k, Buffer.of(0, 0, 0, 0, 0), Buffer.from(value, 'utf8')]));
}

/** Inserts text chunks (in the record's order) immediately before IEND. */
export function addPngText(png: Uint8Array, text: Record<string, string>): Buffer {
  const chunks = pngChunks(png);
  const iend = chunks[chunks.length - 1]!.offset;
  const extra = Object.entries(text).map(([k, v]) => textChunk(k, v));
  return Buffer.concat([png.subarray(0, iend), ...extra, png.subarray(iend)]);
}

/**
 * Encodes 8-bit RGB pixels (H x W x 3, row-major) as PNG, with optional text metadata.
 * Lossless: decoding gives exactly `rgb` back.
 */
export async function encodePng(rgb: Uint8Array, width: number, height: number, text?: Record<string, string>): Promise<Buffer> {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new PngError(`encodePng: invalid size ${width}x${height}`);
  }
  if (rgb.length !== width * height * 3) {
    throw new PngError(`encodePng: expected ${width * height * 3} bytes for ${width}x${height}x3 RGB, got ${rgb.length}`);
  }
  const input = Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength);
  const png = await sharp(input, { raw: { width, height, channels: 3 } }).png().toBuffer();
  return text && Object.keys(text).length > 0 ? addPngText(png, text) : png;
}

// not TextDecoder('latin1'): WHATWG maps that label to windows-1252, which differs in 0x80-0x9f
const latin1 = { decode: (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1') };
const utf8 = new TextDecoder('utf-8', { fatal: true });

function nul(data: Uint8Array, from: number, type: string): number {
  const i = data.indexOf(0, from);
  if (i < 0) throw new PngError(`malformed ${type} chunk (missing NUL separator)`);
  return i;
}

/**
 * The text metadata of a PNG (tEXt, zTXt and iTXt chunks), keyword -> value. When a keyword occurs
 * more than once the last chunk wins.
 */
export function parsePngText(bytes: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { type, data } of pngChunks(bytes)) {
    if (type === 'tEXt') {
      const z = nul(data, 0, type);
      out[latin1.decode(data.subarray(0, z))] = latin1.decode(data.subarray(z + 1));
    } else if (type === 'zTXt') {
      const z = nul(data, 0, type);
      if (data[z + 1] !== 0) throw new PngError('zTXt chunk with an unknown compression method');
      out[latin1.decode(data.subarray(0, z))] = latin1.decode(inflateSync(data.subarray(z + 2)));
    } else if (type === 'iTXt') {
      const z = nul(data, 0, type);
      const compressed = data[z + 1] === 1;
      const lang = nul(data, z + 3, type);
      const translated = nul(data, lang + 1, type);
      const body = data.subarray(translated + 1);
      out[latin1.decode(data.subarray(0, z))] = utf8.decode(compressed ? inflateSync(body) : body);
    }
  }
  return out;
}

/** `parsePngText` of a file (path) or of bytes already in memory. */
export async function readPngText(input: string | Uint8Array): Promise<Record<string, string>> {
  return parsePngText(typeof input === 'string' ? await readFile(input) : input);
}

/**
 * Encodes and writes a PNG atomically: a crash never leaves a half-written file under `path`.
 * `exclusive` refuses to replace an existing file (error code 'EEXIST').
 */
export async function writePng(
  path: string,
  rgb: Uint8Array,
  width: number,
  height: number,
  text?: Record<string, string>,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  await writeFileAtomic(path, await encodePng(rgb, width, height, text), options);
}
