// Samplers: progress and abort, compiled-graph reuse (session counts), the step math against an
// independent float64 computation, draw counts, DPM++ 2M's last-step infinities, the SDXL-Turbo
// substep sampler and SeededNoise, and config errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.js';
import '../../src/registry.js';
import { ConfigError, instantiateFromConfig } from '../../src/config/index.js';
import { EDMDiscretization, LegacyDDPMDiscretization } from '../../src/modules/diffusionmodules/discretizer.js';
import { VanillaCFG } from '../../src/modules/diffusionmodules/guiders.js';
import {
  ancestralStepF32,
  DPMPP2MSampler,
  DPMPP2SAncestralSampler,
  EulerAncestralSampler,
  EulerEDMSampler,
  HeunEDMSampler,
  LinearMultistepSampler,
  SamplingAbortedError,
  type BaseDiffusionSampler,
  type Cond,
  type DenoiserFn,
  type SamplerDiscretization,
} from '../../src/modules/diffusionmodules/sampling.js';
import { SeededNoise, seededRandn, SubstepSampler, TURBO_STEPS_SUBSET } from '../../src/modules/diffusionmodules/turbo.js';
import { lcg, randomArray } from '../helpers/gradcheck.js';

const SHAPE = [2, 3, 4, 4];
const N = SHAPE.reduce((a, b) => a * b, 1);

/** A fixed, descending sigma grid with the appended zero. */
class FixedSigmas implements SamplerDiscretization {
  constructor(readonly values: number[]) {}
  call(n: number, opts: { doAppendZero?: boolean; flip?: boolean } = {}): Float32Array {
    assert.equal(n, this.values.length, 'FixedSigmas: asked for another number of steps');
    const out = Float32Array.from(opts.doAppendZero === false ? this.values : [...this.values, 0]);
    return opts.flip ? out.reverse() : out;
  }
}

function input(seed = 1): T.Tensor {
  return T.tensor(randomArray(N, lcg(seed)), SHAPE);
}

function condOf(seed = 3): Cond {
  return { crossattn: T.tensor(randomArray(2 * 5 * 6, lcg(seed)), [2, 5, 6]), vector: T.tensor(randomArray(2 * 4, lcg(seed + 1)), [2, 4]) };
}

/** A small graph-building denoiser: D(x, sigma, c) = x / (1 + sigma^2) + 0.1 * mean(c.crossattn[b]). */
function makeDenoiser(): DenoiserFn {
  return (x, sigma, c) => {
    const s = T.appendDims(sigma, x.ndim);
    const ca = c['crossattn'] as T.Tensor;
    const m = T.appendDims(T.mean(ca, [1, 2]), x.ndim);
    return T.add(T.div(x, T.add(T.mul(s, s), 1)), T.mul(m, 0.1));
  };
}

test('onProgress and onStep: one call per step, in order, with the step sigma', async () => {
  const sigmas = [10, 5, 2, 1, 0.5];
  const sampler = new EulerEDMSampler({ discretization: new FixedSigmas(sigmas), numSteps: sigmas.length });
  const calls: Array<[number, number, number]> = [];
  const steps: number[] = [];
  await sampler.sample(makeDenoiser(), input(), condOf(), null, {
    onProgress: (step, total, sigma) => calls.push([step, total, sigma]),
    onStep: ({ step, total, x }) => {
      assert.equal(total, 5);
      assert.ok(x.value !== undefined, 'onStep gets an evaluated x');
      steps.push(step);
    },
  });
  assert.deepEqual(
    calls,
    sigmas.map((s, i) => [i + 1, 5, Math.fround(s)]),
  );
  assert.deepEqual(steps, [0, 1, 2, 3, 4]);
});

