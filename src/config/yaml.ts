// YAML loading with the scalar rules of OmegaConf.load (PyYAML's SafeLoader, YAML 1.1):
//   - booleans: yes/no/true/false/on/off in the cases yes, Yes, YES (not y/n, which stay strings);
//   - null: ~, null, Null, NULL and the empty value;
//   - ints: decimal (with `_`), 0b binary, 0x hex, leading-0 octal, sexagesimal `1:30`;
//   - floats: PyYAML's YAML 1.1 floats plus OmegaConf's extra resolver, so `1e-4`, `1.0e-4`,
//     `4.5e-6`, `1.`, `.5`, `.inf`, `.nan` are floats;
//   - no timestamps (OmegaConf drops that resolver: `2023-11-30` stays a string);
//   - everything else (`0,`, `09`, `vanilla-xformers`) is a string; quoted scalars are strings.
// Duplicate keys are errors (OmegaConf's loader rejects them), `<<` merge keys and anchors work.
// Values are plain JSON-like data: objects, arrays, strings, numbers, booleans and null.
import { readFileSync } from 'node:fs';
import { LineCounter, Scalar, isPair, isScalar, parseDocument, stringify, visit } from 'yaml';
import type { Document, ScalarTag, YAMLError } from 'yaml';
import { ConfigError, showPath } from './errors.js';

export type ConfigScalar = null | boolean | number | string;
export type ConfigValue = ConfigScalar | ConfigValue[] | ConfigMap;
export interface ConfigMap {
  [key: string]: ConfigValue;
}

/** OmegaConf's marker for a mandatory value that is not set yet. */
export const MISSING = '???';

// ---------------------------------------------------------------------------------------------
// Scalar resolution (PyYAML SafeLoader + OmegaConf's float resolver)

const NULL_RE = /^(?:~|null|Null|NULL|)$/;
const TRUE_RE = /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/;
const FALSE_RE = /^(?:no|No|NO|false|False|FALSE|off|Off|OFF)$/;
const INT_RE =
  /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/;
// PyYAML's YAML 1.1 float, then OmegaConf's additional resolver (exponent without a dot, optional
// exponent sign); a scalar is a float when either matches.
const PYYAML_FLOAT_RE =
  /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;
const OMEGACONF_FLOAT_RE =
  /^(?:[-+]?[0-9]+(?:_[0-9]+)*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+)|\.[0-9]+(?:_[0-9]+)*(?:[eE][-+][0-9]+)?|[-+]?[0-9]+(?:_[0-9]+)*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;

function isFloatText(s: string): boolean {
  return PYYAML_FLOAT_RE.test(s) || OMEGACONF_FLOAT_RE.test(s);
}

function sexagesimal(s: string): number {
  let value = 0;
  for (const part of s.split(':')) value = value * 60 + Number(part);
  return value;
}

/** PyYAML's construct_yaml_int; NaN when the text is not an int. */
function constructInt(text: string): number {
  let s = text.replace(/_/g, '');
  let sign = 1;
  if (s.startsWith('-')) sign = -1;
  if (s.startsWith('-') || s.startsWith('+')) s = s.slice(1);
  if (s === '') return NaN;
  if (s === '0') return 0;
  if (s.startsWith('0b')) return /^[01]+$/.test(s.slice(2)) ? sign * parseInt(s.slice(2), 2) : NaN;
  if (s.startsWith('0x')) return /^[0-9a-fA-F]+$/.test(s.slice(2)) ? sign * parseInt(s.slice(2), 16) : NaN;
  if (s.startsWith('0')) return /^[0-7]+$/.test(s) ? sign * parseInt(s, 8) : NaN;
  if (s.includes(':')) return /^[0-9]+(?::[0-9]+)+$/.test(s) ? sign * sexagesimal(s) : NaN;
  return /^[0-9]+$/.test(s) ? sign * Number(s) : NaN;
}

/** PyYAML's construct_yaml_float (Python `float()` on the cleaned text). */
function constructFloat(text: string): number {
  let s = text.replace(/_/g, '').toLowerCase().trim();
  let sign = 1;
  if (s.startsWith('-')) sign = -1;
  if (s.startsWith('-') || s.startsWith('+')) s = s.slice(1);
  if (s === '.inf' || s === 'inf' || s === 'infinity') return sign * Infinity;
  if (s === '.nan' || s === 'nan') return NaN;
  if (s.includes(':')) return /^[0-9]+(?::[0-9]+)*(?::[0-9]*\.?[0-9]*)$/.test(s) ? sign * sexagesimal(s) : NaN;
  if (!/^(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[-+]?[0-9]+)?$/.test(s)) return NaN;
  return sign * Number(s);
}

/**
 * Resolves a plain (unquoted) YAML scalar as OmegaConf.load does: null, bool, int, float, or the
 * string itself.
 */
