// Errors of the config layer. Every message names the file (with line and column) or the config
// path it is about, and says what to do where that is not obvious.

export interface ConfigErrorOptions {
  /** The config path the error is about, dotted (`model.params.denoiser_config`). */
  path?: string;
  /** The file the error is about. */
  file?: string;
  /** 1-based line in `file`. */
  line?: number;
  /** 1-based column in `file`. */
  column?: number;
  cause?: unknown;
}

/** Any problem with a config: YAML syntax, merge, override, interpolation, instantiation. */
export class ConfigError extends Error {
  readonly path?: string;
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;

  constructor(message: string, options: ConfigErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ConfigError';
    if (options.path !== undefined) this.path = options.path;
    if (options.file !== undefined) this.file = options.file;
    if (options.line !== undefined) this.line = options.line;
    if (options.column !== undefined) this.column = options.column;
  }
}

/**
 * The config names a target that is registered only as a placeholder: the reference has the class
 * but this project does not implement it (yet). `reason` says why or which issue brings it.
 */
export class NotImplementedTargetError extends ConfigError {
  readonly target: string;
  readonly reason: string;

  constructor(target: string, reason: string, path?: string) {
    const where = path ? `${path}: ` : '';
    super(`${where}target '${target}' is not implemented yet (${reason})`, path === undefined ? {} : { path });
    this.name = 'NotImplementedTargetError';
    this.target = target;
    this.reason = reason;
  }
}

/** Formats a config path for messages; the root is `<root>`. */
export function showPath(path: string): string {
  return path === '' ? '<root>' : path;
}

/** Levenshtein distance between two strings. */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  let cur = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length]!;
}

/**
 * The candidate closest to `name` (case-insensitive edit distance), or undefined when none is
 * close enough to be a plausible typo (distance at most a third of the longer name, at least 2).
 */
export function closestMatch(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const lower = name.toLowerCase();
  for (const c of candidates) {
    const d = editDistance(lower, c.toLowerCase());
    if (d < bestD || (d === bestD && best !== undefined && c < best)) {
      best = c;
      bestD = d;
    }
  }
  if (best === undefined) return undefined;
  const limit = Math.max(2, Math.floor(Math.max(name.length, best.length) / 3));
  return bestD <= limit ? best : undefined;
}
