// Element-wise comparison with the fixtures' rule: |a - e| <= atol + rtol * |e|.
import assert from 'node:assert/strict';

export interface Tolerance {
  atol: number;
  rtol: number;
}

type NumArray = ArrayLike<number> | ArrayLike<bigint>;

function num(v: number | bigint): number {
  return typeof v === 'bigint' ? Number(v) : v;
}

/** Asserts closeness; the failure names the label, the worst element and how many failed. */
export function assertClose(actual: NumArray, expected: NumArray, tol: Tolerance, label = 'value'): void {
  assert.equal(actual.length, expected.length, `${label}: length ${actual.length} != expected ${expected.length}`);
  let bad = 0;
  let worst = -1;
  let worstExcess = -Infinity;
  for (let i = 0; i < expected.length; i++) {
    const a = num(actual[i]!);
    const e = num(expected[i]!);
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (a === e) continue; // also covers equal infinities
    const excess = Math.abs(a - e) - (tol.atol + tol.rtol * Math.abs(e));
    if (!(excess <= 0)) {
      bad++;
      const ex = Number.isNaN(excess) ? Infinity : excess;
      if (ex > worstExcess) {
        worstExcess = ex;
        worst = i;
      }
    }
  }
  if (bad > 0) {
    assert.fail(
      `${label}: ${bad}/${expected.length} elements outside atol=${tol.atol} rtol=${tol.rtol}; ` +
        `worst at [${worst}]: got ${num(actual[worst]!)}, expected ${num(expected[worst]!)}`,
    );
  }
}