export function resolvePlainScalar(text: string): ConfigScalar {
  if (NULL_RE.test(text)) return null;
  if (TRUE_RE.test(text)) return true;
  if (FALSE_RE.test(text)) return false;
  if (INT_RE.test(text)) return constructInt(text);
  if (isFloatText(text)) return constructFloat(text);
  return text;
}

const nullTag: ScalarTag = {
  tag: 'tag:yaml.org,2002:null',
  default: true,
  identify: (v) => v === null || v === undefined,
  test: NULL_RE,
  resolve: () => new Scalar(null),
  stringify: () => 'null',
};

const boolTag: ScalarTag = {
  tag: 'tag:yaml.org,2002:bool',
  default: true,
  identify: (v) => typeof v === 'boolean',
  test: /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON|no|No|NO|false|False|FALSE|off|Off|OFF)$/,
  resolve: (s, onError) => {
    if (TRUE_RE.test(s) || /^(?:yes|true|on)$/i.test(s)) return true;
    if (FALSE_RE.test(s) || /^(?:no|false|off)$/i.test(s)) return false;
    onError(`invalid !!bool value '${s}'`);
    return s;
  },
  stringify: ({ value }) => (value ? 'true' : 'false'),
};

const intTag: ScalarTag = {
  tag: 'tag:yaml.org,2002:int',
  default: true,
  identify: (v) => typeof v === 'number' && Number.isInteger(v),
  test: INT_RE,
  resolve: (s, onError) => {
    const n = constructInt(s.trim());
    if (Number.isNaN(n)) onError(`invalid !!int value '${s}'`);
    return n;
  },
  stringify: ({ value }) => String(value),
};

function stringifyFloat(value: unknown): string {
  const n = Number(value);
  if (Number.isNaN(n)) return '.nan';
  if (n === Infinity) return '.inf';
  if (n === -Infinity) return '-.inf';
  const s = String(n);
  // Keep a float a float when read back (integral floats are indistinguishable from ints in JS).
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

const floatTag: ScalarTag = {
  tag: 'tag:yaml.org,2002:float',
  default: true,
  identify: (v) => typeof v === 'number',
  test: new RegExp(`${PYYAML_FLOAT_RE.source}|${OMEGACONF_FLOAT_RE.source}`),
  resolve: (s, onError) => {
    const n = constructFloat(s);
    if (Number.isNaN(n) && !/^[-+]?\.?nan$/i.test(s.trim())) onError(`invalid !!float value '${s}'`);
    return n;
  },
  stringify: ({ value }) => stringifyFloat(value),
};

// Explicit tags (`!!float 1`, `!!int "42"`) resolve whatever the text looks like, as PyYAML does;
// these variants have no `default`/`test`, so the yaml package uses them only for explicit tags.
const explicit = (t: ScalarTag): ScalarTag => ({ tag: t.tag, resolve: t.resolve });

const TAGS: ScalarTag[] = [nullTag, boolTag, intTag, floatTag, ...[nullTag, boolTag, intTag, floatTag].map(explicit)];

// ---------------------------------------------------------------------------------------------
// Plain data helpers

/** True for a config mapping (a plain object, not an array or null). */
export function isMapping(value: unknown): value is ConfigMap {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Sets `obj[key] = value`, treating `__proto__` as an ordinary key. */
export function setKey(obj: ConfigMap, key: string, value: ConfigValue): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

/** True when `obj` has its own key `key`. */
export function hasKey(obj: ConfigMap, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

/** Deep copy of a config value (no shared objects in the result). */
export function cloneConfig<T extends ConfigValue>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => cloneConfig(v)) as T;
  if (isMapping(value)) {
    const out: ConfigMap = {};
    for (const [k, v] of Object.entries(value)) setKey(out, k, cloneConfig(v));
    return out as T;
  }
  return value;
}

/** The type of a config value in messages: null, bool, int, float, string, list, dict. */
export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  if (typeof value === 'string') return 'string';
  if (Array.isArray(value)) return 'list';
  if (isMapping(value)) return 'dict';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  return typeof value;
}

/** Joins a config path and a key (`a.b` + `c` → `a.b.c`; list indices as `a.0`). */
export function joinPath(path: string, key: string | number): string {
  return path === '' ? String(key) : `${path}.${key}`;
}

/** Checks a value is plain config data and copies it (used on parsed YAML and user objects). */
export function toConfigValue(value: unknown, path = '', where = ''): ConfigValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'boolean' || typeof value === 'number') return value;
  if (Array.isArray(value)) return value.map((v, i) => toConfigValue(v, joinPath(path, i), where));
  if (isMapping(value)) {
    const out: ConfigMap = {};
    for (const [k, v] of Object.entries(value)) setKey(out, k, toConfigValue(v, joinPath(path, k), where));
    return out;
  }
  const at = where ? `${where}: ` : '';
  throw new ConfigError(
    `${at}${showPath(path)}: unsupported value of type ${typeName(value)} (configs hold mappings, lists, strings, numbers, booleans and null)`,
    { path },
  );
}

