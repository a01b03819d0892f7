// Parity of StandardDiffusionLoss (kind `loss`): `_forward(network, denoiser, cond, input, batch)`
// with the fake network and the case's denoiser, replayed from its torch.manual_seed. The host
// draws must equal the recorded noise.<k> bit for bit and in the listed order (sigma draw, noise,
// offset noise); the loss and every intermediate the case records must match within tolerance.
import assert from 'node:assert/strict';
import type { CaseRunner, ParityCase } from '../../helpers/fixtures.js';
import { fakeNetwork } from '../../helpers/fake-network.js';
import type { Denoiser } from '../../../src/modules/diffusionmodules/denoiser.js';
import type { LossTerms, StandardDiffusionLoss } from '../../../src/modules/diffusionmodules/loss.js';
import * as T from '../../../src/tensor/index.js';
import { CaseIo, condFrom, instantiateCase } from './common.js';

interface Draw {
  key: string;
  fn: string;
  shape: number[];
  dtype: string;
}

/** The case's output names -> the terms of forwardTerms. */
const OUTPUTS: Record<string, keyof LossTerms> = {
  per_sample_loss: 'loss',
  sigmas: 'sigmas',
  noise_incl_offset: 'noise',
  noised_input: 'noised_input',
  denoiser_output: 'model_output',
  weights_w_before_append_dims: 'w',
};

async function runLoss(c: ParityCase): Promise<void> {
  const cio = new CaseIo(c);
  const call = c.spec.call;
  assert.match(call.fn, /loss\._forward\(network, denoiser, cond, input, batch=\{\}\)/, `${c.name}: unexpected call ${call.fn}`);
  const seed = call['torch.manual_seed'];
  assert.ok(typeof seed === 'number', `${c.name}: no torch.manual_seed`);
  const loss = instantiateCase<StandardDiffusionLoss>(c);
  const denoiser = instantiateCase<Denoiser>(c, call.denoiser);
  const input = cio.tensor(call.inputs.input);
  const cond = condFrom(cio, call.inputs.cond);

  // The draws, in order.
  const draws = call.draws as Draw[];
  const host = loss.drawNoise(input.shape, new T.Generator(seed));
  const ours = [host.rand, host.noise, ...(host.offset_noise ? [host.offset_noise] : [])];
  assert.equal(ours.length, draws.length, `${c.name}: ${draws.length} draws recorded, the loss makes ${ours.length}`);
  const oursShapes = [[input.shape[0]!], [...input.shape], ...(host.offset_noise ? [loss.offsetShape(input.shape)] : [])];
  draws.forEach((d, k) => {
    assert.deepEqual(oursShapes[k], d.shape, `${c.name}: shape of draw ${k} (${d.fn})`);
    cio.compareDraw(`draw ${k} (${d.fn})`, ours[k]!, d.shape, d.key);
  });

  // The forward, drawing from a generator seeded as the reference was.
  const terms = loss.forwardTerms(fakeNetwork, denoiser, cond, input, {}, { generator: new T.Generator(seed) });
  for (const [what, ioName] of Object.entries(call.outputs as Record<string, string>)) {
    const key = OUTPUTS[what];
    assert.ok(key, `${c.name}: output '${what}' is not understood`);
    await cio.compare(what, terms[key], ioName);
  }
  cio.assertAllOutputsChecked();
}

export const lossRunners: Record<string, CaseRunner> = {
  loss: runLoss,
};
