// safetensors reader/writer and the 16-bit float conversions.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import {
  MAX_HEADER_BYTES,
  SAFETENSORS_ITEMSIZE,
  SafetensorsError,
  SafetensorsFile,
  SafetensorsWriter,
  bytesToArray,
  findDuplicateJsonKey,
  readSafetensors,
  writeSafetensors,
  type SafetensorsDType,
  type TensorToWrite,
} from '../../src/io/safetensors.js';
import { bf16ToF32, f16ToF32, f32BitsToF16, f32ToBf16, f32ToF16 } from '../../src/tensor/dtype-convert.js';

let dir = '';
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgm-st-'));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

let counter = 0;
function tmpPath(name = 'f'): string {
  return path.join(dir, `${name}-${counter++}.safetensors`);
}

/** Temporary files the writer may have left in `dir`. */
function tempFiles(): string[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'));
}

/** Assembles a file: the 8-byte length (or `len`), the header text (or bytes), then `data`. */
function rawFile(header: string | Uint8Array, data: Uint8Array = new Uint8Array(0), len?: bigint): string {
  const h = typeof header === 'string' ? Buffer.from(header, 'utf8') : Buffer.from(header);
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(len ?? BigInt(h.length));
  const p = tmpPath('bad');
  fs.writeFileSync(p, Buffer.concat([lenBuf, h, data]));
  return p;
}

function headerFile(header: unknown, dataBytes: number): string {
  return rawFile(JSON.stringify(header), new Uint8Array(dataBytes));
}

/** Asserts that opening `p` throws a SafetensorsError naming the file and matching `problem`. */
function assertBad(p: string, problem: RegExp): void {
  let err: unknown;
  try {
    SafetensorsFile.open(p).close();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof SafetensorsError, `expected a SafetensorsError for ${p}, got ${String(err)}`);
  assert.ok(err.message.startsWith(`${p}: `), `message does not start with the path: ${err.message}`);
  assert.equal(err.file, p);
  assert.match(err.message, problem);
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

describe('safetensors round trip', () => {
  it('round-trips every dtype with metadata', () => {
    const tensors: Record<string, TensorToWrite> = {
      f64: { dtype: 'F64', shape: [2, 2], data: new Float64Array([1.5, -0, Number.MAX_VALUE, Number.MIN_VALUE]) },
      f32: { dtype: 'F32', shape: [3], data: new Float32Array([1, -2.5, Infinity]) },
      f16: { dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0xfc00]) },
      bf16: { dtype: 'BF16', shape: [1, 2], data: new Uint16Array([0x3f80, 0x7fc1]) },
      i64: { dtype: 'I64', shape: [3], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 7n]) },
      i32: { dtype: 'I32', shape: [2], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1]) },
      i16: { dtype: 'I16', shape: [2], data: new Int16Array([-32768, 32767]) },
      i8: { dtype: 'I8', shape: [3], data: new Int8Array([-128, 0, 127]) },
      u8: { dtype: 'U8', shape: [2, 1], data: new Uint8Array([0, 255]) },
      bool: { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
    };
    const meta = { format: 'pt', note: 'ünïcode "quoted" \\ and\nnewline', '': 'empty key' };
    const p = tmpPath();
    writeSafetensors(p, tensors, meta);
    const f = SafetensorsFile.open(p);
    try {
      assert.deepEqual(f.metadata, meta);
      assert.deepEqual(new Set(f.keys()), new Set(Object.keys(tensors)));
      for (const [name, t] of Object.entries(tensors)) {
        const info = f.info(name);
        assert.equal(info.dtype, t.dtype, name);
        assert.deepEqual(info.shape, t.shape, name);
        const got = f.read(name);
        assert.equal(got.constructor.name, name === 'bool' || name === 'u8' ? 'Uint8Array' : t.data.constructor.name, name);
        assert.deepEqual(bytesOf(got), bytesOf(t.data), name);
        // The writer aligns every tensor to its itemsize within the file.
        assert.equal(info.fileOffset % SAFETENSORS_ITEMSIZE[info.dtype], 0, `${name} is misaligned`);
      }
    } finally {
      f.close();
    }
    const all = readSafetensors(p);
    assert.equal(all.size, 10);
    assert.deepEqual([...(all.get('i64')!.data as BigInt64Array)], [-(2n ** 63n), 2n ** 63n - 1n, 7n]);
  });

  it('round-trips a Map, empty tensors and scalars', () => {
    const p = tmpPath();
    const m = new Map<string, TensorToWrite>([
      ['scalar', { dtype: 'F32', shape: [], data: new Float32Array([3.25]) }],
      ['empty', { dtype: 'F16', shape: [0], data: new Uint16Array(0) }],
      ['empty2d', { dtype: 'I64', shape: [4, 0], data: new BigInt64Array(0) }],
      ['10', { dtype: 'U8', shape: [1], data: new Uint8Array([9]) }],
    ]);
    writeSafetensors(p, m);
    const got = readSafetensors(p);
    assert.deepEqual(got.get('scalar'), { dtype: 'F32', shape: [], data: new Float32Array([3.25]) });
    assert.deepEqual(got.get('empty')!.shape, [0]);
    assert.equal(got.get('empty')!.data.length, 0);
    assert.deepEqual(got.get('empty2d')!.shape, [4, 0]);
    assert.equal(got.get('10')!.data[0], 9);
    const f = SafetensorsFile.open(p);
    assert.deepEqual(f.metadata, {});
    f.close();
  });

  it('writes a file with no tensors', () => {
    const p = tmpPath();
    writeSafetensors(p, {}, { a: 'b' });
    const f = SafetensorsFile.open(p);
    assert.deepEqual(f.keys(), []);
    assert.deepEqual(f.metadata, { a: 'b' });
    f.close();
  });

  it('lays the file out exactly as the format specifies (hand-assembled bytes)', () => {
    const p = tmpPath();
    writeSafetensors(
      p,
      {
        b: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) },
        a: { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) },
        c: { dtype: 'I64', shape: [], data: new BigInt64Array([5n]) },
      },
      { fmt: 'pt' },
    );
    // Data order: itemsize descending, then name: c (I64), b (F32), a (U8).
    const json =
      '{"__metadata__":{"fmt":"pt"},' +
      '"c":{"dtype":"I64","shape":[],"data_offsets":[0,8]},' +
      '"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},' +
      '"a":{"dtype":"U8","shape":[3],"data_offsets":[16,19]}}';
    assert.equal(json.length, 189);
    const padded = json + '   '; // padded with spaces to 192 = 24 * 8
    const expected = Buffer.concat([
      Buffer.from([192, 0, 0, 0, 0, 0, 0, 0]), // u64 little-endian header size
      Buffer.from(padded, 'ascii'),
      Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]), // c = 5 as i64 LE
      Buffer.from([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40]), // b = [1.0f, 2.0f]
      Buffer.from([1, 2, 3]), // a
    ]);
    assert.deepEqual(fs.readFileSync(p), expected);
  });
});

