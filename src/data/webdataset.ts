// WebDataset-style tar shards (what the reference's sdata pipelines read): members grouped into
// samples by key (`0001.jpg`, `0001.txt`, `0001.json` -> {__key__: '0001', jpg, txt, json}),
// decoded by extension, shard and sample shuffling with seeded generators, mappers, and batching.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { Generator } from '../tensor/random.js';
import { DataFileError } from './errors.js';
import { collate, randperm } from './loader.js';
import { readTarFile, type TarMember } from './tar.js';
import type { Batch, Sample } from './types.js';

// ---------------------------------------------------------------------------------------------
// shard lists
// ---------------------------------------------------------------------------------------------

/**
 * Expands brace patterns as webdataset (braceexpand) does: numeric ranges keep the zero padding
 * of their bounds (`shard-{000000..000009}.tar`), comma lists (`{a,b}`), several groups, nesting.
 */
export function braceExpand(pattern: string): string[] {
  const open = pattern.indexOf('{');
  if (open < 0) return [pattern];
  let depth = 0;
  let close = -1;
  const commas: number[] = [];
  for (let i = open; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) {
        close = i;
        break;
      }
    } else if (c === ',' && depth === 1) commas.push(i);
  }
  if (close < 0) return [pattern];
  const head = pattern.slice(0, open);
  const inner = pattern.slice(open + 1, close);
  const tails = braceExpand(pattern.slice(close + 1));
  let alts: string[];
  const range = /^(-?\d+)\.\.(-?\d+)(?:\.\.(\d+))?$/.exec(inner);
  if (range) {
    const [, a, b, stepStr] = range;
    const from = parseInt(a!, 10);
    const to = parseInt(b!, 10);
    const step = stepStr ? Math.max(1, parseInt(stepStr, 10)) : 1;
    const width = /^-?0\d/.test(a!) || /^-?0\d/.test(b!) ? Math.max(a!.length, b!.length) : 0;
    alts = [];
    for (let v = from; from <= to ? v <= to : v >= to; v += from <= to ? step : -step) alts.push(String(v).padStart(width, '0'));
  } else if (commas.length > 0) {
    alts = [];
    let s = open + 1;
    for (const c of [...commas, close]) {
      alts.push(...braceExpand(pattern.slice(s, c)));
      s = c + 1;
    }
  } else {
    alts = braceExpand(inner).map((x) => `{${x}}`);
  }
  const out: string[] = [];
  for (const alt of alts) for (const tail of tails) out.push(head + alt + tail);
  return out;
}