test('abort: an aborted signal stops sampling between steps with an AbortError', async () => {
  const sampler = new EulerAncestralSampler({ discretization: new EDMDiscretization(), numSteps: 6 });
  const ac = new AbortController();
  let done = 0;
  await assert.rejects(
    sampler.sample(makeDenoiser(), input(), condOf(), null, {
      signal: ac.signal,
      generator: new T.Generator(0),
      onProgress: (step) => {
        done = step;
        if (step === 2) ac.abort();
      },
    }),
    (e: unknown) => {
      assert.ok(e instanceof SamplingAbortedError);
      assert.equal((e as Error).name, 'AbortError');
      assert.equal((e as SamplingAbortedError).step, 2);
      assert.match((e as Error).message, /aborted before step 3 of 6/);
      return true;
    },
  );
  assert.equal(done, 2, 'no step runs after the abort');

  const pre = new AbortController();
  pre.abort(new Error('user cancelled'));
  let steps = 0;
  await assert.rejects(
    sampler.sample(makeDenoiser(), input(), condOf(), null, { signal: pre.signal, onProgress: () => steps++ }),
    (e: unknown) => e instanceof SamplingAbortedError && ((e as Error).cause as Error).message === 'user cancelled',
  );
  assert.equal(steps, 0);
});

test('one compiled step graph per sampler: a 10-step sample creates one step session, a second sample none', async () => {
  const cases: Array<[string, BaseDiffusionSampler, number]> = [
    // [name, sampler, step graphs expected]: one per sampler (the weights are held once)
    ['euler', new EulerEDMSampler({ discretization: new EDMDiscretization(), numSteps: 10, guider: new VanillaCFG(5) }), 1],
    ['euler churn', new EulerEDMSampler({ discretization: new EDMDiscretization(), numSteps: 10, sChurn: 1, sTmin: 0.5 }), 1],
    ['heun', new HeunEDMSampler({ discretization: new EDMDiscretization(), numSteps: 10 }), 1],
    ['euler ancestral', new EulerAncestralSampler({ discretization: new LegacyDDPMDiscretization(), numSteps: 10 }), 1],
    ['dpmpp2s ancestral', new DPMPP2SAncestralSampler({ discretization: new EDMDiscretization(), numSteps: 10, guider: new VanillaCFG(3) }), 1],
    ['dpmpp2m', new DPMPP2MSampler({ discretization: new EDMDiscretization(), numSteps: 10 }), 1],
    ['lms', new LinearMultistepSampler({ discretization: new EDMDiscretization(), numSteps: 10 }), 1],
  ];
  for (const [name, sampler, graphs] of cases) {
    const denoiser = makeDenoiser();
    const x = input(7);
    const cond = condOf(8);
    const uc = condOf(9);
    await T.tensor([0]).data(); // warm the eager path outside the window
    const before = T.engineStats.sessionsCreated;
    const out1 = await sampler.sample(denoiser, x, cond, uc, { generator: new T.Generator(1) });
    const first = T.engineStats.sessionsCreated - before;
    assert.equal(sampler.compiledGraphCount(denoiser), graphs, `${name}: step graphs`);
    // The step graphs, plus at most one eager session (x * sqrt(1 + sigma0^2)).
    assert.ok(first <= graphs + 1, `${name}: ${first} sessions for a 10-step sample (${graphs} step graphs)`);
    const mid = T.engineStats.sessionsCreated;
    const runsBefore = T.engineStats.runs;
    const out2 = await sampler.sample(denoiser, x, cond, uc, { generator: new T.Generator(1) });
    assert.equal(T.engineStats.sessionsCreated - mid, 0, `${name}: the second sample reuses every session`);
    assert.ok(T.engineStats.runs - runsBefore <= 11, `${name}: one run per step (+ the scaling)`);
    assert.deepEqual(await out2.data(), await out1.data(), `${name}: same seed, same sample`);
  }
});

