// Every sampler runs a whole sample() call on ONE compiled step graph: each compiled graph holds the
// network's weights as initializers and ONNX Runtime keeps one copy per session, so a second step
// graph (per churn/Heun/first-step/order variant) would hold the weights twice. The per-step
// differences are graph inputs; these tests check the graph count on a denoiser with real weights
// (a Conv2d), that repeated samples reuse the graph and give identical results, and that the steps
// which the reference computes with a cheaper formula (Heun's and DPM++ 2S's Euler last step) give
// exactly the cheaper sampler's result.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.js';
import { Conv2d } from '../../src/nn/index.js';
import { EDMDiscretization, LegacyDDPMDiscretization } from '../../src/modules/diffusionmodules/discretizer.js';
import { VanillaCFG } from '../../src/modules/diffusionmodules/guiders.js';
import {
  DPMPP2MSampler,
  DPMPP2SAncestralSampler,
  EulerAncestralSampler,
  EulerEDMSampler,
  HeunEDMSampler,
  LinearMultistepSampler,
  type BaseDiffusionSampler,
  type Cond,
  type DenoiserFn,
} from '../../src/modules/diffusionmodules/sampling.js';
import { SubstepSampler } from '../../src/modules/diffusionmodules/turbo.js';
import { lcg, randomArray } from '../helpers/gradcheck.js';

const SHAPE = [2, 3, 4, 4];
const N = SHAPE.reduce((a, b) => a * b, 1);

function input(seed: number): T.Tensor {
  return T.tensor(randomArray(N, lcg(seed)), SHAPE);
}

function condOf(seed: number): Cond {
  return { crossattn: T.tensor(randomArray(2 * 5 * 6, lcg(seed)), [2, 5, 6]), vector: T.tensor(randomArray(2 * 4, lcg(seed + 1)), [2, 4]) };
}

/** D(x, sigma, c) = x / (1 + sigma^2) + 0.1 tanh(conv(x / sqrt(1 + sigma^2))) + 0.1 mean(c.crossattn[b]): a graph with weights. */
function makeDenoiser(): DenoiserFn {
  const conv = new Conv2d(3, 3, 3, { padding: 1 });
  return (x, sigma, c) => {
    const s = T.appendDims(sigma, x.ndim);
    const s2 = T.add(T.mul(s, s), 1);
    const h = T.tanh(conv.forward(T.mul(x, T.rsqrt(s2))));
    const m = T.appendDims(T.mean(c['crossattn'] as T.Tensor, [1, 2]), x.ndim);
    return T.add(T.add(T.div(x, s2), T.mul(h, 0.1)), T.mul(m, 0.1));
  };
}

const edm = (): EDMDiscretization => new EDMDiscretization();

const CASES: Array<[string, () => BaseDiffusionSampler]> = [
  ['EulerEDM', () => new EulerEDMSampler({ discretization: edm(), numSteps: 5, guider: new VanillaCFG(5) })],
  // Churn on the middle steps only: churned and plain steps in one call.
  ['EulerEDM churn', () => new EulerEDMSampler({ discretization: edm(), numSteps: 5, sChurn: 2, sTmin: 0.5, sTmax: 30 })],
  ['HeunEDM', () => new HeunEDMSampler({ discretization: edm(), numSteps: 5, guider: new VanillaCFG(3) })],
  ['HeunEDM churn', () => new HeunEDMSampler({ discretization: edm(), numSteps: 5, sChurn: 2, sTmin: 0.5, sTmax: 30 })],
  ['EulerAncestral', () => new EulerAncestralSampler({ discretization: new LegacyDDPMDiscretization(), numSteps: 5, guider: new VanillaCFG(4) })],
  ['DPMPP2SAncestral', () => new DPMPP2SAncestralSampler({ discretization: edm(), numSteps: 5, guider: new VanillaCFG(3) })],
  ['DPMPP2M', () => new DPMPP2MSampler({ discretization: edm(), numSteps: 5, guider: new VanillaCFG(3) })],
  ['LinearMultistep order 4', () => new LinearMultistepSampler({ discretization: edm(), numSteps: 6, order: 4 })],
  ['SubstepSampler 4 steps', () => new SubstepSampler({ nSampleSteps: 4, guider: new VanillaCFG(2) })],
];

for (const [name, make] of CASES) {
  test(`${name}: one compiled step graph for a whole sample, reused with identical results`, async () => {
    const sampler = make();
    const denoiser = makeDenoiser();
    const x = input(7);
    const cond = condOf(8);
    const uc = condOf(9);
    const out1 = (await (await sampler.sample(denoiser, x, cond, uc, { generator: new T.Generator(1) })).data()) as Float32Array;
    assert.equal(sampler.compiledGraphCount(denoiser), 1, `${name}: step graphs after one sample`);
    assert.ok(out1.every(Number.isFinite), `${name}: finite sample`);
    const before = T.engineStats.sessionsCreated;
    const out2 = (await (await sampler.sample(denoiser, x, cond, uc, { generator: new T.Generator(1) })).data()) as Float32Array;
    assert.equal(T.engineStats.sessionsCreated - before, 0, `${name}: the second sample creates no session`);
    assert.equal(sampler.compiledGraphCount(denoiser), 1);
    assert.deepEqual(out2, out1, `${name}: same seed, same sample`);
  });
}

test('the step graph does not depend on the number of steps (first, middle and last steps share it)', async () => {
  for (const [name, make] of CASES) {
    const sampler = make();
    const denoiser = makeDenoiser();
    for (const steps of [1, 2, 3]) {
      if (sampler instanceof SubstepSampler) sampler.nSampleSteps = steps;
      await sampler.sample(denoiser, input(3), condOf(4), condOf(5), { numSteps: sampler instanceof SubstepSampler ? undefined : steps, generator: new T.Generator(2) });
    }
    assert.equal(sampler.compiledGraphCount(denoiser), 1, `${name}: one graph for 1, 2 and 3 steps`);
  }
});

test("Heun's last step is exactly Euler's, DPM++ 2S ancestral's last step exactly Euler ancestral's", async () => {
  // A 1-step sample is only the last step (to sigma 0), which the reference computes as plain Euler.
  const denoiser = makeDenoiser();
  const run = async (sampler: BaseDiffusionSampler): Promise<Float32Array> =>
    (await (await sampler.sample(denoiser, input(11), condOf(12), condOf(13), { generator: new T.Generator(3) })).data()) as Float32Array;
  const heun = await run(new HeunEDMSampler({ discretization: edm(), numSteps: 1, guider: new VanillaCFG(3) }));
  const euler = await run(new EulerEDMSampler({ discretization: edm(), numSteps: 1, guider: new VanillaCFG(3) }));
  assert.deepEqual(heun, euler);
  const dpm = await run(new DPMPP2SAncestralSampler({ discretization: edm(), numSteps: 1, guider: new VanillaCFG(3) }));
  const anc = await run(new EulerAncestralSampler({ discretization: edm(), numSteps: 1, guider: new VanillaCFG(3) }));
  assert.deepEqual(dpm, anc);
});
