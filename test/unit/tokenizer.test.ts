// CLIP tokenizer behaviour the fixtures do not pin: vocabulary errors that name the file, layout
// detection, both layouts giving identical ids, the BPE cache, Python's html.unescape / \s
// semantics (expected values from CPython 3.11's html.unescape), rows and decoding.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { ClipTokenizer, TokenizerVocabError, bytesToUnicode, fixText, htmlUnescape, whitespaceClean } from '../../src/tokenizers/index.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const vocabDir = process.env.SGM_VOCAB_DIR ? resolve(process.env.SGM_VOCAB_DIR) : resolve(repoRoot, '..', 'shared', 'vocab');
const haveVocab = existsSync(join(vocabDir, 'bpe_simple_vocab_16e6.txt.gz')) && existsSync(join(vocabDir, 'clip', 'vocab.json'));
const needVocab = haveVocab ? {} : { skip: `CLIP vocabulary not found at ${vocabDir} (set SGM_VOCAB_DIR)` };

let both: { gz: ClipTokenizer; hf: ClipTokenizer } | null = null;
function tokenizers(): { gz: ClipTokenizer; hf: ClipTokenizer } {
  both ??= { gz: ClipTokenizer.fromFiles(vocabDir), hf: ClipTokenizer.fromFiles(join(vocabDir, 'clip')) };
  return both;
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'sgm-tok-'));
}

function throwsNaming(fn: () => unknown, file: string, detail?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TokenizerVocabError, `expected TokenizerVocabError, got ${String(e)}`);
    assert.equal(e.file, file);
    assert.ok(e.message.includes(file), `message names ${file}: ${e.message}`);
    if (detail) assert.match(e.message, detail);
    return true;
  });
}

test('bytesToUnicode: 256 distinct printable characters, printable bytes map to themselves, order starts at "!"', () => {
  const m = bytesToUnicode();
  assert.equal(m.size, 256);
  assert.equal(new Set(m.values()).size, 256);
  assert.equal([...m.values()][0], '!');
  assert.equal(m.get(0x41), 'A');
  assert.equal(m.get(0x20), '\u0120');
  assert.equal(m.get(0x00), '\u0100');
});

