// The diffusion framework math beyond what the parity fixtures pin down: config errors of its
// targets, the reference configs' nodes of these targets, the demo's discretization wrappers,
// LinearPredictionGuider over frames, VanillaCFG's input checks, DiscreteDenoiser's tie rule, the
// LMS coefficient, LR schedulers past their last cycle, the loss type check, and the loss with
// its draws given as inputs of a compiled function.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, instantiateFromConfig, isMapping, loadConfigFile, resolveInterpolations, type ConfigValue } from '../../src/config/index.js';
import { registry } from '../../src/registry.js';
import * as T from '../../src/tensor/index.js';
import { Denoiser, DiscreteDenoiser } from '../../src/modules/diffusionmodules/denoiser.js';
import { EDMScaling, EpsScaling } from '../../src/modules/diffusionmodules/denoiser_scaling.js';
import {
  Discretization,
  EDMDiscretization,
  Img2ImgDiscretizationWrapper,
  LegacyDDPMDiscretization,
  Txt2NoisyDiscretizationWrapper,
} from '../../src/modules/diffusionmodules/discretizer.js';
import { GuiderInputError, IdentityGuider, LinearPredictionGuider, VanillaCFG } from '../../src/modules/diffusionmodules/guiders.js';
import { LossConfigError, StandardDiffusionLoss } from '../../src/modules/diffusionmodules/loss.js';
import { EDMWeighting } from '../../src/modules/diffusionmodules/loss_weighting.js';
import { get_ancestral_step, linear_multistep_coeff, NoDynamicThresholding } from '../../src/modules/diffusionmodules/sampling_utils.js';
import { DiscreteSampling, EDMSampling } from '../../src/modules/diffusionmodules/sigma_sampling.js';
import { FRAMEWORK_TARGETS } from '../../src/modules/diffusionmodules/targets.js';
import { LambdaLinearScheduler, LambdaWarmUpCosineScheduler2, SchedulerRangeError } from '../../src/lr_scheduler.js';
import { fakeNetwork } from '../helpers/fake-network.js';
import { assertClose } from '../helpers/close.js';

const DM = 'sgm.modules.diffusionmodules';