// ---------------------------------------------------------------------------------------------
// Parsing

function problemOf(err: YAMLError): string {
  // The yaml package appends " at line L, column C:\n\n<context>"; keep the problem and context.
  const m = /^([\s\S]*?) at line \d+, column \d+:?\n?([\s\S]*)$/.exec(err.message);
  if (!m) return err.message;
  const context = m[2]!.replace(/^\n+/, '').replace(/\s+$/, '');
  return context ? `${m[1]}\n\n${context}` : m[1]!;
}

function duplicateKeyMessage(doc: Document, text: string, err: YAMLError, lc: LineCounter): string {
  const start = err.pos[0];
  let keyText = /^[^:\n]*/.exec(text.slice(start))![0].trim();
  let first: number | undefined;
  visit(doc, {
    Map(_, map) {
      const items = map.items;
      const i = items.findIndex((p) => isPair(p) && isScalar(p.key) && p.key.range?.[0] === start);
      if (i < 0) return undefined;
      const dup = items[i]!.key as Scalar;
      if (typeof dup.source === 'string') keyText = dup.source;
      for (let j = 0; j < i; j++) {
        const k = items[j]!.key;
        if (isScalar(k) && k.value === dup.value && k.range) {
          first = lc.linePos(k.range[0]).line;
          break;
        }
      }
      return visit.BREAK;
    },
  });
  const firstAt = first === undefined ? '' : ` (first defined at line ${first})`;
  return `duplicate key '${keyText}'${firstAt}; OmegaConf rejects duplicate keys, keep one of them`;
}

/** Parses YAML text to config data (any top-level value; an empty document is null). */
export function parseYamlValue(text: string, sourceName = '<string>'): ConfigValue {
  const lc = new LineCounter();
  const doc = parseDocument(text, {
    schema: 'failsafe',
    customTags: TAGS,
    merge: true,
    uniqueKeys: true,
    prettyErrors: true,
    lineCounter: lc,
  });
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length > 0) {
    const err = problems[0]!;
    const pos = err.linePos?.[0] ?? lc.linePos(err.pos[0]);
    const what =
      err.code === 'DUPLICATE_KEY'
        ? duplicateKeyMessage(doc, text, err, lc)
        : `${err.code === 'TAG_RESOLVE_FAILED' ? 'YAML error' : 'YAML syntax error'}: ${problemOf(err)}`;
    const more = problems.length > 1 ? `\n(${problems.length - 1} more problem${problems.length > 2 ? 's' : ''} in this file)` : '';
    throw new ConfigError(`${sourceName}:${pos.line}:${pos.col}: ${what}${more}`, {
      file: sourceName,
      line: pos.line,
      column: pos.col,
    });
  }
  // Keys keep their source text (`1.0: x` has key "1.0", `on: x` has key "on"), as a mapping key
  // of a JS object is a string anyway.
  visit(doc, {
    Pair(_, pair) {
      const key = pair.key;
      if (isScalar(key) && key.type === 'PLAIN' && typeof key.source === 'string' && key.source !== '<<' && typeof key.value !== 'string') {
        const replacement = new Scalar(key.source);
        replacement.range = key.range ?? null;
        pair.key = replacement;
      }
      return undefined;
    },
  });
  let js: unknown;
  try {
    js = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    throw new ConfigError(`${sourceName}: ${(e as Error).message}`, { file: sourceName, cause: e });
  }
  return toConfigValue(js, '', sourceName);
}

/** Parses a YAML config (a mapping at the top level; an empty document is `{}`). */
export function parseConfig(text: string, sourceName = '<string>'): ConfigMap {
  const value = parseYamlValue(text, sourceName);
  if (value === null) return {};
  if (!isMapping(value)) {
    throw new ConfigError(
      `${sourceName}:1:1: a config must be a mapping at the top level (key: value lines), found a ${typeName(value)}`,
      { file: sourceName, line: 1, column: 1 },
    );
  }
  return value;
}

/** Reads and parses a YAML config file. */
export function loadConfigFile(path: string): ConfigMap {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
    throw new ConfigError(`cannot read config file ${path}: ${why}`, { file: path, cause: e });
  }
  return parseConfig(text, path);
}

/** Writes a config as YAML that reads back to the same data under these rules. */
export function dumpConfig(cfg: ConfigValue): string {
  return stringify(cfg, { schema: 'failsafe', customTags: TAGS, lineWidth: 0 });
}