describe('safetensors atomic writes', () => {
  function writeOld(): string {
    const p = tmpPath('atomic');
    writeSafetensors(p, { old: { dtype: 'U8', shape: [1], data: new Uint8Array([42]) } });
    return p;
  }

  function assertOld(p: string): void {
    const got = readSafetensors(p);
    assert.deepEqual([...got.keys()], ['old']);
    assert.equal(got.get('old')!.data[0], 42);
    assert.deepEqual(tempFiles(), []);
  }

  it('keeps the old file when data does not match its shape', () => {
    const p = writeOld();
    assert.throws(
      () => writeSafetensors(p, { x: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }),
      (e: unknown) => e instanceof SafetensorsError && e.message.startsWith(`${p}: `) && /12 bytes .* needs 16/.test(e.message),
    );
    assertOld(p);
  });

  it('rejects data of the wrong kind, bad BOOL bytes and bad names or metadata', () => {
    const p = writeOld();
    const cases: Array<[() => void, RegExp]> = [
      [() => writeSafetensors(p, { x: { dtype: 'F16', shape: [2], data: new Float32Array(1) } }), /Float32Array.*F16/],
      [() => writeSafetensors(p, { x: { dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 2]) } }), /BOOL byte 1 is 2/],
      [() => writeSafetensors(p, { __metadata__: { dtype: 'U8', shape: [0], data: new Uint8Array(0) } }), /reserved/],
      [() => writeSafetensors(p, { '\ud800': { dtype: 'U8', shape: [0], data: new Uint8Array(0) } }), /surrogate/],
      [() => writeSafetensors(p, { x: { dtype: 'U32' as SafetensorsDType, shape: [0], data: new Uint8Array(0) } }), /unknown dtype "U32"/],
      [() => writeSafetensors(p, { x: { dtype: 'U8', shape: [-1], data: new Uint8Array(0) } }), /negative/],
      [() => writeSafetensors(p, {}, { k: 3 as unknown as string }), /metadata "k" is 3/],
    ];
    for (const [f, re] of cases) {
      assert.throws(f, (e: unknown) => e instanceof SafetensorsError && e.message.startsWith(`${p}: `) && re.test(e.message));
      assertOld(p);
    }
  });

  it('keeps the old file and removes the temporary one when the writer is not finished', () => {
    const p = writeOld();
    const w = SafetensorsWriter.create(p, [
      { name: 'a', dtype: 'F32', shape: [2] },
      { name: 'b', dtype: 'U8', shape: [2] },
    ]);
    assert.ok(fs.existsSync(w.tempPath));
    assert.equal(path.dirname(w.tempPath), dir);
    assert.match(path.basename(w.tempPath), new RegExp(`^\\.${path.basename(p).replace('.', '\\.')}\\.${process.pid}\\.[0-9a-f]+\\.tmp$`));
    w.write('a', new Float32Array([1, 2]));
    assert.throws(() => w.commit(), /"b" \(0\/2 bytes\)/);
    assert.ok(!fs.existsSync(w.tempPath));
    assert.throws(() => w.write('b', new Uint8Array(2)), /writer is aborted/);
    assertOld(p);
  });

  it('aborts on writing too many bytes, and abort() discards', () => {
    const p = writeOld();
    const w = SafetensorsWriter.create(p, { a: { dtype: 'U8', shape: [2] } });
    assert.throws(() => w.write('a', new Uint8Array(3)), /3 bytes given but U8\[2\] has 2/);
    assertOld(p);
    const w2 = SafetensorsWriter.create(p, { a: { dtype: 'U8', shape: [2] } });
    w2.abort();
    w2.abort();
    assertOld(p);
  });

  it('fails cleanly when the file cannot be renamed into place', () => {
    const target = path.join(dir, `a-directory-${counter++}`);
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'keep'), 'x');
    assert.throws(
      () => writeSafetensors(target, { a: { dtype: 'U8', shape: [1], data: new Uint8Array([1]) } }),
      (e: unknown) => e instanceof SafetensorsError && e.message.startsWith(`${target}: cannot finish writing`),
    );
    assert.ok(fs.statSync(target).isDirectory());
    assert.deepEqual(tempFiles(), []);
  });

  it('fails cleanly when the directory does not exist', () => {
    const p = path.join(dir, 'no-such-dir', 'x.safetensors');
    assert.throws(() => writeSafetensors(p, {}), (e: unknown) => e instanceof SafetensorsError && /cannot create the temporary file/.test(e.message));
  });

  it('streams tensors in pieces and in any order', () => {
    const p = tmpPath('stream');
    const big = new Float32Array(1000).map((_, i) => i * 0.5);
    const w = SafetensorsWriter.create(p, [
      { name: 'big', dtype: 'F32', shape: [10, 100] },
      { name: 'ids', dtype: 'I32', shape: [3] },
      { name: 'none', dtype: 'BF16', shape: [0] },
    ]);
    assert.equal(w.remaining('big'), 4000);
    w.write('ids', new Int32Array([1, 2, 3]));
    for (let i = 0; i < 1000; i += 300) w.write('big', big.subarray(i, Math.min(i + 300, 1000)));
    assert.equal(w.remaining('big'), 0);
    w.commit();
    assert.equal(fs.statSync(p).size, w.totalBytes);
    const got = readSafetensors(p);
    assert.deepEqual(got.get('big')!.data, big);
    assert.deepEqual(got.get('ids')!.data, new Int32Array([1, 2, 3]));
    assert.deepEqual(tempFiles(), []);
  });
});