test('vocabulary errors name the file', () => {
  const dir = tmp();
  try {
    const missing = join(dir, 'nope');
    throwsNaming(() => ClipTokenizer.fromFiles(missing), missing, /not found/);
    throwsNaming(() => ClipTokenizer.fromFiles(dir), dir, /holds no CLIP BPE vocabulary/);

    const corrupt = join(dir, 'bpe_simple_vocab_16e6.txt.gz');
    writeFileSync(corrupt, Buffer.from('this is not gzip data'));
    throwsNaming(() => ClipTokenizer.fromFiles(dir), corrupt, /corrupt/);

    writeFileSync(corrupt, gzipSync(Buffer.from('"bpe_simple_vocab_16e6.txt#version: 0.2\ni n\nt h\n')));
    throwsNaming(() => ClipTokenizer.fromFiles(corrupt), corrupt, /has 3 merge lines after the header, expected 48894/);

    const lines = ['#header', 'a b c', ...Array.from({ length: 48893 }, () => 'i n')];
    writeFileSync(corrupt, gzipSync(Buffer.from(lines.join('\n'))));
    throwsNaming(() => ClipTokenizer.fromFiles(corrupt), corrupt, /line 2 is not a merge of two symbols/);

    const hfDir = join(dir, 'tok');
    mkdirSync(hfDir);
    const vj = join(hfDir, 'vocab.json');
    const mt = join(hfDir, 'merges.txt');
    writeFileSync(vj, '{"a": 1,');
    throwsNaming(() => ClipTokenizer.fromFiles(vj), vj, /not JSON/);
    writeFileSync(vj, '["a"]');
    throwsNaming(() => ClipTokenizer.fromFiles(hfDir), vj, /token -> id object/);
    writeFileSync(vj, JSON.stringify({ a: 0, '<|endoftext|>': 1 }));
    throwsNaming(() => ClipTokenizer.fromFiles(vj), vj, /<\|startoftext\|>/);
    writeFileSync(vj, JSON.stringify({ a: 0, '<|startoftext|>': 1, '<|endoftext|>': 2 }));
    throwsNaming(() => ClipTokenizer.fromFiles(vj), mt, /merge list/);
    const other = join(dir, 'weights.bin');
    writeFileSync(other, '');
    throwsNaming(() => ClipTokenizer.fromFiles(other), other, /not a CLIP BPE vocabulary file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a vocab.json that does not belong to merges.txt is refused, naming both', needVocab, () => {
  const dir = tmp();
  try {
    const vocab = JSON.parse(readFileSync(join(vocabDir, 'clip', 'vocab.json'), 'utf8')) as Record<string, number>;
    delete vocab['in</w>'];
    writeFileSync(join(dir, 'vocab.json'), JSON.stringify(vocab));
    writeFileSync(join(dir, 'merges.txt'), readFileSync(join(vocabDir, 'clip', 'merges.txt')));
    assert.throws(() => ClipTokenizer.fromFiles(dir), (e: unknown) => {
      assert.ok(e instanceof TokenizerVocabError);
      assert.equal(e.file, join(dir, 'vocab.json'));
      assert.match(e.message, /merges\.txt; the files do not belong together/);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('layout detection: folder (gz preferred), clip/ folder, vocab.json, merges.txt, gz file', needVocab, () => {
  assert.equal(ClipTokenizer.fromFiles(vocabDir).layout, 'open_clip');
  assert.equal(ClipTokenizer.fromFiles(join(vocabDir, 'bpe_simple_vocab_16e6.txt.gz')).layout, 'open_clip');
  const hf = ClipTokenizer.fromFiles(join(vocabDir, 'clip'));
  assert.equal(hf.layout, 'hf');
  assert.deepEqual(hf.files, [join(vocabDir, 'clip', 'vocab.json'), join(vocabDir, 'clip', 'merges.txt')]);
  assert.equal(ClipTokenizer.fromFiles(join(vocabDir, 'clip', 'vocab.json')).layout, 'hf');
  assert.equal(ClipTokenizer.fromFiles(join(vocabDir, 'clip', 'merges.txt')).layout, 'hf');
});

test('both layouts: the same 49408-entry vocabulary (up to the special spellings) and identical ids', needVocab, () => {
  const { gz, hf } = tokenizers();
  assert.equal(gz.vocabSize, 49408);
  assert.equal(hf.vocabSize, 49408);
  assert.equal(gz.sotTokenId, 49406);
  assert.equal(gz.eotTokenId, 49407);
  assert.equal(hf.sotTokenId, 49406);
  assert.equal(hf.eotTokenId, 49407);
  for (let id = 0; id < 49406; id++) assert.equal(gz.idToToken(id), hf.idToToken(id), `id ${id}`);
  assert.equal(gz.idToToken(49406), '<start_of_text>');
  assert.equal(hf.idToToken(49406), '<|startoftext|>');
  assert.equal(gz.tokenToId('!</w>'), 256);
  assert.equal(gz.tokenToId('!'), 0);
  // Random strings over ASCII, Latin-1, Greek, CJK, emoji and combining marks.
  let s = 7;
  const rnd = (k: number): number => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % k;
  };
  const ranges: [number, number][] = [[0x20, 0x7e], [0xa0, 0x17f], [0x370, 0x3ff], [0x4e00, 0x4fff], [0x1f300, 0x1f64f], [0x300, 0x36f], [0x900, 0x97f]];
  for (let i = 0; i < 300; i++) {
    let text = '';
    const len = 1 + rnd(40);
    for (let j = 0; j < len; j++) {
      const [lo, hi] = ranges[rnd(ranges.length)]!;
      text += String.fromCodePoint(lo + rnd(hi - lo + 1));
    }
    assert.deepEqual(hf.encode(text), gz.encode(text), JSON.stringify(text));
    assert.deepEqual(hf.hfEncode(text), gz.hfEncode(text), JSON.stringify(text));
  }
});

test('BPE cache: hits on repeats, a bounded size, clearCache, same ids with the cache off', needVocab, () => {
  const small = ClipTokenizer.fromFiles(vocabDir, { cacheSize: 3 });
  const off = ClipTokenizer.fromFiles(vocabDir, { cacheSize: 0 });
  const text = 'a photo of a photo of an astronaut riding a horse';
  const ids = small.encode(text);
  assert.deepEqual(off.encode(text), ids);
  assert.deepEqual(off.cacheStats, { size: 0, limit: 0, hits: 0, misses: 11 });
  assert.equal(small.cacheStats.size, 3, 'never more than the limit');
  assert.deepEqual(small.encode(text), ids, 'eviction does not change results');
  small.clearCache();
  assert.deepEqual(small.cacheStats, { size: 0, limit: 3, hits: 0, misses: 0 });
  small.encode('cat cat cat');
  assert.deepEqual(small.cacheStats, { size: 1, limit: 3, hits: 2, misses: 1 });
  // The cache is keyed by the raw pre-token: the same word in both call styles shares an entry.
  small.hfEncode('cat');
  assert.equal(small.cacheStats.hits, 3);
});

test('rows: open_clip pads with 0 and keeps the end token when cutting; HF pads with 49407, masks, and pads to the longest', needVocab, () => {
  const { gz } = tokenizers();
  const long = Array.from({ length: 100 }, (_, i) => `word${i % 10}`).join(' ');
  const oc = gz.openClipTokenize(['', long], 77);
  assert.deepEqual(oc.shape, [2, 77]);
  assert.deepEqual(Array.from(oc.data.subarray(0, 4), Number), [49406, 49407, 0, 0]);
  const row = Array.from(oc.data.subarray(77, 154), Number);
  assert.equal(row[0], 49406);
  assert.equal(row[76], 49407);
  assert.deepEqual(row.slice(1, 76), gz.encode(long).slice(0, 75));
  const short = gz.openClipTokenize('a cat', 8);
  assert.deepEqual(Array.from(short.data, Number), [49406, 320, 2368, 49407, 0, 0, 0, 0]);

  const hf = gz.hfTokenize(['a cat', 'a'], { padding: 'longest' });
  assert.deepEqual(hf.shape, [2, 4]);
  assert.deepEqual(Array.from(hf.inputIds, Number), [49406, 320, 2368, 49407, 49406, 320, 49407, 49407]);
  assert.deepEqual(Array.from(hf.attentionMask, Number), [1, 1, 1, 1, 1, 1, 1, 0]);
  const untrunc = gz.hfTokenize(long, { truncation: false, maxLength: 77 });
  assert.equal(untrunc.shape[1], gz.hfEncode(long).length + 2);
  assert.throws(() => gz.hfTokenize(['a cat', 'a'], { padding: false }), /equal length/);
  assert.throws(() => gz.openClipTokenize('a', 1), RangeError);
});

test('decode inverts encode for ordinary lower-case words', needVocab, () => {
  const { gz } = tokenizers();
  for (const t of ['a photo of a cat', 'café 東京 😀 x = 1']) {
    assert.equal(gz.decode(gz.encode(t)), t);
  }
  // Every pre-token ends a word, as in open_clip's decode: contractions and digits come apart.
  assert.equal(gz.decode(gz.encode("it's 2023")), "it 's 2 0 2 3");
  assert.equal(gz.decode([49406, 320, 2368, 49407]), 'a cat');
  assert.throws(() => gz.decode([60000]), /not in the vocabulary/);
});

test('htmlUnescape follows Python html.unescape', () => {
  const cases: [string, string][] = [
    ['&amp;', '&'],
    ['&copy2023', '\u00a92023'],
    ['&#x41;&#65', 'AA'],
    ['&#0;', '\ufffd'],
    ['&#128;', '\u20ac'],
    ['&#xD800;', '\ufffd'],
    ['&#1;', ''],
    ['&notit;', '\u00acit;'],
    ['&bogus;', '&bogus;'],
    ['&NewLine;', '\n'],
    ['&#x110000;', '\ufffd'],
    ['&#0000000000065;', 'A'],
    ['&AMP', '&'],
    ['&ampx', '&x'],
    ['x &amp y', 'x & y'],
  ];
  for (const [input, want] of cases) assert.equal(htmlUnescape(input), want, JSON.stringify(input));
});

test('whitespaceClean uses Python\'s \\s (U+001C-U+001F, U+0085 yes; U+FEFF, U+200B no)', () => {
  assert.equal(whitespaceClean('\x1c a\x85\u3000b\t\n'), 'a b');
  assert.equal(whitespaceClean('a\ufeffb\u200bc'), 'a\ufeffb\u200bc');
});

test('fixText: entities only while no line so far has "<", repeated until stable; quotes, width, ligatures, NFC', () => {
  assert.equal(fixText('Tom &amp;amp; Jerry'), 'Tom & Jerry');
  assert.equal(fixText('a &lt; b <'), 'a &lt; b <');
  assert.equal(fixText('&amp;\n<b>\n&amp;'), '&\n<b>\n&amp;');
  assert.equal(fixText('&NTILDE;'), '\u00d1');
  assert.equal(fixText('&#65'), '&#65', 'ftfy needs the ";"');
  assert.equal(fixText('\u201chi\u201d \u2018x\u2019'), '"hi" \'x\'');
  assert.equal(fixText('\uff21\u3000\ufb01'), 'A fi');
  assert.equal(fixText('cafe\u0301'), 'caf\u00e9');
});