test('Euler and Heun steps match an independent float64 computation', async () => {
  const sigmas = [8, 3, 1.5, 0.4];
  // D(x, sigma) = x / (1 + sigma^2) (+ a cond term of 0 here): a linear ODE step per element.
  const zeroCond: Cond = { crossattn: T.zeros([2, 5, 6]) };
  const xs = randomArray(N, lcg(11));
  const run = async (heun: boolean) => {
    const Cls = heun ? HeunEDMSampler : EulerEDMSampler;
    const s = new Cls({ discretization: new FixedSigmas(sigmas), numSteps: sigmas.length });
    return (await (await s.sample(makeDenoiser(), T.tensor(xs, SHAPE), zeroCond)).data()) as Float32Array;
  };
  const sig = [...sigmas, 0];
  const expect = (heun: boolean): Float64Array => {
    const out = new Float64Array(N);
    for (let k = 0; k < N; k++) {
      let x = xs[k]! * Math.sqrt(1 + sig[0]! * sig[0]!);
      for (let i = 0; i < sigmas.length; i++) {
        const s = sig[i]!;
        const n = sig[i + 1]!;
        const d = (x - x / (1 + s * s)) / s;
        const e = x + (n - s) * d;
        if (!heun || n === 0) x = e;
        else {
          const d2 = (e - e / (1 + n * n)) / n;
          x = x + ((d + d2) / 2) * (n - s);
        }
      }
      out[k] = x;
    }
    return out;
  };
  for (const heun of [false, true]) {
    const got = await run(heun);
    const want = expect(heun);
    for (let k = 0; k < N; k++) assert.ok(Math.abs(got[k]! - want[k]!) <= 1e-5 + 1e-5 * Math.abs(want[k]!), `${heun ? 'heun' : 'euler'} [${k}]: ${got[k]} vs ${want[k]}`);
  }
});

test('random draws: ancestral samplers draw every step, EDM samplers only with churn; default noise is torch.randn_like', async () => {
  const count = async (sampler: BaseDiffusionSampler): Promise<number[]> => {
    const steps: number[] = [];
    await sampler.sample(makeDenoiser(), input(), condOf(), null, {
      noise: (shape, step, k) => {
        assert.deepEqual(shape, SHAPE);
        assert.equal(k, steps.length);
        steps.push(step);
        return new Float32Array(N);
      },
    });
    return steps;
  };
  const edm = new EDMDiscretization();
  assert.deepEqual(await count(new EulerAncestralSampler({ discretization: edm, numSteps: 4 })), [0, 1, 2, 3]);
  assert.deepEqual(await count(new DPMPP2SAncestralSampler({ discretization: edm, numSteps: 4 })), [0, 1, 2, 3]);
  assert.deepEqual(await count(new EulerEDMSampler({ discretization: edm, numSteps: 4 })), []);
  // s_tmin/s_tmax select the churned steps: EDM sigmas for 4 steps are 80, ~9.7, ~0.47, 0.002.
  assert.deepEqual(await count(new HeunEDMSampler({ discretization: edm, numSteps: 4, sChurn: 1, sTmin: 0.01, sTmax: 20 })), [1, 2]);
  assert.deepEqual(await count(new LinearMultistepSampler({ discretization: edm, numSteps: 4 })), []);
  assert.deepEqual(await count(new DPMPP2MSampler({ discretization: edm, numSteps: 4 })), []);

  // The default source is the default torch generator.
  const sampler = new EulerAncestralSampler({ discretization: edm, numSteps: 3 });
  T.manualSeed(1234);
  const a = await (await sampler.sample(makeDenoiser(), input(), condOf())).data();
  const gen = new T.Generator(1234);
  const draws: Float32Array[] = [];
  const b = await (
    await sampler.sample(makeDenoiser(), input(), condOf(), null, {
      noise: (shape) => {
        const d = gen.randnData(shape, 'float32');
        draws.push(d);
        return d;
      },
    })
  ).data();
  assert.deepEqual(a, b);
  assert.equal(draws.length, 3);
});

