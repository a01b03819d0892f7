// Parity of the denoiser scalings (kind `scaling`): scaling(sigma) -> (c_skip, c_out, c_in, c_noise),
// the returned tuple matched to call.outputs in order.
import assert from 'node:assert/strict';
import type { CaseRunner, ParityCase } from '../../helpers/fixtures.js';
import type { DenoiserScaling } from '../../../src/modules/diffusionmodules/denoiser_scaling.js';
import { CaseIo, instantiateCase, parseCall } from './common.js';

async function runScaling(c: ParityCase): Promise<void> {
  const cio = new CaseIo(c);
  const scaling = instantiateCase<DenoiserScaling>(c);
  const call = c.spec.call;
  const { args } = parseCall(call.fn);
  assert.deepEqual(args, ['sigma'], `${c.name}: expected scaling(sigma), got ${call.fn}`);
  const outs = scaling.call(cio.tensor(call.inputs.sigma));
  const names = call.outputs as string[];
  assert.equal(names.length, outs.length, `${c.name}: ${names.length} outputs listed, the scaling returns ${outs.length}`);
  for (let i = 0; i < names.length; i++) await cio.compare(`scaling output ${i}`, outs[i]!, names[i]!);
  cio.assertAllOutputsChecked();
}

export const scalingRunners: Record<string, CaseRunner> = {
  scaling: runScaling,
};
