// OmegaConf-style interpolation (the 2.1+ grammar, the parts configs use):
//   ${a.b.c}        node interpolation: the referenced value with its type (mapping and list too);
//   ${a.list[0]}    list elements, also as ${a.list.0};
//   "logs/${name}"  string interpolation: the text with each interpolation's str() spliced in;
//   ${.sibling}     relative to the mapping/list holding the node; each extra dot goes one up;
//   ${oc.env:VAR,default}, ${oc.select:key,default}, ${oc.decode:text}, and resolvers registered
//                   with registerResolver;
//   \${x}           an escaped, literal `${x}` (and `\\${x}` a backslash before an interpolation).
// Nested interpolations (`${a.${b}}`, `${oc.env:X,${y}}`) work. A missing key, a cycle or a
// reference to a `???` value is a ConfigError naming the node's config path.
import { ConfigError, closestMatch, showPath } from './errors.js';
import { MISSING, cloneConfig, isMapping, parseYamlValue, setKey } from './yaml.js';
import type { ConfigMap, ConfigValue } from './yaml.js';

// ---------------------------------------------------------------------------------------------
// Grammar

type Piece = { kind: 'text'; text: string } | { kind: 'interp'; interp: Interp };
type Interp =
  | { kind: 'node'; source: string; path: Piece[] }
  | { kind: 'resolver'; source: string; name: string; args: Arg[] };
type Arg =
  | { kind: 'quoted'; pieces: Piece[] }
  | { kind: 'structured'; text: string }
  | { kind: 'plain'; pieces: Piece[] };

class GrammarError extends Error {}