test('DPM++ 2M last step: -log(0) infinities give mult1 = 0, mult2 = -1 without throwing', () => {
  const s = new DPMPP2MSampler({ discretization: new EDMDiscretization(), numSteps: 3 });
  const m = s.multipliers(0.5, 0, 2);
  assert.equal(m.mult1, 0);
  assert.equal(m.mult2, -1);
  assert.equal(m.mult4, Infinity);
  assert.equal(m.mult3, Infinity);
  const first = s.multipliers(2, 1, null);
  assert.ok(Math.abs(first.mult1 - 0.5) < 1e-7);
  assert.ok(Math.abs(first.mult2 - Math.expm1(-Math.log(2))) < 1e-7);
  assert.equal(first.mult3, undefined);
});

test('ancestralStepF32: sigma_up^2 + sigma_down^2 = sigma_to^2, eta scales sigma_up, eta 0 is deterministic', () => {
  const [down, up] = ancestralStepF32(3, 1, 1);
  const eUp = Math.sqrt((1 * (9 - 1)) / 9);
  assert.ok(Math.abs(up - eUp) < 1e-6);
  assert.ok(Math.abs(down - Math.sqrt(1 - eUp * eUp)) < 1e-6);
  const [d0, u0] = ancestralStepF32(3, 1, 0);
  assert.deepEqual([d0, u0], [1, 0]);
  assert.deepEqual(ancestralStepF32(3, 0, 1), [0, 0]);
});

test('SubstepSampler: sigmas of the 1000-step LegacyDDPM grid at [0, 100, 200, 300][:n] + [1000]', async () => {
  // Independent float64 grid: betas = linspace(sqrt(0.00085), sqrt(0.012), 1000)^2.
  const a0 = Math.sqrt(0.00085);
  const a1 = Math.sqrt(0.012);
  const ac: number[] = [];
  let prod = 1;
  for (let i = 0; i < 1000; i++) {
    const r = a0 + ((a1 - a0) * i) / 999;
    prod *= 1 - r * r;
    ac.push(prod);
  }
  const sigmaAt = (k: number): number => (k === 1000 ? 0 : Math.sqrt((1 - ac[999 - k]!) / ac[999 - k]!));
  const sampler = new SubstepSampler();
  assert.equal(sampler.numSteps, 1000);
  assert.equal(sampler.eta, 1);
  for (let n = 1; n <= 4; n++) {
    sampler.nSampleSteps = n;
    const idx = [...TURBO_STEPS_SUBSET.slice(0, n), 1000];
    assert.deepEqual(sampler.stepIndices(), idx);
    const got = sampler.getSigmas();
    assert.equal(got.length, n + 1);
    idx.forEach((k, j) => assert.ok(Math.abs(got[j]! - sigmaAt(k)) <= 1e-6 * sigmaAt(k), `n=${n} sigma[${j}] (index ${k}): ${got[j]} vs ${sigmaAt(k)}`));
    assert.equal(got[n], 0);
  }
  assert.ok(Math.abs(sampler.getSigmas()[0]! - 14.6146) < 1e-3, 'SDXL sigma_max');
  assert.throws(() => (sampler.nSampleSteps = 5), RangeError);
  assert.throws(() => (sampler.nSampleSteps = 0), RangeError);
});

test('SubstepSampler: uc is cond, one draw per step from SeededNoise', async () => {
  const sampler = new SubstepSampler({ nSampleSteps: 2, guider: new VanillaCFG(7) });
  const denoiser = makeDenoiser();
  const cond = condOf(21);
  const shape = [1, 3, 4, 4];
  const x = T.tensor(seededRandn(shape, 5), shape);
  const c1: Cond = { crossattn: T.narrow(cond['crossattn'] as T.Tensor, 0, 0, 1) };
  const noise = new SeededNoise(5);
  const a = await (await sampler.sample(denoiser, x, c1, { crossattn: T.zeros([1, 5, 6]) }, { noise: noise.source })).data();
  assert.equal(noise.seed, 7, 'two steps, two draws');
  const b = await (await sampler.sample(denoiser, x, c1, null, { noise: new SeededNoise(5).source })).data();
  assert.deepEqual(a, b, 'the uc argument is ignored');
});

