// CLIP byte-level BPE tokenizer: reads open_clip's `bpe_simple_vocab_16e6.txt.gz` or the Hugging
// Face `vocab.json` + `merges.txt`, and tokenises the way `open_clip.tokenize` (FrozenOpenCLIPEmbedder)
// and `transformers.CLIPTokenizer` as called by FrozenCLIPEmbedder do.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { fixText, htmlUnescape, pyLower, pyStrip, whitespaceClean } from './text.js';

/** A vocabulary file is missing, unreadable or not a CLIP BPE vocabulary. */
export class TokenizerVocabError extends Error {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
    this.name = 'TokenizerVocabError';
  }
}

/** The number of merges CLIP uses: lines 1..48894 of the merge list (49152 - 256 - 2). */
export const CLIP_NUM_MERGES = 49152 - 256 - 2;
export const OPEN_CLIP_VOCAB_FILE = 'bpe_simple_vocab_16e6.txt.gz';

/** GPT-2's reversible byte -> printable character table, in its own order (id order of the vocab). */
export function bytesToUnicode(): Map<number, string> {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const m = new Map<number, string>();
  bs.forEach((b, i) => m.set(b, String.fromCharCode(cs[i]!)));
  return m;
}

const OPEN_CLIP_SPECIALS = ['<start_of_text>', '<end_of_text>'] as const;
const HF_SPECIALS = ['<|startoftext|>', '<|endoftext|>'] as const;
const CONTRACTIONS_ETC = "'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^\\p{White_Space}\\p{L}\\p{N}]+";
/** open_clip 2.23's pre-token regex (IGNORECASE): its special spellings, contractions, letter runs, single digits, other runs. */
const OPEN_CLIP_PAT = new RegExp(`<start_of_text>|<end_of_text>|${CONTRACTIONS_ETC}`, 'giu');
/** transformers' CLIPTokenizer pre-token regex (IGNORECASE). */
const HF_PAT = new RegExp(`<\\|startoftext\\|>|<\\|endoftext\\|>|${CONTRACTIONS_ETC}`, 'giu');
/** The literal special tokens the HF tokenizer splits the raw text on (case-sensitive). */
const HF_SPLIT = /(<\|startoftext\|>|<\|endoftext\|>)/u;

export interface ClipTokenizerOptions {
  /** Most pre-tokens whose BPE result is kept (oldest dropped first); 0 disables the cache. Default 100 000. */
  cacheSize?: number;
}

/** Every step of `open_clip.tokenize` for one text (the fixture's `open_clip` columns). */
export interface OpenClipSteps {
  basicClean: string;
  whitespaceCleanLower: string;
  pretokens: string[];
  bpeTokens: string[];
  /** Without start/end tokens, untruncated. */
  ids: number[];
}

/** Every step of the HF CLIPTokenizer for one text (the fixture's `hf` columns). */
export interface HfSteps {
  fixTextResult: string;
  /** The raw text split on the literal special tokens (empty pieces dropped). */
  chunks: string[];
  cleanedChunks: string[];
  pretokens: string[];
  bpeTokens: string[];
  /** Without start/end tokens, untruncated. */
  ids: number[];
}

export interface OpenClipTokenizeOptions {
  /** Clean with the ftfy subset first, as open_clip does when ftfy is installed (default true). */
  ftfy?: boolean;
}

/** int64 rows, row-major: `data[i * shape[1] + j]`. */
export interface TokenRows {
  data: BigInt64Array;
  shape: [number, number];
}

export interface HfTokenizeOptions {
  /** Default 77. */
  maxLength?: number;
  /** 'max_length' (default) pads to maxLength, 'longest' to the longest row, false not at all (rows must then be equal). */
  padding?: 'max_length' | 'longest' | false;
  /** Keep the first maxLength - 2 ids (default true). */
  truncation?: boolean;
  /** Pad id; default the end token (49407), as openai/clip-vit-large-patch14 declares. */
  padTokenId?: number;
  /** Clean with the ftfy subset, as transformers does when ftfy is installed (default true; false = fix_text as identity). */
  ftfy?: boolean;
}

export interface HfEncoding {
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
  shape: [number, number];
}

interface CacheEntry {
  tokens: string[];
  ids: number[];
}

export class ClipTokenizer {
  /** The layout the vocabulary was read from. */
  readonly layout: 'open_clip' | 'hf';
  /** The file(s) read. */
  readonly files: string[];
  readonly sotTokenId: number;
  readonly eotTokenId: number;
  private readonly encoder: Map<string, number>;
  private readonly decoder: Map<number, string>;
  private readonly ranks: Map<string, number>;
  private readonly byteEncoder: string[];
  private readonly byteDecoder: Map<string, number>;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly cacheLimit: number;
  private cacheHitCount = 0;
  private cacheMissCount = 0;