describe('safetensors corrupt and hostile files', () => {
  const ok = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };

  it('accepts the well-formed baseline used below', () => {
    const f = SafetensorsFile.open(headerFile(ok, 8));
    assert.deepEqual(f.keys(), ['w']);
    f.close();
  });

  it('rejects files too short to hold a header length', () => {
    const empty = tmpPath('empty');
    fs.writeFileSync(empty, '');
    assertBad(empty, /0 byte\(s\), fewer than the 8-byte header length/);
    const five = tmpPath('five');
    fs.writeFileSync(five, Buffer.from([1, 2, 3, 4, 5]));
    assertBad(five, /5 byte\(s\)/);
  });

  it('rejects header lengths that are huge or past the end of the file', () => {
    assertBad(rawFile('{}', undefined, 2n ** 63n), /header length 9223372036854775808 is larger than the file .* over the 100000000-byte limit/);
    assertBad(rawFile('{}', undefined, 2n ** 64n - 1n), /header length 18446744073709551615/);
    assertBad(rawFile('{}', undefined, BigInt(MAX_HEADER_BYTES + 1)), /over the 100000000-byte limit/);
    assertBad(rawFile('{}', undefined, 1000n), /truncated: the header length says 1000 bytes but only 2 follow it/);
    assertBad(rawFile('', undefined, 0n), /header length is 0/);
  });

  it('rejects headers that are not UTF-8, not JSON or not an object', () => {
    assertBad(rawFile(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])), /not valid UTF-8/);
    assertBad(rawFile('{"w": '), /not valid JSON/);
    assertBad(rawFile('PK\u0003\u0004 zip?'), /not valid JSON/);
    assertBad(rawFile('[1, 2]'), /header is a JSON array, not an object/);
    assertBad(rawFile('"str"'), /JSON string, not an object/);
    assertBad(rawFile('null'), /JSON null, not an object/);
    assertBad(rawFile('42'), /JSON number/);
  });

  it('rejects duplicate keys', () => {
    const e = '{"dtype":"U8","shape":[1],"data_offsets":[0,1]}';
    assertBad(rawFile(`{"a":${e},"a":${e}}`, new Uint8Array(1)), /key "a" twice/);
    assertBad(rawFile(`{"a":${e},"\\u0061":${e}}`, new Uint8Array(1)), /key "a" twice/);
    assertBad(rawFile(`{"__metadata__":{"k":"1","k":"2"}}`), /key "__metadata__" > "k" twice/);
    assertBad(rawFile(`{"a":{"dtype":"U8","dtype":"F32","shape":[1],"data_offsets":[0,1]}}`, new Uint8Array(4)), /key "a" > "dtype" twice/);
  });

  it('rejects bad metadata', () => {
    assertBad(headerFile({ __metadata__: { a: 'x', n: 1 }, ...ok }, 8), /__metadata__ "n" is 1; metadata values must be strings/);
    assertBad(headerFile({ __metadata__: { a: { b: 'c' } } }, 0), /__metadata__ "a" is \{"b":"c"\}/);
    assertBad(headerFile({ __metadata__: ['a'] }, 0), /__metadata__ is \["a"\], not an object of strings/);
    assertBad(headerFile({ __metadata__: 'x' }, 0), /not an object of strings/);
    // null is "no metadata", as in the reference reader; "__proto__" is an ordinary key.
    const f = SafetensorsFile.open(rawFile('{"__metadata__":{"__proto__":"x"}}'));
    assert.equal(Object.getOwnPropertyDescriptor(f.metadata, '__proto__')?.value, 'x');
    f.close();
    SafetensorsFile.open(headerFile({ __metadata__: null }, 0)).close();
  });

  it('rejects unknown dtypes and bad entries', () => {
    assertBad(headerFile({ w: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }, 16), /tensor "w": unknown dtype "F128" \(known: F64, F32/);
    assertBad(headerFile({ w: { dtype: 'U32', shape: [1], data_offsets: [0, 4] } }, 4), /dtype U32 is not supported by sgm-ts .* convert the checkpoint/);
    assertBad(headerFile({ w: { shape: [1], data_offsets: [0, 4] } }, 4), /tensor "w": entry has no "dtype"/);
    assertBad(headerFile({ w: { dtype: 'F32', data_offsets: [0, 4] } }, 4), /entry has no "shape"/);
    assertBad(headerFile({ w: { dtype: 'F32', shape: [1] } }, 4), /entry has no "data_offsets"/);
    assertBad(headerFile({ w: [1, 2] }, 0), /tensor "w": entry \[1,2\] is not an object/);
    assertBad(headerFile({ w: 3 }, 0), /entry 3 is not an object/);
  });

  it('rejects bad shapes', () => {
    const t = (shape: unknown) => headerFile({ w: { dtype: 'F32', shape, data_offsets: [0, 4] } }, 4);
    assertBad(t([-1]), /dimension 0 \(-1\) is negative/);
    assertBad(t([1.5]), /dimension 0 \(1.5\) is not an integer/);
    assertBad(t(['1']), /dimension 0 is not a number/);
    assertBad(t([1, null]), /dimension 1 is not a number/);
    assertBad(t(7), /shape 7 is not a list/);
    assertBad(t([1e300]), /dimension 0 \(1e\+300\) is too large/);
    assertBad(t([2 ** 40, 2 ** 40]), /more than 2\^53 elements/);
    assertBad(t([2 ** 26, 2 ** 26]), /larger than any file can hold/);
    assertBad(rawFile('{"w":{"dtype":"F32","shape":[1e999],"data_offsets":[0,4]}}', new Uint8Array(4)), /not a number/);
  });

  it('rejects bad data_offsets', () => {
    const t = (data_offsets: unknown, bytes = 8) => headerFile({ w: { dtype: 'F32', shape: [2], data_offsets } }, bytes);
    assertBad(t([0, 4]), /data_offsets \[0, 4\] span 4 bytes but F32\[2\] needs 8/);
    assertBad(t([8, 0]), /must be \[begin, end\]/);
    assertBad(t([-8, 0]), /must be \[begin, end\]/);
    assertBad(t([0, 8, 16]), /must be \[begin, end\]/);
    assertBad(t('0,8'), /must be \[begin, end\]/);
    assertBad(t([0, 2 ** 60]), /must be \[begin, end\]/);
    assertBad(t([0.5, 8.5]), /must be \[begin, end\]/);
    assertBad(t([0, 8], 4), /data ends at byte 8 of the data section, which has only 4 bytes: the file is truncated/);
    assertBad(t([8, 16]), /data ends at byte 16 .* only 8 bytes/);
  });

  it('rejects truncated data and claims bigger than the file without allocating them', () => {
    const p = headerFile(ok, 8);
    const full = fs.readFileSync(p);
    fs.writeFileSync(p, full.subarray(0, full.length - 3));
    assertBad(p, /truncated/);
    // A header claiming a 1 TiB tensor in a tiny file is refused before anything is allocated.
    const before = process.memoryUsage().rss;
    assertBad(headerFile({ w: { dtype: 'U8', shape: [2 ** 40], data_offsets: [0, 2 ** 40] } }, 16), /truncated/);
    assert.ok(process.memoryUsage().rss - before < 64 * 2 ** 20);
  });

  it('rejects overlapping tensors', () => {
    const e = (b: number, n: number) => ({ dtype: 'U8', shape: [n], data_offsets: [b, b + n] });
    assertBad(headerFile({ a: e(0, 8), b: e(4, 8) }, 12), /tensors "a" and "b" overlap/);
    assertBad(headerFile({ a: e(0, 8), b: e(0, 8) }, 8), /overlap/);
    // An overlap hidden behind an empty tensor between the two is still found.
    assertBad(headerFile({ a: e(0, 100), z: e(10, 0), c: e(50, 10) }, 100), /"a" and "c" overlap/);
    // Adjacent and empty tensors are fine; so are gaps (the format's own reader is stricter).
    const f = SafetensorsFile.open(headerFile({ a: e(0, 4), b: e(4, 4), z: e(4, 0), g: e(10, 2) }, 12));
    assert.deepEqual(f.keys().sort(), ['a', 'b', 'g', 'z']);
    f.close();
  });

  it('reports missing files, directories and closed files', () => {
    const missing = path.join(dir, 'missing.safetensors');
    assertBad(missing, /cannot open/);
    assertBad(dir, /cannot|not a regular file/);
    const f = SafetensorsFile.open(headerFile(ok, 8));
    assert.throws(() => f.read('nope'), (e: unknown) => e instanceof SafetensorsError && /no tensor named "nope"/.test(e.message));
    f.close();
    assert.throws(() => f.read('w'), /file is closed/);
    f.close();
  });

  it('never fails with anything but a SafetensorsError on mutated files (deterministic fuzz)', () => {
    const p = tmpPath('fuzz-src');
    writeSafetensors(
      p,
      {
        a: { dtype: 'F32', shape: [2, 3], data: new Float32Array(6).fill(1) },
        b: { dtype: 'I64', shape: [2], data: new BigInt64Array([1n, 2n]) },
        c: { dtype: 'BF16', shape: [], data: new Uint16Array([0x3f80]) },
      },
      { k: 'v' },
    );
    const good = fs.readFileSync(p);
    const headerEnd = 8 + Number(good.readBigUInt64LE(0));
    let seed = 1;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const q = tmpPath('fuzz');
    let rejected = 0;
    for (let iter = 0; iter < 400; iter++) {
      const b = Buffer.from(good);
      const kind = rnd(4);
      if (kind === 0) b[rnd(headerEnd)] = rnd(256); // any byte of length or header
      else if (kind === 1) b[8 + rnd(headerEnd - 8)] = '{}[]":,0123456789-.e"\\ '.charCodeAt(rnd(24)); // JSON syntax
      else if (kind === 2) b[rnd(8)] = rnd(256); // the length
      const data = kind === 3 ? b.subarray(0, rnd(b.length)) : b; // truncation
      fs.writeFileSync(q, data);
      try {
        const f = SafetensorsFile.open(q);
        for (const k of f.keys()) assert.equal(f.readBytes(k).byteLength, f.info(k).byteLength);
        f.close();
      } catch (e) {
        if (!(e instanceof SafetensorsError)) throw new Error(`iteration ${iter}: ${String(e)}`);
        assert.ok(e.message.startsWith(`${q}: `));
        rejected++;
      }
    }
    assert.ok(rejected > 100, `only ${rejected} mutations were rejected`);
  });

  it('finds duplicate keys at any depth, and only duplicates', () => {
    assert.equal(findDuplicateJsonKey('{"a":1,"b":{"a":2,"c":[{"a":1},{"a":2}]}}'), null);
    assert.equal(findDuplicateJsonKey('{"a\\"b":1,"a\\\\":2,"x":"{\\"a\\":1}"}'), null);
    assert.deepEqual(findDuplicateJsonKey('{"a":1,"b":{"x":1,"y":[{"k":1,"k":2}]}}'), ['b', 'y', '[]', 'k']);
    assert.deepEqual(findDuplicateJsonKey('{"\\u00e9":1,"é":2}'), ['é']);
  });
});

