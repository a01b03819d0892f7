// Parity-fixture discovery: data-driven tests find every case in an area folder and run it by
// its `kind`, so a new case of a known kind is picked up without code changes.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readSafetensors, type SafetensorsTensor } from '../../src/io/safetensors.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The fixture root: $SGM_FIXTURES_DIR, else ../shared/fixtures beside the repository. */
export function fixtureRoot(): string {
  const env = process.env.SGM_FIXTURES_DIR;
  return env ? resolve(env) : resolve(repoRoot, '..', 'shared', 'fixtures');
}

export interface ParityCase {
  area: string;
  name: string;
  /** The parsed NAME.json. */
  spec: Record<string, any>;
  dir: string;
  ioPath: string | null;
  weightsPath: string | null;
}

/** A tensor of a fixture's safetensors file (as read by readSafetensors). */
export type IoTensor = SafetensorsTensor;

export function loadIo(c: ParityCase): Map<string, IoTensor> {
  if (!c.ioPath) throw new Error(`${c.area}/${c.name}: the case has no .io.safetensors file`);
  return readSafetensors(c.ioPath);
}

/** Lists the cases (NAME.json with a `kind`) of one area folder, sorted by name. */
export function discoverCases(area: string): ParityCase[] {
  const dir = join(fixtureRoot(), area);
  const cases: ParityCase[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith('.json')) continue;
    const name = file.slice(0, -'.json'.length);
    const spec = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    if (!spec || typeof spec !== 'object' || typeof spec.kind !== 'string') continue; // e.g. key lists
    const io = join(dir, `${name}.io.safetensors`);
    const w = join(dir, `${name}.weights.safetensors`);
    cases.push({ area, name, spec, dir, ioPath: existsSync(io) ? io : null, weightsPath: existsSync(w) ? w : null });
  }
  return cases;
}

/** Areas selected with `npm run test:parity -- AREA...` (all when none given). */
export function areaSelected(area: string): boolean {
  const sel = process.env.SGM_PARITY_AREAS;
  if (!sel) return true;
  return sel.split(',').map((s) => s.trim()).includes(area);
}

export type CaseRunner = (c: ParityCase, t: TestContext) => void | Promise<void>;

/**
 * Registers one test per case of `area`, dispatched on the case's kind. Kinds without a runner
 * are listed in a `todo` test by name (they belong to later work), never silently passed.
 * A missing fixture root fails; a missing area folder under an existing root is reported.
 */
export function parityArea(area: string, runners: Record<string, CaseRunner>): void {
  if (!areaSelected(area)) return;
  const root = fixtureRoot();
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    test(`parity ${area}: fixture root`, () => {
      assert.fail(
        `fixture root ${root} does not exist: put the fixtures at ../shared/fixtures beside the repository or set SGM_FIXTURES_DIR`,
      );
    });
    return;
  }
  if (!existsSync(join(root, area))) {
    test(`parity ${area}: area folder ${join(root, area)} is absent, area not run`, { todo: 'fixtures for this area are absent' }, () => {});
    return;
  }
  const cases = discoverCases(area);
  const pending = new Map<string, string[]>();
  for (const c of cases) {
    const run = runners[c.spec.kind];
    if (!run) {
      const list = pending.get(c.spec.kind) ?? [];
      list.push(c.name);
      pending.set(c.spec.kind, list);
      continue;
    }
    test(`parity ${area}/${c.name} [${c.spec.kind}]`, (t) => run(c, t));
  }
  for (const [kind, names] of pending) {
    test(
      `parity ${area}: kind "${kind}" has no runner yet (${names.length} case(s): ${names.join(', ')})`,
      { todo: `kind "${kind}" is not implemented yet` },
      () => {},
    );
  }
}
