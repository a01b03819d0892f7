// Parity of the loss weightings (kind `loss_weighting`): weighting(sigma), through both config
// modules (loss_weighting and its duplicate denoiser_weighting).
import assert from 'node:assert/strict';
import type { CaseRunner, ParityCase } from '../../helpers/fixtures.js';
import type { DiffusionLossWeighting } from '../../../src/modules/diffusionmodules/loss_weighting.js';
import { CaseIo, instantiateCase, parseCall } from './common.js';

async function runWeighting(c: ParityCase): Promise<void> {
  const cio = new CaseIo(c);
  const call = c.spec.call;
  assert.deepEqual(parseCall(call.fn).args, ['sigma'], `${c.name}: expected weighting(sigma), got ${call.fn}`);
  const names = call.outputs as string[];
  assert.equal(names.length, 1, `${c.name}: a weighting has one output`);
  const target = c.spec.target as string;
  const targets = [target];
  // denoiser_weighting duplicates loss_weighting: the same case holds for the twin target.
  if (target.includes('.loss_weighting.')) targets.push(target.replace('.loss_weighting.', '.denoiser_weighting.'));
  else if (target.includes('.denoiser_weighting.')) targets.push(target.replace('.denoiser_weighting.', '.loss_weighting.'));
  for (const tgt of targets) {
    const w = instantiateCase<DiffusionLossWeighting>(c, { target: tgt, params: c.spec.params ?? {} });
    await cio.compare(`${tgt}(sigma)`, w.call(cio.tensor(call.inputs.sigma)), names[0]!);
  }
  cio.assertAllOutputsChecked();
}

export const weightingRunners: Record<string, CaseRunner> = {
  loss_weighting: runWeighting,
};
