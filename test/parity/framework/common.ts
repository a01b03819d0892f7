// Shared pieces of the framework parity runners: io tensors as engine tensors, comparison of a
// result with an io tensor (shape, dtype, values within the case tolerance; int64 exactly), the
// check that every out.* tensor was compared, and instantiation of the case's target through the
// config path.
import assert from 'node:assert/strict';
import { instantiateFromConfig } from '../../../src/config/index.js';
import '../../../src/registry.js';
import * as T from '../../../src/tensor/index.js';
import { assertClose, type Tolerance } from '../../helpers/close.js';
import { loadIo, type IoTensor, type ParityCase } from '../../helpers/fixtures.js';

const IO_DTYPE: Record<string, T.DType> = { F32: 'float32', F64: 'float64', I64: 'int64', I32: 'int32', BOOL: 'bool', U8: 'uint8' };

export function tolOf(c: ParityCase): Tolerance {
  const t = c.spec.tolerance;
  assert.ok(t && typeof t.atol === 'number' && typeof t.rtol === 'number', `${c.name}: the case has no tolerance {atol, rtol}`);
  return { atol: t.atol, rtol: t.rtol };
}

/** Builds the case's object from `{target, params}` through instantiateFromConfig. */
export function instantiateCase<U>(c: ParityCase, cfg: { target: string; params?: unknown } = { target: c.spec.target, params: c.spec.params ?? {} }): U {
  return instantiateFromConfig<U>(cfg, { path: c.name });
}

/** The io file of a case, with bookkeeping of which out.* tensors were checked. */
export class CaseIo {
  readonly io: Map<string, IoTensor>;
  readonly tol: Tolerance;
  private readonly checked = new Set<string>();

  constructor(readonly c: ParityCase) {
    this.io = loadIo(c);
    this.tol = tolOf(c);
  }

  has(name: string): boolean {
    return this.io.has(name);
  }

  get(name: string): IoTensor {
    const t = this.io.get(name);
    if (!t) throw new Error(`${this.c.name}: io tensor '${name}' is missing (have: ${[...this.io.keys()].join(', ')})`);
    return t;
  }

  dtypeOf(name: string): T.DType {
    const t = this.get(name);
    const d = IO_DTYPE[t.dtype];
    if (!d) throw new Error(`${this.c.name}: io tensor '${name}' has unsupported dtype ${t.dtype}`);
    return d;
  }

  /** An io tensor as an engine constant. */
  tensor(name: string): T.Tensor {
    const t = this.get(name);
    return T.tensor(t.data as T.TypedArray, t.shape, this.dtypeOf(name));
  }

  /** Compares host data with io tensor `name` (shape, dtype, values). Marks it checked. */
  compareData(
    label: string,
    got: { shape: readonly number[]; dtype: T.DType; data: ArrayLike<number> | ArrayLike<bigint> },
    name: string,
    tol: Tolerance = this.tol,
    source?: Map<string, IoTensor>,
  ): void {
    const ref = source ? source.get(name) : this.get(name);
    if (!ref) throw new Error(`${this.c.name}: tensor '${name}' is missing`);
    const what = `${this.c.name}: ${label} vs ${name}`;
    assert.deepEqual([...got.shape], ref.shape, `${what}: shape`);
    assert.equal(got.dtype, IO_DTYPE[ref.dtype], `${what}: dtype`);
    if (got.dtype === 'int64' || got.dtype === 'int32') {
      // indices are compared exactly
      const a = Array.from(got.data as ArrayLike<number | bigint>, (v) => BigInt(v));
      const e = Array.from(ref.data as ArrayLike<number | bigint>, (v) => BigInt(v));
      const bad = e.findIndex((v, i) => v !== a[i]);
      assert.ok(bad < 0, `${what}: ${e.filter((v, i) => v !== a[i]).length}/${e.length} indices differ; first at [${bad}]: got ${a[bad]}, expected ${e[bad]}`);
    } else {
      assertClose(got.data, ref.data as ArrayLike<number>, tol, what);
    }
    if (!source && name.startsWith('out.')) this.checked.add(name);
  }

  /** Evaluates `t` and compares it with io tensor `name`. */
  async compare(label: string, t: T.Tensor, name: string, tol?: Tolerance): Promise<void> {
    const data = await t.data();
    this.compareData(label, { shape: t.shape, dtype: t.dtype, data: data as ArrayLike<number> }, name, tol);
  }

  /** Bit-exact comparison of a host draw with a recorded `noise.<k>`. */
  compareDraw(label: string, got: Float32Array | Float64Array | BigInt64Array, shape: readonly number[], name: string): void {
    const ref = this.get(name);
    const what = `${this.c.name}: ${label} vs ${name}`;
    assert.deepEqual([...shape], ref.shape, `${what}: shape`);
    const gotDType: T.DType = got instanceof BigInt64Array ? 'int64' : got instanceof Float64Array ? 'float64' : 'float32';
    assert.equal(gotDType, this.dtypeOf(name), `${what}: dtype`);
    assert.equal(got.length, ref.data.length, `${what}: length`);
    for (let i = 0; i < got.length; i++) {
      if (!Object.is(got[i], (ref.data as ArrayLike<number | bigint>)[i])) {
        assert.fail(`${what}: draws are not bit-exact; first difference at [${i}]: got ${got[i]}, expected ${(ref.data as ArrayLike<number | bigint>)[i]}`);
      }
    }
  }

  /** Every out.* tensor of the io file must have been compared. */
  assertAllOutputsChecked(): void {
    const missed = [...this.io.keys()].filter((k) => k.startsWith('out.') && !this.checked.has(k));
    assert.deepEqual(missed, [], `${this.c.name}: out.* tensors never checked`);
  }
}

/** `name(a, b, c)` -> ['name', ['a', 'b', 'c']] (keyword arguments keep their `k=v` text). */
export function parseCall(fn: string): { name: string; args: string[] } {
  const m = /^\s*([A-Za-z_][\w.]*)\s*\((.*)\)\s*$/.exec(fn);
  if (!m) throw new Error(`cannot parse call ${JSON.stringify(fn)}`);
  const args = m[2]!.trim() === '' ? [] : m[2]!.split(',').map((s) => s.trim());
  return { name: m[1]!, args };
}

/** A cond mapping of the case json ({key: io name}) as engine tensors. */
export function condFrom(cio: CaseIo, mapping: Record<string, string> | undefined, nonTensor: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, name] of Object.entries(mapping ?? {})) out[k] = cio.tensor(name);
  for (const [k, v] of Object.entries(nonTensor)) out[k] = v;
  return out;
}