test('SeededNoise: draw k uses RandomState(seed + k).randn, cast to float32', () => {
  const noise = new SeededNoise(41);
  for (let k = 1; k <= 3; k++) {
    const got = noise.source([2, 3], k - 1, k - 1);
    const want = new T.RandomState(41 + k).randn([2, 3]);
    assert.equal(got.length, 6);
    for (let i = 0; i < 6; i++) assert.equal(got[i], Math.fround(want[i]!));
  }
  assert.equal(noise.seed, 44);
  assert.deepEqual(seededRandn([4], 9), Float32Array.from(new T.RandomState(9).randn([4])));
});

test('config: sampler targets instantiate with defaults; bad params are ConfigErrors naming the param', () => {
  const DM = 'sgm.modules.diffusionmodules';
  const disc = { target: `${DM}.discretizer.EDMDiscretization` };
  const s = instantiateFromConfig<EulerEDMSampler>({ target: `${DM}.sampling.EulerEDMSampler`, params: { discretization_config: disc, num_steps: 5 } });
  assert.ok(s instanceof EulerEDMSampler);
  assert.equal(s.sChurn, 0);
  assert.equal(s.sTmax, Infinity);
  assert.equal(s.device, 'cuda');
  assert.equal(s.numSteps, 5);
  const lms = instantiateFromConfig<LinearMultistepSampler>({ target: `${DM}.sampling.LinearMultistepSampler`, params: { discretization_config: disc } });
  assert.equal(lms.order, 4);
  assert.equal(lms.numSteps, null);

  const bad = (params: Record<string, unknown>, target = 'EulerEDMSampler', path = 'model.sampler') => () =>
    instantiateFromConfig({ target: `${DM}.sampling.${target}`, params: { discretization_config: disc, ...params } }, { path });
  assert.throws(bad({ s_churn: 'lots' }), (e: unknown) => e instanceof ConfigError && /s_churn/.test((e as Error).message) && /expected number/.test((e as Error).message));
  assert.throws(bad({ num_step: 5 }), (e: unknown) => e instanceof ConfigError && /unknown param 'num_step'/.test((e as Error).message) && /did you mean 'num_steps'/.test((e as Error).message));
  assert.throws(bad({ order: 0 }, 'LinearMultistepSampler'), (e: unknown) => e instanceof ConfigError && (e as ConfigError).path === 'model.sampler.params.order');
  assert.throws(bad({ eta: -1 }, 'EulerAncestralSampler'), (e: unknown) => e instanceof ConfigError && /eta/.test((e as Error).message));
  assert.throws(
    () => instantiateFromConfig({ target: `${DM}.sampling.DPMPP2MSampler`, params: { num_steps: 3 } }),
    (e: unknown) => e instanceof ConfigError && /missing required param 'discretization_config'/.test((e as Error).message),
  );
  assert.throws(
    bad({ guider_config: { target: `${DM}.guiders.VanillaCFG`, params: { scales: 5 } } }),
    (e: unknown) => e instanceof ConfigError && /model\.sampler\.params\.guider_config/.test((e as Error).message),
  );
});

test('sample() without num_steps, or with a non-float32 x, says what is wrong', async () => {
  const s = new EulerEDMSampler({ discretization: new EDMDiscretization() });
  await assert.rejects(s.sample(makeDenoiser(), input(), condOf()), /num_steps is not set/);
  const out = await s.sample(makeDenoiser(), input(), condOf(), null, { numSteps: 2 });
  assert.deepEqual(out.shape, SHAPE);
  await assert.rejects(
    s.sample(makeDenoiser(), T.cast(input(), 'float64'), condOf(), null, { numSteps: 2 }),
    /x must be float32/,
  );
});
