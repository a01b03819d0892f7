// Reports fixture areas that no parity test runs yet, by name, so an unimplemented area is
// visible in every test run rather than silently absent.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { areaSelected, discoverCases, fixtureRoot } from '../helpers/fixtures.js';

/** Areas with a parity test file (test/parity/<area>.test.ts, or the safetensors sweep for all). */
const AREAS_WITH_RUNNERS = new Set(['framework', 'networks', 'tokenizer', 'encoders', 'watermark', 'pipeline']);

const root = fixtureRoot();
if (existsSync(root)) {
  for (const area of readdirSync(root).sort()) {
    if (!statSync(join(root, area)).isDirectory() || AREAS_WITH_RUNNERS.has(area) || !areaSelected(area)) continue;
    const cases = discoverCases(area);
    const kinds = [...new Set(cases.map((c) => c.spec.kind as string))].sort();
    test(
      `parity ${area}: ${cases.length} case(s) of kinds ${kinds.join(', ')} have no runner yet`,
      { todo: `fixture area "${area}" is not implemented yet` },
      () => {},
    );
  }
}
