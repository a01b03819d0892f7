// `sgm detect FILE...` against the stdout lines detect.py printed for the watermark fixtures.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { ImageReadError, readImageRgb, rgbToBgr } from '../../src/io/image.js';
import { fixtureRoot } from '../helpers/fixtures.js';

const dir = join(fixtureRoot(), 'watermark');
const skip = existsSync(dir) ? false : `fixtures not found: ${dir}`;

/** The recorded detect.py stdout of `file`, with the name replaced by the path passed to the CLI. */
function recorded(caseName: string, file: string, path: string): string[] {
  const spec = JSON.parse(readFileSync(join(dir, `${caseName}.json`), 'utf8'));
  const d = (spec.detection as any[]).find((e) => e.file === file);
  assert.ok(d?.detect_py?.stdout_lines, `${file}: no recorded detect.py stdout`);
  return (d.detect_py.stdout_lines as string[]).map((l) => (l.startsWith(`${file}:`) ? path + l.slice(file.length) : l));
}

async function run(args: string[]): Promise<{ code: number; lines: string[] }> {
  let text = '';
  const code = await main(args, (s) => void (text += s));
  return { code, lines: text.split('\n').filter((l, i, a) => !(l === '' && i === a.length - 1)) };
}

test('sgm detect: same two lines as detect.py per file, exit code 0', { skip }, async () => {
  const files: [string, string][] = [
    ['gradient_512', 'gradient_512.output.png'],
    ['peppers_256', 'peppers_256.output.png'],
    ['photo_1024', 'photo_1024.wm_u8.png'],
    ['shapes_513x767', 'shapes_513x767.output.jpeg95.decoded.png'],
    ['thresholds', 'thresholds.m34.png'],
    ['thresholds', 'thresholds.m28.png'],
  ];
  const paths = files.map(([, f]) => join(dir, f));
  const { code, lines } = await run(['detect', ...paths]);
  assert.equal(code, 0);
  assert.deepEqual(lines, files.flatMap(([c, f], i) => recorded(c, f, paths[i]!)));
});

test('sgm detect: an unreadable file gets one error line naming it; the others still run', { skip }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'sgm-detect-'));
  try {
    const bogus = join(tmp, 'bogus.png');
    writeFileSync(bogus, 'this is not an image');
    const missing = join(tmp, 'missing.png');
    const good = join(dir, 'gradient_512.output.png');
    const small = join(dir, 'too_small_255x256.input.png');
    const { code, lines } = await run(['detect', bogus, good, missing, small]);
    assert.equal(code, 0);
    assert.equal(lines.length, 5);
    assert.match(lines[0]!, new RegExp(`^${bogus.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: error: cannot read image `));
    assert.deepEqual(lines.slice(1, 3), recorded('gradient_512', 'gradient_512.output.png', good));
    assert.ok(lines[3]!.startsWith(`${missing}: error: cannot read image ${missing}`), lines[3]);
    assert.equal(lines[4], `${small}: error: image too small, should be larger than 256x256`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('readImageRgb: ImageReadError names the file; rgbToBgr swaps R and B', { skip }, async () => {
  await assert.rejects(readImageRgb('/nonexistent/x.png'), (e: unknown) => e instanceof ImageReadError && e.path === '/nonexistent/x.png' && e.message.includes('/nonexistent/x.png'));
  const img = await readImageRgb(join(dir, 'thresholds.m48.png'));
  assert.equal(img.data.length, img.width * img.height * 3);
  assert.deepEqual([...rgbToBgr(Uint8Array.from([1, 2, 3, 4, 5, 6]))], [3, 2, 1, 6, 5, 4]);
});