describe('safetensors lazy reading', () => {
  it('opens a 200 MB file by reading its header only', () => {
    const p = tmpPath('big');
    const n = 50 * 2 ** 20; // 50 Mi floats = 200 MiB
    const tail = new Float32Array([1, 2, 3, 4]);
    // Only the header and the last 16 bytes are written: the rest stays a sparse hole.
    const h = Buffer.from('{"big":{"dtype":"F32","shape":[' + n + '],"data_offsets":[0,' + 4 * n + ']}}');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(h.length));
    const fd = fs.openSync(p, 'w');
    fs.writeSync(fd, Buffer.concat([len, h]));
    fs.ftruncateSync(fd, 8 + h.length + 4 * n);
    fs.writeSync(fd, bytesOf(tail), 0, 16, 8 + h.length + 4 * n - 16);
    fs.closeSync(fd);

    // Count the bytes read through fs.readSync while opening.
    const real = fs.readSync;
    let bytesRead = 0;
    (fs as { readSync: unknown }).readSync = (...args: Parameters<typeof fs.readSync>) => {
      const r = (real as (...a: unknown[]) => number)(...args);
      bytesRead += r;
      return r;
    };
    syncBuiltinESMExports();
    const rss0 = process.memoryUsage().rss;
    const t0 = performance.now();
    let f: SafetensorsFile;
    try {
      f = SafetensorsFile.open(p);
    } finally {
      (fs as { readSync: unknown }).readSync = real;
      syncBuiltinESMExports();
    }
    const ms = performance.now() - t0;
    assert.equal(bytesRead, 8 + h.length, 'open() must read the length and the header only');
    assert.ok(ms < 500, `open took ${ms} ms`);
    assert.ok(process.memoryUsage().rss - rss0 < 32 * 2 ** 20, 'open() must not allocate the tensor');
    assert.equal(f.info('big').byteLength, 4 * n);
    const last = new Uint8Array(16);
    f.readChunk('big', 4 * n - 16, last);
    assert.deepEqual(bytesToArray(last, 'F32'), tail);
    assert.throws(() => f.readChunk('big', 4 * n - 8, last), /outside the tensor/);
    f.close();
  });

  it('readInto and readFloat32', () => {
    const p = tmpPath();
    writeSafetensors(p, {
      h: { dtype: 'F16', shape: [3], data: new Uint16Array([0x3c00, 0xc000, 0x7bff]) },
      b: { dtype: 'BF16', shape: [1], data: new Uint16Array([0x3f80]) },
      d: { dtype: 'F64', shape: [1], data: new Float64Array([0.5]) },
      i: { dtype: 'I32', shape: [1], data: new Int32Array([1]) },
    });
    const f = SafetensorsFile.open(p);
    try {
      assert.deepEqual(f.readFloat32('h'), new Float32Array([1, -2, 65504]));
      assert.deepEqual(f.readFloat32('b'), new Float32Array([1]));
      assert.deepEqual(f.readFloat32('d'), new Float32Array([0.5]));
      assert.throws(() => f.readFloat32('i'), /not a floating-point type/);
      const dst = new Uint8Array(6);
      f.readInto('h', dst);
      assert.deepEqual(dst, new Uint8Array([0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b]));
      f.readInto(f.info('h'), dst);
      assert.throws(() => f.readInto('h', new Uint8Array(5)), /buffer has 5 bytes, tensor has 6/);
    } finally {
      f.close();
    }
  });

  it('bytesToArray copies misaligned bytes and rejects partial elements', () => {
    const buf = new Uint8Array(9);
    buf.set([0, 0, 0x80, 0x3f], 1);
    assert.deepEqual(bytesToArray(buf.subarray(1, 5), 'F32'), new Float32Array([1]));
    assert.throws(() => bytesToArray(buf.subarray(0, 3), 'F32'), RangeError);
  });
});

