#!/usr/bin/env node
// Runs the test suite with node:test (TypeScript through tsx).
//   node scripts/run-tests.mjs            unit + parity tests
//   node scripts/run-tests.mjs --unit     unit tests only
//   node scripts/run-tests.mjs --parity [AREA ...]
//                                         parity tests only, optionally only the named fixture areas
// The fixture root is ../shared/fixtures (beside the repository) unless SGM_FIXTURES_DIR is set.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const parityOnly = args.includes('--parity');
const areas = args.filter((a) => !a.startsWith('--'));

function collect(dir) {
  const out = [];
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries.sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

const files = [];
if (!parityOnly) files.push(...collect(join(root, 'test', 'unit')));
if (!unitOnly) files.push(...collect(join(root, 'test', 'parity')));
if (files.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(1);
}
const env = { ...process.env };
if (areas.length > 0) env.SGM_PARITY_AREAS = areas.join(',');
const res = spawnSync(process.execPath, ['--import', 'tsx', '--test', ...files], {
  cwd: root,
  env,
  stdio: 'inherit',
});
process.exit(res.status ?? 1);