  private constructor(
    layout: 'open_clip' | 'hf',
    files: string[],
    encoder: Map<string, number>,
    merges: [string, string][],
    sotTokenId: number,
    eotTokenId: number,
    options: ClipTokenizerOptions,
  ) {
    this.layout = layout;
    this.files = files;
    this.encoder = encoder;
    this.decoder = new Map([...encoder].map(([k, v]) => [v, k]));
    this.ranks = new Map(merges.map(([a, b], i) => [a + ' ' + b, i]));
    const b2u = bytesToUnicode();
    this.byteEncoder = Array.from({ length: 256 }, (_, b) => b2u.get(b)!);
    this.byteDecoder = new Map([...b2u].map(([b, u]) => [u, b]));
    this.sotTokenId = sotTokenId;
    this.eotTokenId = eotTokenId;
    this.cacheLimit = Math.max(0, Math.floor(options.cacheSize ?? 100_000));
  }

  /**
   * Reads a vocabulary: the open_clip gz file, a `vocab.json` (with `merges.txt` beside it), or a
   * folder holding either (the gz preferred; also looks in `clip/` and `tokenizer/` below it).
   */
  static fromFiles(pathOrDir: string, options: ClipTokenizerOptions = {}): ClipTokenizer {
    if (!existsSync(pathOrDir)) {
      throw new TokenizerVocabError(
        pathOrDir,
        `not found: give the folder or file of the CLIP BPE vocabulary (${OPEN_CLIP_VOCAB_FILE}, or vocab.json + merges.txt)`,
      );
    }
    if (statSync(pathOrDir).isDirectory()) {
      for (const dir of [pathOrDir, join(pathOrDir, 'clip'), join(pathOrDir, 'tokenizer')]) {
        const gz = join(dir, OPEN_CLIP_VOCAB_FILE);
        if (existsSync(gz)) return ClipTokenizer.fromOpenClipGz(gz, options);
        const vj = join(dir, 'vocab.json');
        if (existsSync(vj)) return ClipTokenizer.fromHfFiles(vj, join(dir, 'merges.txt'), options);
      }
      throw new TokenizerVocabError(
        pathOrDir,
        `holds no CLIP BPE vocabulary: expected ${OPEN_CLIP_VOCAB_FILE} or vocab.json + merges.txt (also looked in clip/ and tokenizer/)`,
      );
    }
    const name = basename(pathOrDir);
    if (name.endsWith('.gz')) return ClipTokenizer.fromOpenClipGz(pathOrDir, options);
    if (name.endsWith('.json')) return ClipTokenizer.fromHfFiles(pathOrDir, join(dirname(pathOrDir), 'merges.txt'), options);
    if (name === 'merges.txt') return ClipTokenizer.fromHfFiles(join(dirname(pathOrDir), 'vocab.json'), pathOrDir, options);
    throw new TokenizerVocabError(pathOrDir, `is not a CLIP BPE vocabulary file: expected a .txt.gz merge list or vocab.json`);
  }

  /** open_clip's layout: merges from the gz, the vocab built from them as open_clip builds it. */
  static fromOpenClipGz(file: string, options: ClipTokenizerOptions = {}): ClipTokenizer {
    let text: string;
    try {
      text = gunzipSync(readFileSync(file)).toString('utf8');
    } catch (e) {
      throw new TokenizerVocabError(file, `cannot read the gzip merge list (${(e as Error).message}); the file is missing or corrupt`);
    }
    const lines = text.split('\n');
    const merges = parseMerges(file, lines.slice(1, CLIP_NUM_MERGES + 1));
    const vocab: string[] = [...bytesToUnicode().values()];
    for (const v of vocab.slice()) vocab.push(v + '</w>');
    for (const [a, b] of merges) vocab.push(a + b);
    vocab.push(...OPEN_CLIP_SPECIALS);
    const encoder = new Map<string, number>();
    vocab.forEach((v, i) => encoder.set(v, i));
    return new ClipTokenizer('open_clip', [file], encoder, merges, encoder.get(OPEN_CLIP_SPECIALS[0])!, encoder.get(OPEN_CLIP_SPECIALS[1])!, options);
  }