const RESOLVER_HEAD = /^\s*([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)\s*:/;

class Parser {
  constructor(readonly s: string) {}

  /** A top-level string: text with interpolations. */
  top(): Piece[] {
    const s = this.s;
    const pieces: Piece[] = [];
    let buf = '';
    let i = 0;
    while (i < s.length) {
      const c = s[i]!;
      if (c === '\\') {
        let n = 0;
        while (s[i + n] === '\\') n++;
        if (s.startsWith('${', i + n)) {
          buf += '\\'.repeat(Math.floor(n / 2));
          if (n % 2 === 1) {
            buf += '${';
            i += n + 2;
          } else {
            i += n;
          }
        } else {
          buf += '\\'.repeat(n);
          i += n;
        }
      } else if (c === '$' && s[i + 1] === '{') {
        if (buf) pieces.push({ kind: 'text', text: buf });
        buf = '';
        const [interp, end] = this.interp(i);
        pieces.push({ kind: 'interp', interp });
        i = end;
      } else {
        buf += c;
        i++;
      }
    }
    if (buf) pieces.push({ kind: 'text', text: buf });
    return pieces;
  }

  /** `${...}` starting at i; returns the interpolation and the index after its `}`. */
  interp(start: number): [Interp, number] {
    const s = this.s;
    let i = start + 2;
    const head = RESOLVER_HEAD.exec(s.slice(i));
    if (head) {
      const name = head[1]!;
      i += head[0].length;
      const args: Arg[] = [];
      i = this.skipWs(i);
      if (s[i] === '}') return [{ kind: 'resolver', source: s.slice(start, i + 1), name, args }, i + 1];
      for (;;) {
        const [arg, next] = this.arg(i);
        args.push(arg);
        i = this.skipWs(next);
        if (s[i] === ',') {
          i++;
          continue;
        }
        if (s[i] === '}') return [{ kind: 'resolver', source: s.slice(start, i + 1), name, args }, i + 1];
        if (i >= s.length) throw new GrammarError(`unterminated '\${' at column ${start + 1} (missing '}')`);
        throw new GrammarError(`unexpected '${s[i]}' in the arguments of resolver '${name}'`);
      }
    }
    // A node path, possibly with nested interpolations.
    const path: Piece[] = [];
    let buf = '';
    while (i < s.length && s[i] !== '}') {
      if (s[i] === '$' && s[i + 1] === '{') {
        if (buf) path.push({ kind: 'text', text: buf });
        buf = '';
        const [inner, end] = this.interp(i);
        path.push({ kind: 'interp', interp: inner });
        i = end;
      } else if ('{:\'"\\$'.includes(s[i]!)) {
        throw new GrammarError(`unexpected '${s[i]}' in the key of '${s.slice(start, i + 1)}...'`);
      } else {
        buf += s[i];
        i++;
      }
    }
    if (i >= s.length) throw new GrammarError(`unterminated '\${' at column ${start + 1} (missing '}')`);
    if (buf) path.push({ kind: 'text', text: buf });
    return [{ kind: 'node', source: s.slice(start, i + 1), path }, i + 1];
  }

  skipWs(i: number): number {
    while (i < this.s.length && /\s/.test(this.s[i]!)) i++;
    return i;
  }

  arg(start: number): [Arg, number] {
    const s = this.s;
    let i = this.skipWs(start);
    const c = s[i];
    if (c === '"' || c === "'") {
      const pieces: Piece[] = [];
      let buf = '';
      i++;
      while (i < s.length && s[i] !== c) {
        if (s[i] === '\\' && (s[i + 1] === c || s[i + 1] === '\\')) {
          buf += s[i + 1];
          i += 2;
        } else if (s[i] === '$' && s[i + 1] === '{') {
          if (buf) pieces.push({ kind: 'text', text: buf });
          buf = '';
          const [interp, end] = this.interp(i);
          pieces.push({ kind: 'interp', interp });
          i = end;
        } else {
          buf += s[i];
          i++;
        }
      }
      if (i >= s.length) throw new GrammarError(`unterminated quoted string in resolver arguments`);
      if (buf) pieces.push({ kind: 'text', text: buf });
      return [{ kind: 'quoted', pieces }, i + 1];
    }
    if (c === '[' || c === '{') {
      let depth = 0;
      let j = i;
      let quote: string | null = null;
      for (; j < s.length; j++) {
        const d = s[j]!;
        if (quote) {
          if (d === quote) quote = null;
        } else if (d === '"' || d === "'") quote = d;
        else if (d === '[' || d === '{') depth++;
        else if (d === ']' || d === '}') {
          depth--;
          if (depth === 0) break;
        }
      }
      if (j >= s.length) throw new GrammarError(`unterminated '${c}' in resolver arguments`);
      return [{ kind: 'structured', text: s.slice(i, j + 1) }, j + 1];
    }
    const pieces: Piece[] = [];
    let buf = '';
    while (i < s.length && s[i] !== ',' && s[i] !== '}') {
      if (s[i] === '\\' && i + 1 < s.length) {
        buf += s[i + 1];
        i += 2;
      } else if (s[i] === '$' && s[i + 1] === '{') {
        if (buf) pieces.push({ kind: 'text', text: buf });
        buf = '';
        const [interp, end] = this.interp(i);
        pieces.push({ kind: 'interp', interp });
        i = end;
      } else {
        buf += s[i];
        i++;
      }
    }
    if (buf) pieces.push({ kind: 'text', text: buf });
    // Surrounding whitespace is not part of an unquoted argument.
    const first = pieces[0];
    if (first?.kind === 'text') first.text = first.text.replace(/^\s+/, '');
    const last = pieces[pieces.length - 1];
    if (last?.kind === 'text') last.text = last.text.replace(/\s+$/, '');
    return [{ kind: 'plain', pieces: pieces.filter((p) => p.kind !== 'text' || p.text !== '') }, i];
  }
}

const parseCache = new Map<string, Piece[]>();

function parseString(s: string): Piece[] {
  let pieces = parseCache.get(s);
  if (!pieces) {
    pieces = new Parser(s).top();
    if (parseCache.size > 10000) parseCache.clear();
    parseCache.set(s, pieces);
  }
  return pieces;
}

/** True when a string holds an interpolation or an escaped `\${` (so resolution changes it). */
export function hasInterpolation(value: unknown): value is string {
  return typeof value === 'string' && value.includes('${');
}

/** True when the string is exactly one node interpolation such as `${a.b}` or `${..x}`. */
export function isNodeInterpolation(value: unknown): value is string {
  if (!hasInterpolation(value)) return false;
  try {
    const pieces = parseString(value);
    return pieces.length === 1 && pieces[0]!.kind === 'interp' && pieces[0]!.interp.kind === 'node';
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Paths

type Comps = string[];

function compsToString(comps: readonly string[]): string {
  return comps.join('.');
}

/** Splits `a.b[0].c` into `['a', 'b', '0', 'c']` (no leading dots; `what` names it in errors). */
export function splitKey(key: string, what = `key '${key}'`): string[] {
  const out: string[] = [];
  const n = key.length;
  const fail = (why: string): never => {
    throw new ConfigError(`${what}: ${why} in '${key}'`);
  };
  if (n === 0) fail('empty key');
  let i = 0;
  while (i < n) {
    if (key[i] === '[') {
      const end = key.indexOf(']', i);
      if (end < 0) fail("unbalanced '['");
      const inner = key.slice(i + 1, end).trim();
      if (inner === '') fail("empty '[]'");
      out.push(inner);
      i = end + 1;
    } else {
      let j = i;
      while (j < n && key[j] !== '.' && key[j] !== '[') {
        if (key[j] === ']') fail("unbalanced ']'");
        j++;
      }
      if (j === i) fail('empty key component');
      out.push(key.slice(i, j));
      i = j;
    }
    if (i >= n) break;
    if (key[i] === '.') {
      i++;
      if (i >= n || key[i] === '[' || key[i] === '.') fail('empty key component');
    } else if (key[i] !== '[') {
      fail("expected '.' or '[' after ']'");
    }
  }
  return out;
}

function childOf(container: ConfigValue, key: string): { found: boolean; value: ConfigValue } {
  if (Array.isArray(container)) {
    if (!/^\d+$/.test(key)) return { found: false, value: null };
    const idx = Number(key);
    if (idx >= container.length) return { found: false, value: null };
    return { found: true, value: container[idx]! };
  }
  if (isMapping(container) && Object.prototype.hasOwnProperty.call(container, key)) return { found: true, value: container[key]! };
  return { found: false, value: null };
}

function keysOf(container: ConfigValue): string[] {
  if (Array.isArray(container)) return container.map((_, i) => String(i));
  if (isMapping(container)) return Object.keys(container);
  return [];
}

/** The absolute components a node path refers to, for a node at `nodeComps`. */
function targetComps(pathText: string, nodeComps: Comps, where: () => string): Comps {
  let dots = 0;
  while (pathText[dots] === '.') dots++;
  const rest = pathText.slice(dots).trim();
  let base: Comps = [];
  if (dots > 0) {
    // `.x` is relative to the container holding the node; each further dot goes one level up.
    const up = dots; // from the node itself: 1 → parent, 2 → grandparent, ...
    if (up > nodeComps.length) {
      throw new ConfigError(`${where()}: relative interpolation '${pathText}' goes above the root of the config`);
    }
    base = nodeComps.slice(0, nodeComps.length - up);
  }
  if (rest === '') {
    if (dots === 0) throw new ConfigError(`${where()}: empty interpolation key`);
    return base;
  }
  return [...base, ...splitKey(rest, where())];
}

// ---------------------------------------------------------------------------------------------
// Resolvers

export interface ResolverContext {
  /** Config path of the node being resolved. */
  path: string;
  /** Resolves an interpolation key (absolute, or relative with leading dots) from this node. */
  select(key: string): { found: boolean; value: ConfigValue };
  /** Evaluates a string with interpolations as if it were the value of this node. */
  evaluate(text: string): ConfigValue;
}
export type ResolverFn = (args: ConfigValue[], ctx: ResolverContext) => ConfigValue;

const resolvers = new Map<string, ResolverFn>();

/** Registers a resolver usable as `${name:arg,...}` (OmegaConf.register_new_resolver). */
export function registerResolver(name: string, fn: ResolverFn, options: { replace?: boolean } = {}): void {
  if (!/^[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*$/.test(name)) throw new ConfigError(`invalid resolver name '${name}'`);
  if (resolvers.has(name) && !options.replace) throw new ConfigError(`resolver '${name}' is already registered (pass { replace: true } to replace it)`);
  resolvers.set(name, fn);
}

/** Names of the registered resolvers. */
export function resolverNames(): string[] {
  return [...resolvers.keys()].sort();
}

/** Removes a resolver (built-ins included). */
export function unregisterResolver(name: string): boolean {
  return resolvers.delete(name);
}

const GRAMMAR_INT = /^[-+]?(?:0|[1-9][0-9]*(?:_[0-9]+)*)$/;
const GRAMMAR_FLOAT =
  /^[-+]?(?:(?:[0-9]+(?:_[0-9]+)*)?\.[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+)?|[0-9]+(?:_[0-9]+)*\.?(?:[eE][-+]?[0-9]+)|[0-9]+(?:_[0-9]+)*\.|inf|nan)$/i;

/** An unquoted resolver argument as OmegaConf's grammar reads it. */
function grammarPrimitive(text: string): ConfigValue {
  if (/^null$/i.test(text)) return null;
  if (/^true$/i.test(text)) return true;
  if (/^false$/i.test(text)) return false;
  if (GRAMMAR_INT.test(text)) return Number(text.replace(/_/g, ''));
  if (GRAMMAR_FLOAT.test(text)) {
    const t = text.replace(/_/g, '').toLowerCase();
    if (t.endsWith('inf')) return t.startsWith('-') ? -Infinity : Infinity;
    if (t.endsWith('nan')) return NaN;
    return Number(t);
  }
  return text;
}

registerResolver('oc.env', (args, ctx) => {
  if (args.length < 1 || args.length > 2) throw new ConfigError(`${showPath(ctx.path)}: oc.env takes a variable name and an optional default`);
  const name = String(args[0]);
  const value = process.env[name];
  if (value !== undefined) return value;
  if (args.length === 2) {
    const d = args[1]!;
    return d === null ? null : typeof d === 'string' ? d : pyStr(d);
  }
  throw new ConfigError(
    `${showPath(ctx.path)}: environment variable '${name}' is not set; set it, or give a default: \${oc.env:${name},default}`,
    { path: ctx.path },
  );
});

registerResolver('oc.select', (args, ctx) => {
  if (args.length < 1 || args.length > 2) throw new ConfigError(`${showPath(ctx.path)}: oc.select takes a key and an optional default`);
  const r = ctx.select(String(args[0]));
  if (r.found && r.value !== MISSING) return r.value;
  return args.length === 2 ? args[1]! : null;
});

registerResolver('oc.decode', (args, ctx) => {
  if (args.length !== 1) throw new ConfigError(`${showPath(ctx.path)}: oc.decode takes one argument`);
  const v = args[0]!;
  if (v === null) return null;
  if (typeof v !== 'string') throw new ConfigError(`${showPath(ctx.path)}: oc.decode expects a string, got ${pyStr(v)}`);
  const t = v.trim();
  if (t.includes('${')) return ctx.evaluate(t);
  if (t.startsWith('[') || t.startsWith('{')) return parseYamlValue(t, `${showPath(ctx.path)} (oc.decode)`);
  return grammarPrimitive(t);
});

// ---------------------------------------------------------------------------------------------
// Python's str() for string interpolation

function pyFloat(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (n === Infinity) return 'inf';
  if (n === -Infinity) return '-inf';
  if (Number.isInteger(n)) return String(n);
  const [mant, expText] = n.toExponential().split('e') as [string, string];
  const exp = Number(expText);
  if (exp < -4 || exp >= 16) return `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return String(n);
}

function pyRepr(v: ConfigValue): string {
  if (typeof v === 'string') return v.includes("'") && !v.includes('"') ? `"${v}"` : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  return pyStr(v);
}

/** Python's str() of a config value (as OmegaConf splices values into strings). */
export function pyStr(v: ConfigValue): string {
  if (v === null) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return pyFloat(v);
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  return `{${Object.entries(v)
    .map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`)
    .join(', ')}}`;
}

// ---------------------------------------------------------------------------------------------
// Resolution

class Resolution {
  private readonly cache = new Map<string, ConfigValue>();
  private readonly active: string[] = [];

  constructor(private readonly root: ConfigMap) {}

  /** The fully resolved value at absolute `comps`; `found: false` when the key does not exist. */
  lookup(comps: Comps): { found: boolean; value: ConfigValue; failedAt?: number } {
    let cur: ConfigValue = this.root;
    let resolved = false;
    for (let i = 0; i < comps.length; i++) {
      if (!resolved && hasInterpolation(cur)) {
        cur = this.resolve(comps.slice(0, i));
        resolved = true;
      }
      const c = childOf(cur, comps[i]!);
      if (!c.found) return { found: false, value: null, failedAt: i };
      cur = c.value;
    }
    if (resolved) return { found: true, value: cur };
    return { found: true, value: this.resolve(comps) };
  }

  /** The resolved value at `comps`, which must exist. */
  resolve(comps: Comps): ConfigValue {
    const key = JSON.stringify(comps);
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    const pathStr = compsToString(comps);
    if (this.active.includes(key)) {
      const start = this.active.indexOf(key);
      const chain = [...this.active.slice(start), key].map((k) => showPath(compsToString(JSON.parse(k) as string[])));
      throw new ConfigError(`${showPath(pathStr)}: interpolation cycle: ${chain.join(' -> ')}`, { path: pathStr });
    }
    this.active.push(key);
    try {
      const raw = this.raw(comps);
      let out: ConfigValue;
      if (Array.isArray(raw)) {
        out = raw.map((_, i) => this.resolve([...comps, String(i)]));
      } else if (isMapping(raw)) {
        const m: ConfigMap = {};
        for (const k of Object.keys(raw)) setKey(m, k, this.resolve([...comps, k]));
        out = m;
      } else if (hasInterpolation(raw)) {
        out = this.evalString(raw, comps);
      } else {
        out = raw;
      }
      this.cache.set(key, out);
      return out;
    } finally {
      this.active.pop();
    }
  }

  /** The unresolved value at `comps` (walking through interpolations on the way). */
  private raw(comps: Comps): ConfigValue {
    let cur: ConfigValue = this.root;
    for (let i = 0; i < comps.length; i++) {
      if (hasInterpolation(cur)) cur = this.resolve(comps.slice(0, i));
      const c = childOf(cur, comps[i]!);
      if (!c.found) throw new ConfigError(`${showPath(compsToString(comps))}: no such key`, { path: compsToString(comps) });
      cur = c.value;
    }
    return cur;
  }

  evalString(s: string, comps: Comps): ConfigValue {
    const pathStr = compsToString(comps);
    let pieces: Piece[];
    try {
      pieces = parseString(s);
    } catch (e) {
      if (!(e instanceof GrammarError)) throw e;
      throw new ConfigError(`${showPath(pathStr)}: invalid interpolation in '${s}': ${e.message}`, { path: pathStr });
    }
    if (pieces.length === 1 && pieces[0]!.kind === 'interp') return this.evalInterp(pieces[0]!.interp, comps, s);
    return pieces.map((p) => (p.kind === 'text' ? p.text : pyStr(this.evalInterp(p.interp, comps, s)))).join('');
  }

  private evalPieces(pieces: Piece[], comps: Comps, whole: string): string {
    return pieces.map((p) => (p.kind === 'text' ? p.text : pyStr(this.evalInterp(p.interp, comps, whole)))).join('');
  }

  private select(pathText: string, comps: Comps, whole: string): { found: boolean; value: ConfigValue; target: Comps; failedAt?: number } {
    const pathStr = compsToString(comps);
    const where = (): string => `${showPath(pathStr)}: in '${whole}'`;
    const target = targetComps(pathText, comps, where);
    const r = this.lookup(target);
    return { ...r, target };
  }

  evalInterp(interp: Interp, comps: Comps, whole: string): ConfigValue {
    const pathStr = compsToString(comps);
    if (interp.kind === 'node') {
      const pathText = this.evalPieces(interp.path, comps, whole);
      const r = this.select(pathText, comps, whole);
      if (!r.found) {
        const at = r.failedAt ?? 0;
        const parentComps = r.target.slice(0, at);
        let suggestion = '';
        try {
          const parent = this.lookup(parentComps);
          const close = closestMatch(r.target[at]!, keysOf(parent.value));
          if (close !== undefined) suggestion = ` (did you mean '${compsToString([...parentComps, close])}'?)`;
        } catch {
          // no suggestion
        }
        const missing = compsToString(r.target.slice(0, at + 1));
        throw new ConfigError(
          `${showPath(pathStr)}: interpolation '${interp.source}' refers to '${compsToString(r.target)}', but '${missing}' does not exist${suggestion}`,
          { path: pathStr },
        );
      }
      if (r.value === MISSING) {
        throw new ConfigError(
          `${showPath(pathStr)}: interpolation '${interp.source}' refers to '${compsToString(r.target)}', which is a missing mandatory value (???); set it in a config or with an override`,
          { path: pathStr },
        );
      }
      return cloneConfig(r.value);
    }
    const fn = resolvers.get(interp.name);
    if (!fn) {
      const close = closestMatch(interp.name, resolvers.keys()) ?? (resolvers.has(`oc.${interp.name}`) ? `oc.${interp.name}` : undefined);
      const hint = close ? ` (did you mean '${close}'?)` : '';
      throw new ConfigError(
        `${showPath(pathStr)}: unknown resolver '${interp.name}' in '${whole}'${hint}; registered resolvers: ${resolverNames().join(', ')}`,
        { path: pathStr },
      );
    }
    const args = interp.args.map((a): ConfigValue => {
      if (a.kind === 'quoted') return this.evalPieces(a.pieces, comps, whole);
      if (a.kind === 'structured') return parseYamlValue(a.text, `${showPath(pathStr)} (resolver argument)`);
      if (a.pieces.length === 0) return '';
      if (a.pieces.length === 1 && a.pieces[0]!.kind === 'interp') return this.evalInterp(a.pieces[0]!.interp, comps, whole);
      if (a.pieces.every((p) => p.kind === 'text')) return grammarPrimitive(this.evalPieces(a.pieces, comps, whole));
      return this.evalPieces(a.pieces, comps, whole);
    });
    const ctx: ResolverContext = {
      path: pathStr,
      select: (key: string) => {
        try {
          const r = this.select(key, comps, whole);
          return { found: r.found, value: r.found ? cloneConfig(r.value) : null };
        } catch (e) {
          if (e instanceof ConfigError && /no such key/.test(e.message)) return { found: false, value: null };
          throw e;
        }
      },
      evaluate: (text: string) => this.evalString(text, comps),
    };
    const out = fn(args, ctx);
    return out === undefined ? null : out;
  }
}

/**
 * Resolves every interpolation in a config (after merging and overrides, as main.py does by
 * accessing the merged OmegaConf config). Returns a new config; `???` values that nothing
 * references stay as they are.
 */
export function resolveInterpolations<T extends ConfigValue = ConfigMap>(cfg: T): T {
  if (!isMapping(cfg) && !Array.isArray(cfg)) return cfg;
  const root: ConfigMap = isMapping(cfg) ? cfg : { _: cfg };
  const r = new Resolution(root);
  const out = r.resolve([]) as ConfigMap;
  return (isMapping(cfg) ? out : out['_']) as T;
}

/**
 * Selects the value at a dotted key (`a.b[0].c`), resolving interpolations on the way and in the
 * result (OmegaConf.select); `undefined` when the key does not exist.
 */
export function select(cfg: ConfigMap, key: string): ConfigValue | undefined {
  const r = new Resolution(cfg);
  const comps = key === '' ? [] : splitKey(key);
  const found = r.lookup(comps);
  return found.found ? cloneConfig(found.value) : undefined;
}

/**
 * The unresolved value a node interpolation (`${a.b}`, `${..x}`) at `nodeComps` points to, or
 * undefined when it cannot be followed. Used by merging, which (like OmegaConf) merges a mapping
 * into an interpolation by first copying the mapping it points to.
 */
export function dereferenceNode(root: ConfigMap, nodeComps: readonly string[], text: string, depth = 0): ConfigValue | undefined {
  if (depth > 32 || !isNodeInterpolation(text)) return undefined;
  const interp = (parseString(text)[0] as { kind: 'interp'; interp: Interp }).interp as Extract<Interp, { kind: 'node' }>;
  if (!interp.path.every((p) => p.kind === 'text')) return undefined;
  const pathText = interp.path.map((p) => (p as { text: string }).text).join('');
  let target: Comps;
  try {
    target = targetComps(pathText, [...nodeComps], () => '');
  } catch {
    return undefined;
  }
  let cur: ConfigValue = root;
  for (let i = 0; i < target.length; i++) {
    if (isNodeInterpolation(cur)) {
      const d = dereferenceNode(root, target.slice(0, i), cur, depth + 1);
      if (d === undefined) return undefined;
      cur = d;
    }
    const c = childOf(cur, target[i]!);
    if (!c.found) return undefined;
    cur = c.value;
  }
  if (isNodeInterpolation(cur)) return dereferenceNode(root, target, cur, depth + 1);
  return cur;
}
