// Progress for long work (loading, hashing, sampling steps). Always on stderr (or a given stream),
// never stdout, so piped output stays clean. On a terminal one line is redrawn in place with '\r';
// in logs (no TTY: CI, files, pipes) plain lines are written at most every few seconds, plus a final
// line, so a log neither floods nor stays silent during a long step.

/** What a progress reporter writes to: process.stderr, or a fake in tests. */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  /** terminal width; lines are cut to fit */
  columns?: number;
}

export interface ProgressOptions {
  /** what is being done, e.g. 'sampling' or 'hashing model.safetensors' */
  label: string;
  /** number of units in all; omit when unknown (no bar, no ETA) */
  total?: number;
  /** where to write (default process.stderr) */
  stream?: ProgressStream;
  /** unit name shown after counts, e.g. 'steps'; 'B' formats counts and rates as KiB/MiB/GiB */
  unit?: string;
  /** millisecond clock (default performance.now); injectable for tests */
  now?: () => number;
  /** minimum time between redraws on a TTY (default 100 ms) */
  ttyIntervalMs?: number;
  /** minimum time between plain lines without a TTY (default 2000 ms) */
  plainIntervalMs?: number;
}

export interface Progress {
  /** Adds `n` (default 1) units done. */
  tick(n?: number, info?: string): void;
  /** Sets the units done. */
  update(done: number, info?: string): void;
  /** Finishes successfully: writes the final state and ends the line. Later calls do nothing. */
  done(info?: string): void;
  /** Finishes with an error: writes where it stopped and why. Later calls do nothing. */
  fail(reason?: string): void;
  /** units done so far */
  readonly value: number;
}

/** Seconds as `12s`, `3:05` or `1:02:03`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)}s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h > 0 ? String(m).padStart(2, '0') : String(m);
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(r).padStart(2, '0')}`;
}

/** Bytes as `512 B`, `1.5 KiB`, `7.03 GiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes, i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(v)} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[i]}`;
}

const BAR_WIDTH = 24;

/** Creates a reporter. Nothing is written until the first update (TTY) or interval (plain). */
export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  const now = options.now ?? (() => performance.now());
  const interval = tty ? options.ttyIntervalMs ?? 100 : options.plainIntervalMs ?? 2000;
  const { label, unit } = options;
  const total = options.total !== undefined && Number.isFinite(options.total) && options.total > 0 ? options.total : undefined;
  const bytes = unit === 'B';
  const start = now();
  let value = 0;
  let info = '';
  let lastWrite = start;
  let drawn = false;
  let finished = false;

  const count = (v: number) => (bytes ? formatBytes(v) : String(Math.round(v * 1000) / 1000));
  const unitSuffix = !bytes && unit ? ` ${unit}` : '';
  const rateText = (elapsedS: number) => {
    if (elapsedS <= 0 || value <= 0) return '';
    const r = value / elapsedS;
    if (bytes) return `${formatBytes(r)}/s`;
    return r >= 1 || !unit ? `${r.toFixed(r < 10 ? 2 : 1)} ${unit ?? 'it'}/s` : `${(1 / r).toFixed(2)} s/${singular(unit)}`;
  };
  const clean = (s: string | undefined) => (s ?? '').replace(/[\r\n]+/g, ' ').trim();

  function status(elapsedS: number): { counts: string; pct: string; rate: string; eta: string } {
    const counts = total !== undefined ? `${count(value)}/${count(total)}${unitSuffix}` : `${count(value)}${unitSuffix}`;
    const pct = total !== undefined ? `${Math.floor((100 * Math.min(value, total)) / total)}%` : '';
    const rate = rateText(elapsedS);
    let eta = '';
    if (total !== undefined && value > 0 && value < total && elapsedS > 0) eta = `ETA ${formatDuration(((total - value) * elapsedS) / value)}`;
    return { counts, pct, rate, eta };
  }

  function ttyLine(final: string | null, detail = ''): string {
    const elapsedS = (now() - start) / 1000;
    const { counts, pct, rate, eta } = status(elapsedS);
    const parts: string[] = [];
    let bar = '';
    if (total !== undefined) {
      const filled = Math.round((BAR_WIDTH * Math.min(value, total)) / total);
      bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
      parts.push(pct);
    }
    parts.push(counts);
    if (rate) parts.push(rate);
    if (final !== null) parts.push(`${final} in ${formatDuration(elapsedS)}`);
    else if (eta) parts.push(eta);
    if (info) parts.push(info);
    if (detail) parts.push(detail);
    const rest = parts.join(' ');
    const withBar = bar ? `${bar} ${rest}` : rest;
    const cols = stream.columns;
    const max = cols !== undefined && cols >= 2 ? cols - 1 : Infinity;
    if (label.length + 1 + withBar.length <= max) return `${label} ${withBar}`;
    // too wide: drop the bar, then shorten the label, then cut the end (the numbers matter most)
    if (label.length + 1 + rest.length <= max) return `${label} ${rest}`;
    const room = max - rest.length - 1;
    const head = room >= 8 ? `${label.slice(0, room - 3)}...` : label.slice(0, 5);
    return `${head} ${rest}`.slice(0, max);
  }

  function plainLine(): string {
    const elapsedS = (now() - start) / 1000;
    const { counts, pct, rate, eta } = status(elapsedS);
    const extra = [pct, rate, eta].filter(Boolean).join(', ');
    return `${label}: ${counts}${extra ? ` (${extra})` : ''}${info ? ` ${info}` : ''}\n`;
  }

  function maybeWrite(): void {
    const t = now();
    if (tty) {
      if (drawn && t - lastWrite < interval) return;
      stream.write(`\r${ttyLine(null)}\x1b[K`);
      drawn = true;
      lastWrite = t;
    } else if (t - lastWrite >= interval) {
      stream.write(plainLine());
      lastWrite = t;
    }
  }

  function finish(word: string, detail: string): void {
    const elapsedS = (now() - start) / 1000;
    if (tty) {
      stream.write(`\r${ttyLine(word, detail)}\x1b[K\n`);
    } else {
      const { counts, rate } = status(elapsedS);
      // Work without units (total unknown and nothing counted) reports just its time.
      const what = total === undefined && value === 0 ? '' : `, ${counts}`;
      stream.write(`${label}: ${word}${what} in ${formatDuration(elapsedS)}${rate && what ? ` (${rate})` : ''}${detail ? ` ${detail}` : ''}\n`);
    }
  }

  return {
    tick(n = 1, i?: string) {
      if (finished) return;
      value += n;
      if (i !== undefined) info = clean(i);
      maybeWrite();
    },
    update(done: number, i?: string) {
      if (finished) return;
      value = done;
      if (i !== undefined) info = clean(i);
      maybeWrite();
    },
    done(i?: string) {
      if (finished) return;
      finished = true;
      if (i !== undefined) info = clean(i);
      finish('done', tty ? '' : info);
    },
    fail(reason?: string) {
      if (finished) return;
      finished = true;
      const r = clean(reason);
      finish('failed', r ? `error: ${r}` : '');
    },
    get value() {
      return value;
    },
  };
}

function singular(unit: string): string {
  return unit.endsWith('s') && unit.length > 1 ? unit.slice(0, -1) : unit;
}
