// Parity of the training sigma samplers (kind `sigma_sampling`): each call is replayed from its
// torch.manual_seed with a torch-compatible Generator; the draws must equal the recorded noise.<k>
// bit for bit (which proves the draw order, including the scalar Box-Muller cache shared by
// consecutive calls), and the sigmas must match within the tolerance. `sampler(n, rand=...)`
// calls use the recorded input draw.
import assert from 'node:assert/strict';
import type { CaseRunner, ParityCase } from '../../helpers/fixtures.js';
import type { SigmaSampler } from '../../../src/modules/diffusionmodules/sigma_sampling.js';
import * as T from '../../../src/tensor/index.js';
import { CaseIo, instantiateCase } from './common.js';

interface DrawCall {
  n_samples: number;
  draw: string;
  draw_fn: string;
  output: string;
}

interface SamplingCall extends Partial<DrawCall> {
  'torch.manual_seed'?: number;
  then_consecutive_calls?: DrawCall[];
  fn?: string;
}

const DRAW_DTYPE: Record<string, T.DType> = { 'torch.randn': 'float32', 'torch.randint': 'int64' };

async function runSigmaSampling(c: ParityCase): Promise<void> {
  const cio = new CaseIo(c);
  const sampler = instantiateCase<SigmaSampler>(c);
  const calls = (c.spec.call?.calls ?? []) as SamplingCall[];
  assert.ok(calls.length > 0, `${c.name}: call.calls is empty`);
  for (const call of calls) {
    if (call.fn !== undefined) {
      // sampler(n, rand=in.x): sigmas from a given draw.
      const m = /^sampler\(\s*(\d+)\s*,\s*rand\s*=\s*([\w.]+)\s*\)$/.exec(call.fn);
      assert.ok(m && call.output, `${c.name}: call ${JSON.stringify(call.fn)} is not understood`);
      const sig = sampler.call(Number(m[1]), { rand: cio.tensor(m[2]!), generator: new T.Generator(0) });
      await cio.compare(call.fn, sig, call.output);
      continue;
    }
    const seed = call['torch.manual_seed'];
    assert.ok(typeof seed === 'number', `${c.name}: a call without torch.manual_seed or fn`);
    const seq: DrawCall[] = call.then_consecutive_calls ?? [call as DrawCall];
    // 1) the draws, replayed in order from the seed, are the recorded ones
    const g1 = new T.Generator(seed);
    for (const s of seq) {
      const expected = DRAW_DTYPE[s.draw_fn];
      assert.ok(expected, `${c.name}: unknown draw_fn ${s.draw_fn}`);
      const d = sampler.draw(s.n_samples, g1);
      assert.equal(d instanceof BigInt64Array ? 'int64' : 'float32', expected, `${c.name}: the sampler draws with ${s.draw_fn}`);
      cio.compareDraw(`draw of sampler(${s.n_samples}) after manual_seed(${seed})`, d, [s.n_samples], s.draw);
    }
    // 2) the sampler called as the reference calls it gives the recorded sigmas
    const g2 = new T.Generator(seed);
    for (const s of seq) await cio.compare(`sampler(${s.n_samples}) after manual_seed(${seed})`, sampler.call(s.n_samples, g2), s.output);
  }
  cio.assertAllOutputsChecked();
}

export const sigmaSamplingRunners: Record<string, CaseRunner> = {
  sigma_sampling: runSigmaSampling,
};
