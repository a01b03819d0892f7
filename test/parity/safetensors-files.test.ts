// Every *.safetensors file under the fixture root (written by the reference implementation) must
// open with the lazy reader, agree with an independent parse of its header, read every tensor at
// the right byte length, and, for 16-bit float tensors, convert to float32 and back losslessly.
// One test per area folder (the root's first-level folders), one subtest per file.
import test, { type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { areaSelected, fixtureRoot } from '../helpers/fixtures.js';
import { SAFETENSORS_ITEMSIZE, SafetensorsFile, type SafetensorsDType } from '../../src/io/safetensors.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/tensor/dtype-convert.js';

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.safetensors')) out.push(p);
  }
  return out;
}

/** The header as parsed here, independently of the reader: name -> [dtype, shape, begin, end]. */
function rawHeader(path: string): { dataStart: number; entries: Map<string, [string, number[], number, number]> } {
  const fd = openSync(path, 'r');
  try {
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    const h = Buffer.alloc(n);
    readSync(fd, h, 0, n, 8);
    const json = JSON.parse(h.toString('utf8')) as Record<string, any>;
    const entries = new Map<string, [string, number[], number, number]>();
    for (const [k, v] of Object.entries(json)) {
      if (k !== '__metadata__') entries.set(k, [v.dtype, v.shape, v.data_offsets[0], v.data_offsets[1]]);
    }
    return { dataStart: 8 + n, entries };
  } finally {
    closeSync(fd);
  }
}

function checkFile(path: string): void {
  const size = statSync(path).size;
  const raw = rawHeader(path);
  const f = SafetensorsFile.open(path);
  try {
    assert.equal(f.keys().length, raw.entries.size, 'tensor count');
    let covered = 0;
    for (const info of f.tensors()) {
      const r = raw.entries.get(info.name);
      assert.ok(r, `tensor "${info.name}" is not in the header`);
      const [dtype, shape, begin, end] = r;
      assert.equal(info.dtype, dtype, `${info.name}: dtype`);
      assert.deepEqual(info.shape, shape, `${info.name}: shape`);
      assert.equal(info.fileOffset, raw.dataStart + begin, `${info.name}: offset`);
      const numel = shape.reduce((a, b) => a * b, 1);
      const expected = numel * SAFETENSORS_ITEMSIZE[dtype as SafetensorsDType];
      assert.equal(end - begin, expected, `${info.name}: data_offsets span`);
      assert.equal(info.byteLength, expected, `${info.name}: byteLength`);
      covered += expected;
      const bytes = f.readBytes(info.name);
      assert.equal(bytes.byteLength, expected, `${info.name}: bytes read`);
      const arr = f.read(info.name);
      assert.equal(arr.length, numel, `${info.name}: element count`);
      if (info.dtype === 'F16' || info.dtype === 'BF16') {
        const words = arr as Uint16Array;
        const toF32 = info.dtype === 'F16' ? f16ToF32 : bf16ToF32;
        const fromF32 = info.dtype === 'F16' ? f32ToF16 : f32ToBf16;
        const x = toF32(words);
        assert.equal(x.length, numel);
        const back = fromF32(x);
        for (let i = 0; i < numel; i++) {
          if (back[i] !== words[i] && !Number.isNaN(x[i])) {
            assert.fail(`${info.name}[${i}]: ${info.dtype} 0x${words[i]!.toString(16)} -> ${x[i]} -> 0x${back[i]!.toString(16)}`);
          }
        }
        assert.deepEqual(f.readFloat32(info.name), x, `${info.name}: readFloat32`);
      }
    }
    // The reference writer packs the data section with no gaps and no trailing bytes.
    assert.equal(raw.dataStart + covered, size, 'data section is exactly covered by the tensors');
  } finally {
    f.close();
  }
}

const root = fixtureRoot();
if (!existsSync(root) || !statSync(root).isDirectory()) {
  test('safetensors fixture files: fixture root', () => {
    assert.fail(`fixture root ${root} does not exist: put the fixtures at ../shared/fixtures beside the repository or set SGM_FIXTURES_DIR`);
  });
} else {
  // Group by area folder; files directly in the root form their own group.
  const groups = new Map<string, string[]>();
  for (const p of walk(root)) {
    const rel = relative(root, p);
    const area = rel.includes('/') ? rel.slice(0, rel.indexOf('/')) : '(root)';
    if (area !== '(root)' && !areaSelected(area)) continue;
    if (area === '(root)' && process.env.SGM_PARITY_AREAS) continue;
    const list = groups.get(area) ?? [];
    list.push(p);
    groups.set(area, list);
  }
  if (groups.size === 0 && !process.env.SGM_PARITY_AREAS) {
    test('safetensors fixture files', () => assert.fail(`no *.safetensors files under ${root}`));
  }
  for (const [area, files] of groups) {
    test(`safetensors fixture files: ${area} (${files.length} files)`, async (t: TestContext) => {
      for (const p of files) await t.test(relative(root, p), () => checkFile(p));
    });
  }
}