/** The shard files of `urls`: brace patterns expanded, folders replaced by their *.tar files (sorted). */
export function expandShards(urls: string | readonly string[]): string[] {
  const list = typeof urls === 'string' ? [urls] : urls;
  const out: string[] = [];
  for (const u of list) {
    for (const p of braceExpand(u)) {
      if (existsSync(p) && statSync(p).isDirectory()) {
        const tars = readdirSync(p).filter((f) => f.endsWith('.tar')).sort();
        if (tars.length === 0) throw new DataFileError(p, 'folder holds no .tar shards');
        out.push(...tars.map((f) => join(p, f)));
      } else {
        if (!existsSync(p)) throw new DataFileError(p, `tar shard not found${p !== u ? ` (from pattern ${u})` : ''}`);
        out.push(p);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// grouping and decoding
// ---------------------------------------------------------------------------------------------

/** webdataset's base_plus_ext: key = path up to the first dot of the file name, ext = the rest. */
export function splitKey(name: string): { key: string; ext: string } | null {
  const m = /^((?:.*\/|)[^./]+)\.([^/]*)$/.exec(name);
  return m ? { key: m[1]!, ext: m[2]! } : null;
}

/** Raw samples: consecutive members with the same key, {__key__, __url__, ext: bytes}. */
export async function* groupByKeys(members: AsyncIterable<TarMember>, url: string): AsyncGenerator<Record<string, unknown>, void, undefined> {
  let current: Record<string, unknown> | null = null;
  for await (const m of members) {
    const parts = splitKey(m.name);
    if (parts === null) continue; // no extension: not part of a sample (webdataset skips these)
    const ext = parts.ext.toLowerCase();
    if (current === null || current.__key__ !== parts.key) {
      if (current !== null) yield current;
      current = { __key__: parts.key, __url__: url };
    }
    if (ext in current) throw new DataFileError(url, `duplicate file name in sample ${parts.key}: ${m.name}`);
    current[ext] = m.data;
  }
  if (current !== null) yield current;
}

/** A decoded image: interleaved H x W x 3 uint8 RGB (what webdataset's `pil` decoder yields, as pixels). */
export interface DecodedImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3;
}

export function isDecodedImage(v: unknown): v is DecodedImage {
  return typeof v === 'object' && v !== null && (v as DecodedImage).channels === 3 && (v as DecodedImage).data instanceof Uint8Array && typeof (v as DecodedImage).width === 'number';
}

/** Decodes image bytes (JPEG, PNG, WebP, ...) to 8-bit sRGB RGB with sharp; `what` names the source in errors. */
export async function decodeImageBuffer(bytes: Uint8Array, what: string): Promise<DecodedImage> {
  try {
    const { data, info } = await sharp(bytes, { failOn: 'error' }).removeAlpha().toColorspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${info.channels}`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: 3 };
  } catch (e) {
    throw new DataFileError(what, `cannot decode image: ${(e as Error).message}`, { cause: e });
  }
}

const IMAGE_EXTS = new Set(['jpg', 'jpeg', 'png', 'webp', 'ppm', 'pgm', 'pbm', 'pnm', 'gif', 'tif', 'tiff', 'bmp']);
const TEXT_EXTS = new Set(['txt', 'text', 'transcript']);
const INT_EXTS = new Set(['cls', 'cls2', 'class', 'count', 'index', 'inx', 'id']);
const JSON_EXTS = new Set(['json', 'jsn']);

/** The extension's last component decides (`seg.png` is an image), as webdataset's decoders do. */
function lastExt(ext: string): string {
  const i = ext.lastIndexOf('.');
  return i < 0 ? ext : ext.slice(i + 1);
}

/**
 * webdataset's default decoding with the `pil` image decoder: images to DecodedImage, text to
 * string, class/index files to integers, JSON parsed; other values stay bytes.
 */
export async function decodeSample(raw: Record<string, unknown>, options: { images?: boolean } = {}): Promise<Sample> {
  const out: Sample = {};
  const where = `${String(raw.__url__)}:${String(raw.__key__)}`;
  for (const [k, v] of Object.entries(raw)) {
    if (k.startsWith('__') || !Buffer.isBuffer(v)) {
      out[k] = v;
      continue;
    }
    const e = lastExt(k);
    if (IMAGE_EXTS.has(e)) out[k] = options.images === false ? v : await decodeImageBuffer(v, `${where}.${k}`);
    else if (TEXT_EXTS.has(e)) out[k] = v.toString('utf8');
    else if (INT_EXTS.has(e)) {
      const n = parseInt(v.toString('utf8').trim(), 10);
      if (!Number.isFinite(n)) throw new DataFileError(`${where}.${k}`, `not an integer: ${JSON.stringify(v.toString('utf8').slice(0, 40))}`);
      out[k] = n;
    } else if (JSON_EXTS.has(e)) {
      try {
        out[k] = JSON.parse(v.toString('utf8'));
      } catch (err) {
        throw new DataFileError(`${where}.${k}`, `invalid JSON: ${(err as Error).message}`, { cause: err });
      }
    } else out[k] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// shuffling
// ---------------------------------------------------------------------------------------------

/**
 * A shuffle buffer (webdataset's `shuffle(bufsize)` idea): holds up to `size` items; once full,
 * each new item replaces a uniformly chosen held item, which is emitted; at the end the rest are
 * emitted in random order. Deterministic for a given generator state.
 */
export async function* shuffleBuffer<T>(source: AsyncIterable<T>, size: number, generator: Generator): AsyncGenerator<T, void, undefined> {
  if (size <= 1) {
    yield* source;
    return;
  }
  const buf: T[] = [];
  for await (const item of source) {
    if (buf.length < size) {
      buf.push(item);
      continue;
    }
    const j = generator.random() % size;
    const out = buf[j]!;
    buf[j] = item;
    yield out;
  }
  const order = randperm(buf.length, generator);
  for (let i = 0; i < order.length; i++) yield buf[order[i]!]!;
}

// ---------------------------------------------------------------------------------------------
// the dataset
// ---------------------------------------------------------------------------------------------

/** A per-sample transform (sdata's mappers); may be asynchronous; returning null drops the sample. */
export type Mapper = (sample: Sample) => Sample | null | Promise<Sample | null>;

export interface WebDatasetOptions {
  /** Shard paths, brace patterns or folders of .tar files. */
  urls: string | readonly string[];
  /** Shuffle the shard order each pass (sdata's `shardshuffle`; > 0 enables). Default 0. */
  shardShuffle?: number;
  /** Sample shuffle buffer size (sdata's `sample_shuffle`). Default 0: no shuffling. */
  sampleShuffle?: number;
  /** Seed of the shuffling generator (default 0). */
  seed?: number | bigint;
  generator?: Generator;
  /** Decode images with sharp (default true). */
  decodeImages?: boolean;
  /** Applied in order after decoding. */
  mappers?: readonly Mapper[];
  /** Go through the shards this many times (default 1; Infinity: forever). */
  passes?: number;
}

/** An iterable dataset over tar shards; each iteration streams the shards again. */
export class WebDataset implements AsyncIterable<Sample> {
  readonly shards: string[];
  readonly generator: Generator;
  private readonly options: WebDatasetOptions;

  constructor(options: WebDatasetOptions) {
    this.options = options;
    this.shards = expandShards(options.urls);
    if (this.shards.length === 0) throw new DataFileError(String(options.urls), 'no tar shards');
    this.generator = options.generator ?? new Generator(options.seed ?? 0);
  }

  private async *rawSamples(): AsyncGenerator<Record<string, unknown>, void, undefined> {
    const passes = this.options.passes ?? 1;
    for (let pass = 0; pass < passes; pass++) {
      let shards = this.shards;
      if ((this.options.shardShuffle ?? 0) > 0) {
        const order = randperm(shards.length, this.generator);
        shards = Array.from(order, (i) => this.shards[i]!);
      }
      for (const url of shards) yield* groupByKeys(readTarFile(url), url);
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Sample, void, undefined> {
    const size = this.options.sampleShuffle ?? 0;
    const raw = size > 1 ? shuffleBuffer(this.rawSamples(), size, this.generator) : this.rawSamples();
    for await (const r of raw) {
      let s: Sample | null = await decodeSample(r, { images: this.options.decodeImages !== false });
      for (const m of this.options.mappers ?? []) {
        s = await m(s);
        if (s === null) break;
      }
      if (s !== null) yield s;
    }
  }
}

export interface BatchIterableOptions {
  batchSize: number;
  /** Drop the last incomplete batch (default false). */
  dropLast?: boolean;
  collate?: (samples: Sample[]) => Batch;
  /** Batches prepared ahead of the consumer (default 1). */
  prefetch?: number;
}

/** Batches an iterable dataset (a WebDataset), preparing the next batches while the current one is used. */
export async function* batchIterable(source: AsyncIterable<Sample>, options: BatchIterableOptions): AsyncGenerator<Batch, void, undefined> {
  const { batchSize } = options;
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new RangeError(`batchIterable: batchSize must be a positive integer, got ${batchSize}`);
  const coll = options.collate ?? collate;
  const ahead = Math.max(0, options.prefetch ?? 1);
  const it = source[Symbol.asyncIterator]();
  let exhausted = false;
  const nextBatch = async (): Promise<Batch | null> => {
    const samples: Sample[] = [];
    while (samples.length < batchSize && !exhausted) {
      const r = await it.next();
      if (r.done) exhausted = true;
      else samples.push(r.value);
    }
    if (samples.length === 0 || (samples.length < batchSize && options.dropLast)) return null;
    return coll(samples);
  };
  // Batches are produced one after another (the source is sequential); a chain of promises keeps
  // up to `ahead` of them in flight.
  const queue: Promise<Batch | null>[] = [];
  let tail: Promise<Batch | null> = Promise.resolve(null);
  const push = (): void => {
    tail = tail.then(() => nextBatch());
    tail.catch(() => {});
    queue.push(tail);
  };
  try {
    for (let i = 0; i <= ahead; i++) push();
    for (;;) {
      const b = await queue.shift()!;
      if (b === null) return;
      push();
      yield b;
    }
  } finally {
    await it.return?.();
  }
}
