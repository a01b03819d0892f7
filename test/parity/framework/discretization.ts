// Parity of the discretizations (kind `discretization`): every listed call
// disc(n, do_append_zero, flip) against its output; for the legacy DDPM schedule also the float64
// alphas_cumprod and the timestep subsets the case records as aux tensors.
import assert from 'node:assert/strict';
import type { CaseRunner, ParityCase } from '../../helpers/fixtures.js';
import { EDMDiscretization, type Discretization } from '../../../src/modules/diffusionmodules/discretizer.js';
import * as T from '../../../src/tensor/index.js';
import { CaseIo, instantiateCase } from './common.js';

interface DiscCall {
  n: number;
  do_append_zero: boolean;
  flip: boolean;
  output: string;
}

async function runDiscretization(c: ParityCase): Promise<void> {
  const cio = new CaseIo(c);
  const disc = instantiateCase<Discretization>(c);
  const calls = (c.spec.call?.calls ?? []) as DiscCall[];
  assert.ok(calls.length > 0, `${c.name}: call.calls is empty`);
  for (const call of calls) {
    const sig = disc.call(call.n, { doAppendZero: call.do_append_zero, flip: call.flip });
    cio.compareData(`disc(${call.n}, do_append_zero=${call.do_append_zero}, flip=${call.flip})`, { shape: [sig.length], dtype: 'float32', data: sig }, call.output);
  }
  // Intermediates, where the case records them (they locate an error; not required outputs).
  const d = disc as unknown as { alphas_cumprod?: Float64Array; timesteps?: (n: number) => number[] };
  if (cio.has('aux.alphas_cumprod') && d.alphas_cumprod) {
    cio.compareData('alphas_cumprod', { shape: [d.alphas_cumprod.length], dtype: 'float64', data: d.alphas_cumprod }, 'aux.alphas_cumprod');
  }
  for (const name of cio.io.keys()) {
    // EDM's ramp is torch.linspace(0, 1, n) in float32
    const r = /^aux\.ramp\.n(\d+)$/.exec(name);
    if (r && disc instanceof EDMDiscretization) await cio.compare(`linspace(0, 1, ${r[1]})`, T.linspace(0, 1, Number(r[1]), 'float32'), name);
    const m = /^aux\.timesteps\.n(\d+)$/.exec(name);
    if (m && d.timesteps) {
      const ts = d.timesteps(Number(m[1]));
      cio.compareData(`timesteps(${m[1]})`, { shape: [ts.length], dtype: 'int64', data: ts }, name);
    }
  }
  cio.assertAllOutputsChecked();
}

export const discretizationRunners: Record<string, CaseRunner> = {
  discretization: runDiscretization,
};