  /** Hugging Face layout (`tokenizer/` of SD / SDXL model folders). */
  static fromHfFiles(vocabJson: string, mergesTxt: string, options: ClipTokenizerOptions = {}): ClipTokenizer {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(vocabJson, 'utf8'));
    } catch (e) {
      throw new TokenizerVocabError(vocabJson, `cannot read the vocabulary (${(e as Error).message}); the file is missing or not JSON`);
    }
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
      throw new TokenizerVocabError(vocabJson, 'is not a token -> id object');
    }
    const encoder = new Map<string, number>();
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
      if (typeof v !== 'number' || !Number.isInteger(v)) throw new TokenizerVocabError(vocabJson, `entry ${JSON.stringify(k)} has a non-integer id`);
      encoder.set(k, v);
    }
    for (const s of HF_SPECIALS) {
      if (!encoder.has(s)) throw new TokenizerVocabError(vocabJson, `has no ${s} entry; not a CLIP vocabulary`);
    }
    let text: string;
    try {
      text = readFileSync(mergesTxt, 'utf8');
    } catch (e) {
      throw new TokenizerVocabError(mergesTxt, `cannot read the merge list (${(e as Error).message}); it must lie beside vocab.json`);
    }
    const merges = parseMerges(mergesTxt, pyStrip(text).split('\n').slice(1, CLIP_NUM_MERGES + 1));
    for (const [a, b] of merges) {
      if (!encoder.has(a + b)) throw new TokenizerVocabError(vocabJson, `has no entry for the merge ${JSON.stringify(a + ' ' + b)} of ${mergesTxt}; the files do not belong together`);
    }
    return new ClipTokenizer('hf', [vocabJson, mergesTxt], encoder, merges, encoder.get(HF_SPECIALS[0])!, encoder.get(HF_SPECIALS[1])!, options);
  }

  /** Vocabulary size (49408 for CLIP). */
  get vocabSize(): number {
    return this.encoder.size;
  }

  /** The id of a vocabulary entry (byte-level form, e.g. 'cat</w>'), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.encoder.get(token);
  }

  /** The vocabulary entry of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return this.decoder.get(id);
  }

  // --- cache -------------------------------------------------------------------------------

  /** Entries held, hits and misses since construction (or the last clearCache). */
  get cacheStats(): { size: number; limit: number; hits: number; misses: number } {
    return { size: this.cache.size, limit: this.cacheLimit, hits: this.cacheHitCount, misses: this.cacheMissCount };
  }

  clearCache(): void {
    this.cache.clear();
    this.cacheHitCount = 0;
    this.cacheMissCount = 0;
  }

  // --- BPE ---------------------------------------------------------------------------------

  /** BPE of one pre-token (raw text, before the byte mapping): vocabulary tokens and their ids. */
  private bpeEntry(pretoken: string): CacheEntry {
    const hit = this.cache.get(pretoken);
    if (hit) {
      this.cacheHitCount++;
      return hit;
    }
    this.cacheMissCount++;
    const tokens = this.bpe(pretoken);
    const ids = tokens.map((t) => {
      const id = this.encoder.get(t);
      if (id === undefined) throw new Error(`CLIP BPE: token ${JSON.stringify(t)} is not in the vocabulary (${this.files.join(', ')})`);
      return id;
    });
    const entry = { tokens, ids };
    if (this.cacheLimit > 0) {
      if (this.cache.size >= this.cacheLimit) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(pretoken, entry);
    }
    return entry;
  }

  /** Byte-level BPE: utf-8 bytes -> byte characters, '</w>' on the last, lowest-ranked merges first. */
  private bpe(pretoken: string): string[] {
    const bytes = Buffer.from(pretoken, 'utf8');
    const word: string[] = new Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) word[i] = this.byteEncoder[bytes[i]!]!;
    if (word.length === 0) return [];
    word[word.length - 1] += '</w>';
    const ranks = this.ranks;
    let w = word;
    while (w.length > 1) {
      let best = Infinity;
      let first = '';
      let second = '';
      for (let i = 0; i < w.length - 1; i++) {
        const r = ranks.get(w[i] + ' ' + w[i + 1]);
        if (r !== undefined && r < best) {
          best = r;
          first = w[i]!;
          second = w[i + 1]!;
        }
      }
      if (best === Infinity) break;
      const next: string[] = [];
      for (let i = 0; i < w.length; ) {
        if (i < w.length - 1 && w[i] === first && w[i + 1] === second) {
          next.push(first + second);
          i += 2;
        } else {
          next.push(w[i]!);
          i++;
        }
      }
      w = next;
    }
    return w;
  }

  private encodePretokens(pretokens: string[], specials: Record<string, number>, tokens: string[] | null): number[] {
    const ids: number[] = [];
    for (const p of pretokens) {
      const special = specials[p];
      if (special !== undefined) {
        ids.push(special);
        tokens?.push(p);
        continue;
      }
      const e = this.bpeEntry(p);
      for (const id of e.ids) ids.push(id);
      if (tokens) for (const t of e.tokens) tokens.push(t);
    }
    return ids;
  }

  // --- open_clip ---------------------------------------------------------------------------

  /** open_clip's `basic_clean` + `whitespace_clean` + `lower()`. */
  openClipClean(text: string, options: OpenClipTokenizeOptions = {}): { basicClean: string; whitespaceCleanLower: string } {
    const fixed = options.ftfy === false ? text : fixText(text);
    const basicClean = pyStrip(htmlUnescape(htmlUnescape(fixed)));
    return { basicClean, whitespaceCleanLower: pyLower(whitespaceClean(basicClean)) };
  }

  /** `SimpleTokenizer.encode`: ids without start/end tokens, untruncated. */
  encode(text: string, options: OpenClipTokenizeOptions = {}): number[] {
    const clean = this.openClipClean(text, options).whitespaceCleanLower;
    return this.encodePretokens(clean.match(OPEN_CLIP_PAT) ?? [], this.openClipSpecials(), null);
  }

  /** Every step of open_clip's tokenisation of one text. */
  openClipSteps(text: string, options: OpenClipTokenizeOptions = {}): OpenClipSteps {
    const { basicClean, whitespaceCleanLower } = this.openClipClean(text, options);
    const pretokens = whitespaceCleanLower.match(OPEN_CLIP_PAT) ?? [];
    const bpeTokens: string[] = [];
    const ids = this.encodePretokens(pretokens, this.openClipSpecials(), bpeTokens);
    return { basicClean, whitespaceCleanLower, pretokens: [...pretokens], bpeTokens, ids };
  }

  /**
   * `open_clip.tokenize(texts, context_length)`: rows `[sot] + ids + [eot]`, cut to the context
   * length with the last entry forced to the end token, padded with 0.
   */
  openClipTokenize(texts: string | string[], contextLength = 77, options: OpenClipTokenizeOptions = {}): TokenRows {
    const list = typeof texts === 'string' ? [texts] : texts;
    if (!Number.isInteger(contextLength) || contextLength < 2) throw new RangeError(`openClipTokenize: contextLength must be an integer >= 2, got ${contextLength}`);
    const data = new BigInt64Array(list.length * contextLength);
    list.forEach((t, r) => {
      const ids = this.encode(t, options);
      const row = r * contextLength;
      data[row] = BigInt(this.sotTokenId);
      const n = Math.min(ids.length, contextLength - 2);
      for (let j = 0; j < n; j++) data[row + 1 + j] = BigInt(ids[j]!);
      data[row + 1 + n] = BigInt(this.eotTokenId);
    });
    return { data, shape: [list.length, contextLength] };
  }

  private openClipSpecials(): Record<string, number> {
    return { [OPEN_CLIP_SPECIALS[0]]: this.sotTokenId, [OPEN_CLIP_SPECIALS[1]]: this.eotTokenId };
  }

  private hfSpecials(): Record<string, number> {
    return { [HF_SPECIALS[0]]: this.sotTokenId, [HF_SPECIALS[1]]: this.eotTokenId };
  }

  // --- Hugging Face ------------------------------------------------------------------------

  /** Every step of `CLIPTokenizer.tokenize` (with ftfy installed) for one text. */
  hfSteps(text: string, options: { ftfy?: boolean } = {}): HfSteps {
    const fix = options.ftfy === false ? (t: string) => t : fixText;
    const chunks = text.split(HF_SPLIT).filter((c) => c.length > 0);
    const cleanedChunks: string[] = [];
    const pretokens: string[] = [];
    for (const c of chunks) {
      if (c === HF_SPECIALS[0] || c === HF_SPECIALS[1]) {
        cleanedChunks.push(c);
        pretokens.push(c);
        continue;
      }
      const clean = pyLower(whitespaceClean(fix(c)));
      cleanedChunks.push(clean);
      for (const p of clean.match(HF_PAT) ?? []) pretokens.push(p);
    }
    const bpeTokens: string[] = [];
    const ids = this.encodePretokens(pretokens, this.hfSpecials(), bpeTokens);
    return { fixTextResult: fix(text), chunks, cleanedChunks, pretokens, bpeTokens, ids };
  }

  /** HF ids of one text, without start/end tokens, untruncated. */
  hfEncode(text: string, options: { ftfy?: boolean } = {}): number[] {
    const fix = options.ftfy === false ? (t: string) => t : fixText;
    const ids: number[] = [];
    for (const c of text.split(HF_SPLIT)) {
      if (c.length === 0) continue;
      if (c === HF_SPECIALS[0] || c === HF_SPECIALS[1]) {
        ids.push(c === HF_SPECIALS[0] ? this.sotTokenId : this.eotTokenId);
        continue;
      }
      const clean = pyLower(whitespaceClean(fix(c)));
      for (const id of this.encodePretokens(clean.match(HF_PAT) ?? [], this.hfSpecials(), null)) ids.push(id);
    }
    return ids;
  }

  /**
   * `tokenizer(texts, truncation=True, max_length=77, padding="max_length")` as FrozenCLIPEmbedder
   * calls it: rows `[sot] + ids[:maxLength-2] + [eot]`, right-padded with the pad id (49407 for
   * CLIP-L), and the attention mask.
   */
  hfTokenize(texts: string | string[], options: HfTokenizeOptions = {}): HfEncoding {
    const list = typeof texts === 'string' ? [texts] : texts;
    const maxLength = options.maxLength ?? 77;
    const padding = options.padding ?? 'max_length';
    const truncation = options.truncation ?? true;
    const pad = options.padTokenId ?? this.eotTokenId;
    if (truncation && (!Number.isInteger(maxLength) || maxLength < 2)) throw new RangeError(`hfTokenize: maxLength must be an integer >= 2, got ${maxLength}`);
    const rows = list.map((t) => {
      let ids = this.hfEncode(t, { ftfy: options.ftfy ?? true });
      if (truncation && ids.length > maxLength - 2) ids = ids.slice(0, maxLength - 2);
      return [this.sotTokenId, ...ids, this.eotTokenId];
    });
    const longest = rows.reduce((m, r) => Math.max(m, r.length), 0);
    let width: number;
    if (padding === 'max_length') width = Math.max(maxLength, longest);
    else if (padding === 'longest') width = longest;
    else {
      width = longest;
      if (rows.some((r) => r.length !== width)) throw new Error('hfTokenize: padding=false needs rows of equal length; use padding "longest" or "max_length"');
    }
    const inputIds = new BigInt64Array(list.length * width);
    const attentionMask = new BigInt64Array(list.length * width);
    rows.forEach((r, i) => {
      for (let j = 0; j < width; j++) {
        const real = j < r.length;
        inputIds[i * width + j] = BigInt(real ? r[j]! : pad);
        attentionMask[i * width + j] = real ? 1n : 0n;
      }
    });
    return { inputIds, attentionMask, shape: [list.length, width] };
  }

  // --- decoding ----------------------------------------------------------------------------

  /** Text of ids (start/end/pad-like specials skipped with skipSpecial, default true); '</w>' becomes a space. */
  decode(ids: Iterable<number | bigint>, options: { skipSpecial?: boolean } = {}): string {
    const skip = options.skipSpecial ?? true;
    const bytes: number[] = [];
    let text = '';
    const flush = (): void => {
      text += Buffer.from(bytes).toString('utf8');
      bytes.length = 0;
    };
    for (const raw of ids) {
      const id = Number(raw);
      if (id === this.sotTokenId || id === this.eotTokenId) {
        if (!skip) {
          flush();
          text += this.decoder.get(id) ?? '';
        }
        continue;
      }
      const tok = this.decoder.get(id);
      if (tok === undefined) throw new RangeError(`decode: id ${id} is not in the vocabulary`);
      const end = tok.endsWith('</w>');
      for (const ch of end ? tok.slice(0, -4) : tok) {
        const b = this.byteDecoder.get(ch);
        if (b !== undefined) bytes.push(b);
      }
      if (end) bytes.push(0x20);
    }
    flush();
    return text.trim();
  }
}

function parseMerges(file: string, lines: string[]): [string, string][] {
  if (lines.length < CLIP_NUM_MERGES) {
    throw new TokenizerVocabError(file, `has ${lines.length} merge lines after the header, expected ${CLIP_NUM_MERGES}; the file is truncated or not a CLIP merge list`);
  }
  return lines.map((line, i) => {
    const parts = line.split(/\s+/u).filter((p) => p.length > 0);
    if (parts.length !== 2) {
      throw new TokenizerVocabError(file, `line ${i + 2} is not a merge of two symbols: ${JSON.stringify(line.slice(0, 60))}`);
    }
    return [parts[0]!, parts[1]!];
  });
}