describe('16-bit float conversions', () => {
  const f32bits = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0]!;
  const fromBits = (b: number) => new Float32Array(new Uint32Array([b]).buffer)[0]!;
  const toF16 = (x: number) => f32ToF16(new Float32Array([x]))[0]!;
  const toBf16 = (x: number) => f32ToBf16(new Float32Array([x]))[0]!;
  const h2f = (h: number) => f16ToF32(new Uint16Array([h]))[0]!;

  it('f16 -> f32 for hand-checked patterns', () => {
    assert.equal(h2f(0x3c00), 1);
    assert.equal(h2f(0xc000), -2);
    assert.equal(h2f(0x7bff), 65504);
    assert.equal(h2f(0x0001), 2 ** -24); // smallest subnormal
    assert.equal(h2f(0x03ff), 1023 * 2 ** -24); // largest subnormal
    assert.equal(h2f(0x0400), 2 ** -14); // smallest normal
    assert.equal(h2f(0x3555), 0.333251953125);
    assert.equal(h2f(0x7c00), Infinity);
    assert.equal(h2f(0xfc00), -Infinity);
    assert.ok(Object.is(h2f(0x0000), 0));
    assert.ok(Object.is(h2f(0x8000), -0));
    assert.ok(Number.isNaN(h2f(0x7e00)));
    // NaN payloads survive: signalling 0x7c01 -> 0x7f802000.
    const out = f16ToF32(new Uint16Array([0x7c01, 0xfe00]));
    assert.deepEqual([...new Uint32Array(out.buffer)], [0x7f802000, 0xffc00000]);
  });

  it('f32 -> f16 rounds to nearest even, with overflow, subnormals, NaN and zeros', () => {
    assert.equal(toF16(1), 0x3c00);
    assert.equal(toF16(-2), 0xc000);
    assert.equal(toF16(65504), 0x7bff);
    assert.equal(toF16(65519.99), 0x7bff); // below the midpoint to 65536
    assert.equal(toF16(65520), 0x7c00); // the midpoint ties to even: inf
    assert.equal(toF16(1e6), 0x7c00);
    assert.equal(toF16(-1e6), 0xfc00);
    assert.equal(toF16(Infinity), 0x7c00);
    assert.equal(toF16(-Infinity), 0xfc00);
    assert.equal(toF16(2 ** -24), 0x0001);
    assert.equal(toF16(2 ** -25), 0x0000); // exactly half the smallest subnormal: ties to even (0)
    assert.equal(toF16(fromBits(f32bits(2 ** -25) + 1)), 0x0001); // just above: rounds up
    assert.equal(toF16(3 * 2 ** -25), 0x0002); // 1.5 units: ties to even (2)
    assert.equal(toF16(5 * 2 ** -25), 0x0002); // 2.5 units: ties to even (2)
    assert.equal(toF16(2 ** -26), 0x0000);
    assert.equal(toF16(1023.5 * 2 ** -24), 0x0400); // rounds up into the smallest normal
    assert.equal(toF16(1 + 2 ** -11), 0x3c00); // tie between 1 and 1+2^-10: even (1)
    assert.equal(toF16(1 + 3 * 2 ** -11), 0x3c02); // tie: even (1+2^-9)
    assert.equal(toF16(1 + 2 ** -11 + 2 ** -20), 0x3c01); // above the tie
    assert.equal(toF16(2049), 0x6800); // 2048 + 1: tie, even (2048)
    assert.equal(toF16(2051), 0x6802); // tie, even (2052)
    assert.equal(toF16(0), 0x0000);
    assert.equal(toF16(-0), 0x8000);
    assert.equal(toF16(1e-10), 0x0000);
    assert.equal(toF16(-1e-10), 0x8000);
    assert.equal(toF16(NaN), 0x7e00);
    assert.equal(f32BitsToF16(0xff800001), 0xfe00); // a signalling NaN with a low payload stays NaN
    assert.equal(f32BitsToF16(0x7fffffff), 0x7fff);
  });

  it('f32 -> f16 -> f32 is the identity on every half value', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f32ToF16(f16ToF32(all));
    for (let i = 0; i < 65536; i++) {
      const isNaN = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
      if (isNaN) assert.equal(back[i]! & 0x7e00, 0x7e00, `NaN ${i.toString(16)}`);
      else if (back[i] !== i) assert.fail(`half 0x${i.toString(16)} came back as 0x${back[i]!.toString(16)}`);
    }
  });

  it('bf16 conversions', () => {
    assert.equal(toBf16(1), 0x3f80);
    assert.equal(toBf16(-2), 0xc000);
    assert.equal(toBf16(1.00390625), 0x3f80); // 1 + 2^-8: tie, even (1)
    assert.equal(toBf16(1.01171875), 0x3f82); // 1 + 3*2^-8: tie, even (1 + 2^-6)
    assert.equal(toBf16(1.0078125), 0x3f81); // exactly representable
    assert.equal(toBf16(fromBits(0x3f808001)), 0x3f81); // above the tie
    assert.equal(toBf16(fromBits(0x7f7fffff)), 0x7f80); // max float rounds to inf
    assert.equal(toBf16(Infinity), 0x7f80);
    assert.equal(toBf16(-Infinity), 0xff80);
    assert.equal(toBf16(0), 0x0000);
    assert.equal(toBf16(-0), 0x8000);
    assert.equal(toBf16(NaN), 0x7fc0);
    assert.equal(toBf16(fromBits(0x7f800001)), 0x7fc0); // payload only in the low bits: still NaN
    assert.equal(toBf16(fromBits(0x00000001)), 0x0000); // f32 subnormal rounds to zero
    const b = bf16ToF32(new Uint16Array([0x3f80, 0xc000, 0x7f80, 0x0001, 0x8000]));
    assert.deepEqual([...b.slice(0, 3)], [1, -2, Infinity]);
    assert.equal(b[3], 2 ** -133);
    assert.ok(Object.is(b[4], -0));
  });

  it('writes into a given output and checks its length', () => {
    const out = new Float32Array(2);
    assert.equal(f16ToF32(new Uint16Array([0x3c00, 0x4000]), out), out);
    assert.deepEqual(out, new Float32Array([1, 2]));
    assert.throws(() => f32ToF16(new Float32Array(3), new Uint16Array(2)), RangeError);
  });

  it('converts 10M elements quickly', () => {
    const n = 10_000_000;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = (i % 1000) * 0.37 - 150;
    const t0 = performance.now();
    const h = f32ToF16(x);
    const back = f16ToF32(h);
    const b = f32ToBf16(x);
    bf16ToF32(b);
    const ms = performance.now() - t0;
    assert.ok(ms < 2000, `four 10M conversions took ${ms} ms`);
    assert.ok(Math.abs(back[1234]! - x[1234]!) <= Math.abs(x[1234]!) * 2 ** -11);
  });
});
