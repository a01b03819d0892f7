// Text cleaning used by the CLIP tokenizers, with Python's semantics: html.unescape, the
// `re` module's Unicode \s, str.strip / str.lower, and the subset of ftfy.fix_text (6.1) that
// does not need its mojibake detector.
import { HTML5_ENTITIES } from './html_entities.js';

/** Python `str.isspace()` / `re` `\s` for str patterns (Unicode whitespace incl. U+001C-U+001F). */
const PY_SPACE = '\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_SPACE_RUN = new RegExp(`[${PY_SPACE}]+`, 'gu');
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'gu');

/** Python `text.strip()` (no argument). */
export function pyStrip(text: string): string {
  return text.replace(PY_STRIP, '');
}

/** `re.sub(r"\s+", " ", text).strip()` with Python's Unicode `\s` (open_clip / HF `whitespace_clean`). */
export function whitespaceClean(text: string): string {
  return pyStrip(text.replace(PY_SPACE_RUN, ' '));
}

/**
 * Python `str.lower()`: full Unicode lower-case mappings, final sigma in context, 'İ' -> 'i' + U+0307.
 * JavaScript's toLowerCase implements the same Unicode SpecialCasing rules (locale-independent).
 */
export function pyLower(text: string): string {
  return text.toLowerCase();
}

/** Windows-1252 characters for the bytes 0x80-0x9F (undefined bytes stay C1 controls). */
const CP1252_C1 =
  '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f' +
  '\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';

function invalidCodepoint(n: number): boolean {
  return (
    (n >= 0x1 && n <= 0x8) ||
    n === 0xb ||
    (n >= 0xe && n <= 0x1f) ||
    (n >= 0x7f && n <= 0x9f) ||
    (n >= 0xfdd0 && n <= 0xfdef) ||
    (n & 0xfffe) === 0xfffe
  );
}

/** Decodes one numeric character reference the way Python's html.unescape does. */
function numericCharref(n: number): string {
  if (n === 0) return '\ufffd';
  if (n === 0x0d) return '\r';
  if (n >= 0x80 && n <= 0x9f) return CP1252_C1[n - 0x80]!;
  if ((n >= 0xd800 && n <= 0xdfff) || n > 0x10ffff || !Number.isFinite(n)) return '\ufffd';
  if (invalidCodepoint(n)) return '';
  return String.fromCodePoint(n);
}

const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

/**
 * Python's `html.unescape`: numeric references (decimal / hex, with or without ';', the HTML5
 * replacements for 0x00, 0x0D, 0x80-0x9F, surrogates and out-of-range values, invalid code points
 * removed) and all 2231 HTML5 named references, including the legacy names without ';' matched as
 * the longest prefix ('&copy2023' -> '©2023').
 */
export function htmlUnescape(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(CHARREF, (_m, s: string) => {
    if (s[0] === '#') {
      const hex = s[1] === 'x' || s[1] === 'X';
      const digits = s.slice(hex ? 2 : 1).replace(/;$/, '').replace(/^0+(?=.)/, '');
      // Long digit strings are out of range whatever their value.
      const n = digits.length > 8 ? Infinity : parseInt(digits, hex ? 16 : 10);
      return numericCharref(n);
    }
    const direct = HTML5_ENTITIES[s];
    if (direct !== undefined) return direct;
    const cps = Array.from(s);
    for (let x = cps.length - 1; x > 1; x--) {
      const prefix = cps.slice(0, x).join('');
      const v = HTML5_ENTITIES[prefix];
      if (v !== undefined) return v + cps.slice(x).join('');
    }
    return '&' + s;
  });
}

// ---------------------------------------------------------------------------------------------
// ftfy subset

/** ftfy's entity table: HTML5 names ending in ';' as '&name;', plus upper-cased lower-case names. */
let ftfyEntities: Map<string, string> | null = null;
function ftfyEntityTable(): Map<string, string> {
  if (ftfyEntities) return ftfyEntities;
  const m = new Map<string, string>();
  for (const [name, ch] of Object.entries(HTML5_ENTITIES)) {
    if (!name.endsWith(';')) continue;
    m.set('&' + name, ch);
    if (name === name.toLowerCase()) {
      const upper = '&' + name.toUpperCase();
      if (htmlUnescape(upper) === upper) m.set(upper, ch.toUpperCase());
    }
  }
  ftfyEntities = m;
  return m;
}

const FTFY_ENTITY = /&#?[0-9A-Za-z]{1,24};/g;

/** ftfy `unescape_html`: only complete '&...;' references; numeric ones must consume the ';'. */
export function ftfyUnescapeHtml(text: string): string {
  if (!text.includes('&')) return text;
  const table = ftfyEntityTable();
  return text.replace(FTFY_ENTITY, (m) => {
    const v = table.get(m);
    if (v !== undefined) return v;
    if (m.startsWith('&#')) {
      const u = htmlUnescape(m);
      return u.includes(';') ? m : u;
    }
    return m;
  });
}

const LIGATURE_CHARS = 'ĲĳŉǄǅǆǇǈǉǊǋǌǱǲǳﬀﬁﬂﬃﬄﬅﬆ';
const LIGATURE_RE = new RegExp(`[${LIGATURE_CHARS}]`, 'gu');
const WIDTH_RE = /[\u3000\uff01-\uffef]/gu;
const SINGLE_QUOTE_RE = /[\u02bc\u2018-\u201b]/gu;
const DOUBLE_QUOTE_RE = /[\u201c-\u201f]/gu;
const C1_RE = /[\x80-\x9f]/gu;
const ANSI_RE = /\x1b\[((?:\d|;)*)([a-zA-Z])/gu;
const CONTROL_RE = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/gu;

function fixOnce(text: string, unescape: boolean): string {
  let t = unescape ? ftfyUnescapeHtml(text) : text;
  // fix_encoding (mojibake detection) is not implemented: see fixText's note.
  t = t.replace(C1_RE, (c) => CP1252_C1[c.charCodeAt(0) - 0x80]!);
  t = t.replace(LIGATURE_RE, (c) => c.normalize('NFKC'));
  t = t.replace(WIDTH_RE, (c) => (c === '\u3000' ? ' ' : c.normalize('NFKC')));
  t = t.replace(SINGLE_QUOTE_RE, "'").replace(DOUBLE_QUOTE_RE, '"');
  t = t.replace(/\r\n/g, '\n').replace(/[\r\u2028\u2029\x85]/gu, '\n');
  t = t.replace(ANSI_RE, '').replace(CONTROL_RE, '');
  return t.normalize('NFC');
}

/**
 * The part of `ftfy.fix_text` (ftfy 6.1 defaults) that the CLIP tokenizers depend on: per line,
 * HTML entities are decoded (only while no line so far contained '<'), C1 controls read as
 * Windows-1252, Latin ligatures split, full-width forms narrowed, curly quotes straightened, line
 * breaks unified, terminal escapes and control characters removed, NFC; repeated until nothing
 * changes. Not implemented: ftfy's mojibake repair (`fix_encoding`: text that was decoded with the
 * wrong codec, e.g. 'cafÃ©'), which needs ftfy's statistical badness heuristic.
 */
export function fixText(text: string): string {
  let unescape = true;
  let out = '';
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos) + 1;
    if (end === 0) end = text.length;
    let seg = text.slice(pos, end);
    if (unescape && seg.includes('<')) unescape = false;
    for (;;) {
      const next = fixOnce(seg, unescape);
      if (next === seg) break;
      seg = next;
    }
    out += seg;
    pos = end;
  }
  return out;
}