function throwsConfig(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    for (const p of parts) assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(p)}`);
    return true;
  });
}

// ------------------------------------------------------------------------------------- config

test('framework targets: registered for real on the default registry', () => {
  for (const def of FRAMEWORK_TARGETS) {
    assert.ok(registry.has(def.target), def.target);
    assert.equal(registry.isPlaceholder(def.target), false, `${def.target} is still a placeholder`);
  }
  const names = FRAMEWORK_TARGETS.map((d) => d.target);
  for (const t of [
    `${DM}.denoiser_weighting.EDMWeighting`,
    `${DM}.loss_weighting.EDMWeighting`,
    `${DM}.sampling_utils.NoDynamicThresholding`,
    'sgm.lr_scheduler.LambdaLinearScheduler',
  ]) {
    assert.ok(names.includes(t), t);
  }
  // the two weighting modules build the same classes
  const a = instantiateFromConfig({ target: `${DM}.denoiser_weighting.EDMWeighting`, params: { sigma_data: 1.0 } });
  const b = instantiateFromConfig({ target: `${DM}.loss_weighting.EDMWeighting` });
  assert.ok(a instanceof EDMWeighting && b instanceof EDMWeighting);
  assert.equal((a as EDMWeighting).sigma_data, 1.0);
  assert.equal((b as EDMWeighting).sigma_data, 0.5);
});

test('framework targets: unknown params are named with a suggestion', () => {
  throwsConfig(
    () => instantiateFromConfig({ target: `${DM}.discretizer.EDMDiscretization`, params: { sigma_mn: 0.1 } }, { path: 'sampler.params.discretization_config' }),
    "sampler.params.discretization_config.params: unknown param 'sigma_mn'",
    "did you mean 'sigma_min'?",
    'accepts: sigma_min, sigma_max, rho',
  );
  throwsConfig(
    () =>
      instantiateFromConfig({
        target: `${DM}.denoiser.DiscreteDenoiser`,
        params: { scaling_config: { target: `${DM}.denoiser_scaling.EpsScaling` }, num_idxs: 1000, discretization_config: { target: `${DM}.discretizer.LegacyDDPMDiscretization` } },
      }),
    "unknown param 'num_idxs'",
    "did you mean 'num_idx'?",
  );
  throwsConfig(() => instantiateFromConfig({ target: `${DM}.guiders.VanillaCFG`, params: { scal: 7.5 } }), "unknown param 'scal'", "did you mean 'scale'?");
});

test('framework targets: wrong types, missing required params and nested errors name their path', () => {
  throwsConfig(
    () =>
      instantiateFromConfig(
        {
          target: `${DM}.denoiser.DiscreteDenoiser`,
          params: { scaling_config: { target: `${DM}.denoiser_scaling.EpsScaling` }, num_idx: '1000', discretization_config: { target: `${DM}.discretizer.LegacyDDPMDiscretization` } },
        },
        { path: 'model.params.denoiser_config' },
      ),
    'model.params.denoiser_config.params.num_idx: expected int',
    'found string "1000"',
  );
  throwsConfig(() => instantiateFromConfig({ target: `${DM}.guiders.VanillaCFG` }), "missing required param 'scale'");
  throwsConfig(() => instantiateFromConfig({ target: `${DM}.sigma_sampling.EDMSampling`, params: { p_std: 'wide' } }), 'params.p_std: expected number');
  throwsConfig(() => instantiateFromConfig({ target: `${DM}.denoiser.Denoiser`, params: { scaling_config: 'EDMScaling' } }), 'params.scaling_config: expected config');
  // a typo in a nested target is reported at the nested path with the closest names
  throwsConfig(
    () => instantiateFromConfig({ target: `${DM}.denoiser.Denoiser`, params: { scaling_config: { target: `${DM}.denoiser_scaling.EDMScalng` } } }, { path: 'model.params.denoiser_config' }),
    'model.params.denoiser_config.params.scaling_config.target: unknown target',
    `${DM}.denoiser_scaling.EDMScaling`,
  );
  // list entries are checked too
  throwsConfig(
    () =>
      instantiateFromConfig(
        { target: 'sgm.lr_scheduler.LambdaLinearScheduler', params: { warm_up_steps: ['many'], cycle_lengths: [10], f_start: [0], f_max: [1], f_min: [1] } },
        { path: 'model.params.scheduler_config' },
      ),
    'model.params.scheduler_config.params.warm_up_steps.0: expected a number',
  );
  throwsConfig(
    () =>
      instantiateFromConfig(
        { target: 'sgm.lr_scheduler.LambdaWarmUpCosineScheduler2', params: { warm_up_steps: [1, 2], cycle_lengths: [10], f_start: [0], f_max: [1], f_min: [1] } },
        { path: 'sched' },
      ),
    'sched: cannot build LambdaWarmUpCosineScheduler2',
    'one entry per cycle',
  );
});

test('framework targets: nested configs are instantiated (DiscreteDenoiser, StandardDiffusionLoss, VanillaCFG with dyn_thresh_config)', async () => {
  const d = instantiateFromConfig<DiscreteDenoiser>({
    target: `${DM}.denoiser.DiscreteDenoiser`,
    params: { scaling_config: { target: `${DM}.denoiser_scaling.EpsScaling` }, num_idx: 1000, discretization_config: { target: `${DM}.discretizer.LegacyDDPMDiscretization` } },
  });
  assert.ok(d instanceof DiscreteDenoiser && d.scaling instanceof EpsScaling && d.discretization instanceof LegacyDDPMDiscretization);
  assert.deepEqual([...d.stateDict().keys()], ['sigmas']);
  const sig = (await d.sigmas.data()) as Float32Array;
  assert.equal(sig.length, 1000);
  assert.ok(sig[0]! < sig[999]!, 'the buffer is ascending');
  const loss = instantiateFromConfig<StandardDiffusionLoss>({
    target: `${DM}.loss.StandardDiffusionLoss`,
    params: {
      sigma_sampler_config: { target: `${DM}.sigma_sampling.EDMSampling`, params: { p_mean: 0.7 } },
      loss_weighting_config: { target: `${DM}.loss_weighting.EDMWeighting` },
      loss_type: 'l1',
      batch2model_keys: 'image_only_indicator',
    },
  });
  assert.ok(loss.sigma_sampler instanceof EDMSampling && loss.sigma_sampler.p_mean === 0.7 && loss.sigma_sampler.p_std === 1.2);
  assert.deepEqual([...loss.batch2model_keys], ['image_only_indicator']);
  // sgm.inference.api passes dyn_thresh_config: NoDynamicThresholding, the plain CFG combination
  const cfg = instantiateFromConfig<VanillaCFG>({
    target: `${DM}.guiders.VanillaCFG`,
    params: { scale: 3.0, dyn_thresh_config: { target: `${DM}.sampling_utils.NoDynamicThresholding` } },
  });
  assert.ok(cfg.dyn_thresh instanceof NoDynamicThresholding);
  const x = T.tensor([1, 2, 3, 5], [4, 1]);
  assert.deepEqual(await cfg.call(x, T.tensor([1, 1, 1, 1])).toArray(), [1 + 3 * (3 - 1), 2 + 3 * (5 - 2)]);
});

const configDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'reference-configs');

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...yamlFiles(p));
    else if (name.endsWith('.yaml')) out.push(p);
  }
  return out;
}

function nodesWithTargets(v: ConfigValue, targets: Set<string>, path: string, out: Array<[string, ConfigValue]>): void {
  if (Array.isArray(v)) v.forEach((x, i) => nodesWithTargets(x, targets, path ? `${path}.${i}` : String(i), out));
  else if (isMapping(v)) {
    if (typeof v['target'] === 'string' && targets.has(v['target'])) out.push([path, v]);
    for (const [k, x] of Object.entries(v)) nodesWithTargets(x, targets, path ? `${path}.${k}` : k, out);
  }
}

test('reference configs: every node with a framework target instantiates', (t) => {
  if (!existsSync(configDir)) {
    t.skip(`reference configs not found at ${configDir}`);
    return;
  }
  const targets = new Set(FRAMEWORK_TARGETS.map((d) => d.target));
  let count = 0;
  for (const file of yamlFiles(configDir)) {
    const cfg = resolveInterpolations(loadConfigFile(file));
    const nodes: Array<[string, ConfigValue]> = [];
    nodesWithTargets(cfg, targets, '', nodes);
    for (const [path, node] of nodes) {
      let cfgNode = node as Record<string, any>;
      if (cfgNode['target'] === `${DM}.guiders.LinearPredictionGuider` && cfgNode['params']?.['num_frames'] === undefined) {
        // The SVD configs leave num_frames to scripts/sampling/simple_video_sample.py, which sets
        // sampler_config.params.guider_config.params.num_frames before instantiating.
        throwsConfig(() => instantiateFromConfig(node, { path }), `${path}.params: missing required param 'num_frames'`);
        cfgNode = { ...cfgNode, params: { ...cfgNode['params'], num_frames: 14 } };
      }
      assert.doesNotThrow(() => instantiateFromConfig(cfgNode, { path }), `${relative(configDir, file)}: ${path}`);
      count++;
    }
  }
  assert.ok(count > 10, `only ${count} framework nodes found in the reference configs`);
});

// ------------------------------------------------------------------------- discretizations

// torch 1.13.1 CPU values (the framework fixtures' aux.ramp.n40, aux.ramp.n25 and entries of
// aux.alphas_cumprod), so that the linspace semantics are pinned without the fixture folder.
const TORCH_LINSPACE_0_1_40 = [0,0.025641025975346565,0.05128205195069313,0.07692307978868484,0.10256410390138626,0.12820513546466827,0.1538461595773697,0.1794871836900711,0.20512820780277252,0.23076923191547394,0.25641027092933655,0.28205129504203796,0.3076923191547394,0.3333333432674408,0.3589743673801422,0.38461539149284363,0.41025641560554504,0.43589743971824646,0.4615384638309479,0.4871794879436493,0.5128205418586731,0.5384615659713745,0.5641025900840759,0.5897436141967773,0.6153846383094788,0.6410256624221802,0.6666666865348816,0.692307710647583,0.7179487347602844,0.7435897588729858,0.7692307829856873,0.7948718070983887,0.8205128312110901,0.8461538553237915,0.8717948794364929,0.8974359035491943,0.9230769276618958,0.9487179517745972,0.9743589758872986,1];
const TORCH_LINSPACE_0_1_25 = [0,0.0416666679084301,0.0833333358168602,0.125,0.1666666716337204,0.2083333432674408,0.25,0.2916666865348816,0.3333333432674408,0.375,0.4166666865348816,0.4583333432674408,0.5,0.5416666865348816,0.5833333730697632,0.625,0.6666666269302368,0.7083333134651184,0.75,0.7916666865348816,0.8333333134651184,0.875,0.9166666865348816,0.9583333134651184,1];
const TORCH_ALPHAS_CUMPROD_DEFAULT: Array<[number, number]> = [[0,0.99915],[1,0.9982960278384514],[2,0.997438081987888],[3,0.9965761610114885],[250,0.6737926252333216],[499,0.27766965045646774],[500,0.2763326838229747],[501,0.27499906685013203],[777,0.044954960576035055],[998,0.00471669889987575],[999,0.004660098513077241]];

test('linspace and the DDPM schedule reproduce torch 1.13 bit for bit (vector path, fused multiply-adds)', () => {
  assert.deepEqual(Array.from(T.linspace(0, 1, 40).value as Float32Array), TORCH_LINSPACE_0_1_40);
  assert.deepEqual(Array.from(T.linspace(0, 1, 25).value as Float32Array), TORCH_LINSPACE_0_1_25);
  const ac = new LegacyDDPMDiscretization().alphas_cumprod;
  for (const [i, v] of TORCH_ALPHAS_CUMPROD_DEFAULT) assert.equal(ac[i], v, `alphas_cumprod[${i}]`);
});

test('Img2ImgDiscretizationWrapper keeps the max(int(strength * len), 1) smallest sigmas', () => {
  const disc = new EDMDiscretization();
  const full = disc.call(10); // 10 sigmas + the appended zero, descending
  assert.equal(full.length, 11);
  assert.deepEqual([...new Img2ImgDiscretizationWrapper(disc, 1.0).call(10)], [...full]);
  // int(0.5 * 11) = 5: the last five (four sigmas and the zero)
  assert.deepEqual([...new Img2ImgDiscretizationWrapper(disc, 0.5).call(10)], [full[6], full[7], full[8], full[9], 0]);
  // int(0.0 * 11) = 0 -> at least one: the zero
  assert.deepEqual([...new Img2ImgDiscretizationWrapper(disc, 0.0).call(10)], [0]);
  // without the zero: int(0.35 * 10) = 3
  assert.deepEqual([...new Img2ImgDiscretizationWrapper(disc, 0.35).call(10, { doAppendZero: false })], [full[7], full[8], full[9]]);
  assert.throws(() => new Img2ImgDiscretizationWrapper(disc, 1.5), /strength must be between 0.0 and 1.0/);
  assert.ok(new Img2ImgDiscretizationWrapper(disc, 0.5) instanceof Discretization);
});

test('Txt2NoisyDiscretizationWrapper drops the max(min(int(strength * steps) - 1, steps - 1), 0) smallest sigmas', () => {
  const disc = new LegacyDDPMDiscretization();
  const full = disc.call(10);
  // steps = original_steps + 1 = 11; int(0.3 * 11) - 1 = 2 smallest dropped (the zero and the smallest sigma)
  assert.deepEqual([...new Txt2NoisyDiscretizationWrapper(disc, 0.3, 10).call(10)], [...full.slice(0, 9)]);
  // strength 0: nothing dropped
  assert.deepEqual([...new Txt2NoisyDiscretizationWrapper(disc, 0.0, 10).call(10)], [...full]);
  // strength 1 without original_steps: steps = 11, min(10, 10) = 10 dropped -> only the largest sigma
  assert.deepEqual([...new Txt2NoisyDiscretizationWrapper(disc, 1.0).call(10)], [full[0]]);
  // wrapping a wrapper, as the demo may (img2img then stage-2)
  const both = new Txt2NoisyDiscretizationWrapper(new Img2ImgDiscretizationWrapper(disc, 0.5), 0.3, 10);
  assert.deepEqual([...both.call(10)], [full[6], full[7], full[8]]);
  assert.throws(() => new Txt2NoisyDiscretizationWrapper(disc, -0.1), /strength must be between 0.0 and 1.0/);
});

test('discretizations: flip, append zero and range errors', () => {
  const disc = new LegacyDDPMDiscretization();
  const a = disc.call(5, { doAppendZero: true, flip: true });
  assert.equal(a[0], 0);
  assert.deepEqual([...a].reverse(), [...disc.call(5)]);
  assert.throws(() => disc.call(1001), /1001 sigmas requested, more than num_timesteps=1000/);
  assert.throws(() => new EDMDiscretization().call(0), /positive integer/);
  // n == 1 gives sigma_max for EDM
  assert.ok(Math.abs(new EDMDiscretization().call(1, { doAppendZero: false })[0]! - 80) < 1e-4);
});

// ------------------------------------------------------------------------------------ guiders

test('LinearPredictionGuider: the scale rises over the frames of each video', async () => {
  const b = 2;
  const t = 3;
  const g = new LinearPredictionGuider(2.5, t, 1.0, 'image_only_indicator');
  assert.deepEqual(g.additional_cond_keys, ['image_only_indicator']);
  const n = b * t;
  const u = Float32Array.from({ length: n * 2 }, (_, i) => Math.sin(i + 1));
  const c = Float32Array.from({ length: n * 2 }, (_, i) => Math.cos(i + 1));
  const x = T.concat([T.tensor(u, [n, 2]), T.tensor(c, [n, 2])], 0);
  const out = (await g.call(x, T.zeros([2 * n])).data()) as Float32Array;
  const scales = [1.0, 1.75, 2.5];
  const f = Math.fround;
  for (let bi = 0; bi < b; bi++) {
    for (let ti = 0; ti < t; ti++) {
      for (let k = 0; k < 2; k++) {
        const i = (bi * t + ti) * 2 + k;
        const expected = f(f(u[i]!) + f(scales[ti]! * f(f(c[i]!) - f(u[i]!))));
        assert.equal(out[i], expected, `frame ${ti} of video ${bi}`);
      }
    }
  }
  assert.throws(() => g.call(T.zeros([10, 2]), T.zeros([10])), /5 frames, not a multiple of num_frames=3/);
  assert.throws(() => g.call(T.zeros([3, 2]), T.zeros([3])), /even first dim/);
  // additional_cond_keys are concatenated like crossattn; other entries pass through
  const cond = { crossattn: T.ones([n, 1, 4]), image_only_indicator: T.zeros([b, t]), num_video_frames: t };
  const ucond = { crossattn: T.zeros([n, 1, 4]), image_only_indicator: T.ones([b, t]), num_video_frames: t };
  const [px, ps, pc] = g.prepareInputs(T.zeros([n, 2]), T.ones([n]), cond, ucond);
  assert.deepEqual(px.shape, [2 * n, 2]);
  assert.deepEqual(ps.shape, [2 * n]);
  assert.deepEqual((pc['image_only_indicator'] as T.Tensor).shape, [2 * b, t]);
  assert.deepEqual(await (pc['image_only_indicator'] as T.Tensor).toArray(), [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
  assert.equal(pc['num_video_frames'], t);
});

test('VanillaCFG.prepare_inputs: (uc, c) order, shared entries, and clear errors', async () => {
  const g = new VanillaCFG(5.0);
  const shared = T.tensor([1, 2, 3], [3]);
  const c = { crossattn: T.ones([1, 2, 2]), vector: T.ones([1, 3]), extra: shared, num_video_frames: 14, image_only_indicator: T.tensor([0, 0], [1, 2]) };
  const uc = { crossattn: T.zeros([1, 2, 2]), vector: T.zeros([1, 3]), extra: shared, num_video_frames: 14, image_only_indicator: T.tensor([0, 0], [1, 2]) };
  const [, , out] = g.prepare_inputs(T.zeros([1, 4]), T.ones([1]), c, uc);
  assert.deepEqual(await (out['vector'] as T.Tensor).toArray(), [0, 0, 0, 1, 1, 1], 'unconditional first');
  assert.equal(out['extra'], shared, 'the same tensor passes through');
  assert.equal(out['num_video_frames'], 14);
  assert.ok(out['image_only_indicator'] instanceof T.Tensor, 'equal host values pass through');
  // a multi-element entry that differs
  assert.throws(
    () => g.prepareInputs(T.zeros([1, 4]), T.ones([1]), { ...c, image_only_indicator: T.tensor([0, 1], [1, 2]) }, uc),
    (e: unknown) => e instanceof GuiderInputError && /cond entry 'image_only_indicator' differs between c and uc/.test(e.message) && /'vector', 'crossattn', 'concat'/.test(e.message),
  );
  // lazy tensors that are different objects cannot be compared while building the graph
  assert.throws(
    () => g.prepareInputs(T.zeros([1, 4]), T.ones([1]), { ...c, extra: T.add(shared, 0) }, { ...uc, extra: T.add(shared, 0) }),
    (e: unknown) => e instanceof GuiderInputError && /'extra' is a different tensor in c and uc/.test(e.message),
  );
  assert.throws(
    () => g.prepareInputs(T.zeros([1, 4]), T.ones([1]), { ...c, num_video_frames: 4 }, uc),
    (e: unknown) => e instanceof GuiderInputError && /'num_video_frames' differs/.test(e.message),
  );
  const { vector: _v, ...ucNoVector } = uc;
  assert.throws(() => g.prepareInputs(T.zeros([1, 4]), T.ones([1]), c, ucNoVector), /'vector' is in c but not in uc/);
  // keys only in uc are dropped; IdentityGuider copies c
  const [, , idOut] = new IdentityGuider().prepareInputs(T.zeros([1, 4]), T.ones([1]), c, uc);
  assert.notEqual(idOut, c);
  assert.deepEqual(Object.keys(idOut), Object.keys(c));
});

// ------------------------------------------------------------------------------ denoisers

test('DiscreteDenoiser: sigma_to_idx takes the first index on exact ties; c_noise is an int64 index', async () => {
  const grid = new (class extends Discretization {
    getSigmas(n: number): Float32Array {
      return Float32Array.from({ length: n }, (_, i) => n - i); // n, ..., 2, 1
    }
  })();
  const d = new DiscreteDenoiser(new EpsScaling(), 4, grid); // buffer ascending: 1, 2, 3, 4
  assert.deepEqual(Array.from((await d.sigmas.data()) as Float32Array), [1, 2, 3, 4]);
  const q = T.tensor([1.5, 2.5, 3.5, 0, 9, 2.2], [6]);
  assert.deepEqual(await d.sigma_to_idx(q).toArray(), [0, 1, 2, 0, 3, 1]);
  assert.deepEqual(await d.possibly_quantize_sigma(q).toArray(), [1, 2, 3, 1, 4, 2]);
  const idx = d.possibly_quantize_c_noise(T.tensor([2.2, 3.9], [2]));
  assert.equal(idx.dtype, 'int64');
  assert.deepEqual(await idx.toArray(), [1, 3]);
  assert.deepEqual(await d.idx_to_sigma(2).toArray(), [3]);
  // 2-d sigma keeps its shape
  assert.deepEqual(d.sigma_to_idx(T.tensor([1, 2, 3, 4], [2, 2])).shape, [2, 2]);
  const noQ = new DiscreteDenoiser(new EpsScaling(), 4, grid, false, false);
  assert.equal(noQ.possibly_quantize_c_noise(q), q);
});

test('Denoiser: extra model inputs and non-tensor cond entries reach the network', async () => {
  const d = new Denoiser(new EDMScaling());
  let seen: { cond: unknown; extra: unknown } | undefined;
  const net = (x: T.Tensor, t: T.Tensor, cond: Record<string, unknown>, extra?: Record<string, unknown>): T.Tensor => {
    seen = { cond, extra };
    return fakeNetwork(x, t, cond);
  };
  const cond = { crossattn: T.ones([2, 1, 3]), num_video_frames: 7 };
  const out = d.forward({ forward: net }, T.ones([2, 3, 2, 2]), T.tensor([0.5, 2]), cond, { image_only_indicator: 1 });
  assert.deepEqual(out.shape, [2, 3, 2, 2]);
  assert.equal((seen!.cond as Record<string, unknown>)['num_video_frames'], 7);
  assert.deepEqual(seen!.extra, { image_only_indicator: 1 });
  await out.data();
});

// ---------------------------------------------------------------------------- sampling utils

test('linear_multistep_coeff: exact integrals of the Lagrange basis, with numpy float32 denominators', () => {
  const t = Float32Array.from([14.6, 7.1, 3.3, 1.2, 0.4, 0.0]);
  const t64 = Float64Array.from(t);
  // order 1: the basis is 1, the integral is the step
  assert.equal(linear_multistep_coeff(1, t, 0, 0), t[1]! - t[0]!);
  // the basis polynomials sum to 1, so their integrals sum to the step: exactly with float64
  // denominators, to float32 precision with the float32 ones numpy uses for a float32 array
  for (let order = 1; order <= 4; order++) {
    const i = 3;
    let s64 = 0;
    let s32 = 0;
    for (let j = 0; j < order; j++) {
      s64 += linear_multistep_coeff(order, t64, i, j);
      s32 += linear_multistep_coeff(order, t, i, j);
    }
    const step = t[i + 1]! - t[i]!;
    assert.ok(Math.abs(s64 - step) < 1e-12, `order ${order}: sum ${s64}`);
    assert.ok(Math.abs(s32 - step) < 1e-6 * Math.abs(step), `order ${order}: sum ${s32}`);
  }
  // order 2, j = 0: integral of (tau - t[i-1]) / f32(t[i] - t[i-1]) from t[i] to t[i+1], in closed form
  const i = 2;
  const d = Math.fround(t[i]! - t[i - 1]!);
  const closed = ((t[i + 1]! - t[i - 1]!) ** 2 - (t[i]! - t[i - 1]!) ** 2) / 2 / d;
  assert.ok(Math.abs(linear_multistep_coeff(2, t, i, 0) - closed) < 1e-12 * Math.abs(closed));
  assert.throws(() => linear_multistep_coeff(4, t, 2, 0), /Order 4 too high for step 2/);
});

test('get_ancestral_step: eta 0 gives (sigma_to, 0); eta 1 keeps sigma_down^2 + sigma_up^2 = sigma_to^2', async () => {
  const from = T.tensor([2.0]);
  const to = T.tensor([1.0]);
  const [down0, up0] = get_ancestral_step(from, to, 0);
  assert.deepEqual(await down0.toArray(), [1]);
  assert.deepEqual(await up0.toArray(), [0]);
  const [down, up] = get_ancestral_step(from, to);
  const dn = await down.item();
  const u = await up.item();
  assertClose([dn * dn + u * u], [1], { atol: 1e-6, rtol: 1e-6 });
  assertClose([u], [Math.sqrt(3 / 4)], { atol: 1e-6, rtol: 1e-6 });
});

test('sigma samplers: rand= uses the given draw and still advances the generator, as the reference does', async () => {
  const s = new EDMSampling();
  const g = new T.Generator(5);
  const rand = T.tensor([0, 1], [2]);
  const got = await s.call(2, { rand, generator: g }).toArray();
  assertClose(got, [Math.exp(-1.2), Math.exp(0)], { atol: 1e-6, rtol: 1e-6 });
  const ref = new T.Generator(5);
  ref.randnData([2], 'float32');
  assert.deepEqual(Array.from(g.randnData([3], 'float32')), Array.from(ref.randnData([3], 'float32')));
  const ds = new DiscreteSampling(new LegacyDDPMDiscretization(), 1000);
  assert.ok(ds.sigmas[0]! < ds.sigmas[999]!, 'ascending grid');
  assert.deepEqual(await ds.call(2, { rand: T.tensor([0, 999], [2], 'int64') }).toArray(), [ds.sigmas[0], ds.sigmas[999]]);
});

// ----------------------------------------------------------------------------- schedulers

test('LR schedulers: steps past the last cycle are a clear error; boundaries belong to the earlier cycle', () => {
  const s = new LambdaLinearScheduler([2, 2], [0.0, 0.0], [1.0, 0.5], [0.0, 0.1], [10, 5]);
  assert.equal(s.call(10), 0.0 + ((1.0 - 0.0) * (10 - 10)) / 10, 'step 10 ends cycle 0');
  assert.equal(s.call(11), ((0.5 - 0.1) / 2) * 1 + 0.1, 'step 11 is step 1 of cycle 1 (warm-up)');
  assert.equal(s.call(15), 0.0 + ((0.5 - 0.0) * (5 - 5)) / 5, 'step 15 is the last covered step');
  assert.throws(
    () => s.call(16),
    (e: unknown) => e instanceof SchedulerRangeError && /step 16 is past the last cycle/.test(e.message) && /end at step 15/.test(e.message),
  );
  const c2 = new LambdaWarmUpCosineScheduler2([0], [0.1], [1.0], [0.0], [100]);
  assert.equal(c2.call(100), 0.1);
  assert.throws(() => c2.call(101), SchedulerRangeError);
  // LambdaLinearScheduler decays from the cycle start, not from the end of the warm-up
  const lin = new LambdaLinearScheduler([50], [0.0], [1.0], [0.0], [100]);
  assert.equal(lin.call(50), 0.5);
});

// ---------------------------------------------------------------------------------- loss

test('StandardDiffusionLoss: lpips and unknown loss types are clear errors', () => {
  assert.throws(
    () => new StandardDiffusionLoss(new EDMSampling(), new EDMWeighting(), 'lpips'),
    (e: unknown) => e instanceof LossConfigError && /'lpips' is not supported/.test(e.message) && /use loss_type 'l2' or 'l1'/.test(e.message),
  );
  const base = { sigma_sampler_config: { target: `${DM}.sigma_sampling.EDMSampling` }, loss_weighting_config: { target: `${DM}.loss_weighting.EDMWeighting` } };
  throwsConfig(
    () => instantiateFromConfig({ target: `${DM}.loss.StandardDiffusionLoss`, params: { ...base, loss_type: 'lpips' } }, { path: 'model.params.loss_fn_config' }),
    'model.params.loss_fn_config: cannot build StandardDiffusionLoss',
    "'lpips' is not supported",
  );
  throwsConfig(() => instantiateFromConfig({ target: `${DM}.loss.StandardDiffusionLoss`, params: { ...base, loss_type: 'l3' } }), "unknown loss_type 'l3'");
});

test('StandardDiffusionLoss: the draws can be inputs of a compiled step and give the eager result', async () => {
  const loss = new StandardDiffusionLoss(new EDMSampling(), new EDMWeighting(), 'l2', 0.1, ['image_only_indicator']);
  const denoiser = new Denoiser(new EDMScaling());
  const shape = [3, 4, 2, 2];
  const input = T.tensor(Float32Array.from({ length: 48 }, (_, i) => Math.sin(i)), shape);
  const cond = { crossattn: T.tensor(Float32Array.from({ length: 3 * 2 * 4 }, (_, i) => Math.cos(i)), [3, 2, 4]) };
  let extraSeen: unknown;
  const net = (x: T.Tensor, t: T.Tensor, c: Record<string, unknown>, extra?: Record<string, unknown>): T.Tensor => {
    extraSeen = extra;
    return fakeNetwork(x, t, c);
  };
  const batch = { image_only_indicator: 0, other: 1 };
  const eager = await loss._forward(net, denoiser, cond, input, batch, { generator: new T.Generator(11) }).data();
  assert.deepEqual(extraSeen, { image_only_indicator: 0 }, 'only batch2model_keys reach the network');
  const draws = loss.drawNoise(shape, new T.Generator(11));
  assert.ok(draws.offset_noise && draws.offset_noise.length === 12);
  const step = await T.compile(
    (rand, noise, offset) => loss._forward(net, denoiser, cond, input, batch, { draws: { rand, noise, offset_noise: offset } }),
    [{ shape: [3], name: 'rand' }, { shape, name: 'noise' }, { shape: [3, 4], name: 'offset' }],
  );
  const compiled = await (await step(draws.rand as Float32Array, draws.noise, draws.offset_noise)).data();
  assertClose(compiled as Float32Array, eager as Float32Array, { atol: 1e-6, rtol: 1e-5 }, 'compiled loss');
  await step.release();
});
