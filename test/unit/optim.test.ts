// Optimizers (src/training/optim.ts) and the EMA (src/modules/ema.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Module, ModuleList, Parameter } from '../../src/nn/index.js';
import { ConfigError } from '../../src/config/index.js';
import { registry } from '../../src/registry.js';
import { LambdaLinearScheduler } from '../../src/lr_scheduler.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import {
  Adam,
  AdamW,
  LambdaLR,
  clipGradNorm,
  fmaf,
  instantiateOptimizerFromConfig,
  powInt,
  type AdamOptions,
  type Optimizer,
} from '../../src/training/optim.js';
import { LitEma, emaShadowName, float32Values } from '../../src/modules/ema.js';

const f32 = Math.fround;

function param(values: number[]): Parameter {
  return new Parameter([values.length], 'float32', { kind: 'host', dtype: 'float32', data: Float32Array.from(values) });
}

function values(p: Parameter): number[] {
  return [...float32Values(p)];
}

const P0 = [0.5, -1.25, 0.3, 2.0, -0.7, 1e-3];
const GRADS = [
  [0.1, -0.2, 0.3, -0.05, 1.5, -2.0],
  [-0.4, 0.25, 0.33, 0.01, -1.1, 0.7],
  [0.2, 0.2, -0.6, 0.09, 0.3, -0.01],
];

function run(Cls: typeof Adam | typeof AdamW, opts: AdamOptions, grads = GRADS, p0 = P0): number[] {
  const p = param(p0);
  const opt = new Cls([p], opts);
  for (const g of grads) opt.step([Float32Array.from(g)]);
  return values(p);
}

/** Adam(W) in plain float64 arithmetic, written from the papers' formulas. */
function adamF64(p0: number[], grads: number[][], o: { lr: number; b1: number; b2: number; eps: number; wd: number; decoupled: boolean; amsgrad?: boolean }): number[] {
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  const vmax = p.map(() => 0);
  grads.forEach((gs, s) => {
    const t = s + 1;
    for (let i = 0; i < p.length; i++) {
      let g = gs[i]!;
      if (o.decoupled) p[i]! *= 1 - o.lr * o.wd;
      else g += o.wd * p[i]!;
      m[i] = o.b1 * m[i]! + (1 - o.b1) * g;
      v[i] = o.b2 * v[i]! + (1 - o.b2) * g * g;
      vmax[i] = Math.max(vmax[i]!, v[i]!);
      const vhat = (o.amsgrad ? vmax[i]! : v[i]!) / (1 - o.b2 ** t);
      p[i]! -= (o.lr / (1 - o.b1 ** t)) * (m[i]! / (Math.sqrt(vhat) + o.eps));
    }
  });
  return p;
}

function assertClose(got: number[], want: number[], rtol: number, what: string): void {
  assert.equal(got.length, want.length, what);
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) <= rtol * Math.max(1, Math.abs(want[i]!)), `${what}[${i}]: ${g} vs ${want[i]}`));
}

test('fmaf rounds a*b+c once (a case where rounding the float64 sum to float32 is wrong)', () => {
  // a*b = 64 - 2^-30 exactly; c = 2^30 + 128 (odd last bit). The exact sum lies just below the
  // midpoint 2^30 + 192, so it rounds down; the float64 sum is the midpoint itself and ties to even.
  const a = 64 * (1 + 2 ** -18);
  const b = 1 - 2 ** -18;
  const c = 2 ** 30 + 128;
  assert.equal(fmaf(a, b, c), 2 ** 30 + 128);
  assert.equal(f32(a * b + c), 2 ** 30 + 256);
  assert.equal(fmaf(a, -b, -c), -(2 ** 30 + 128));
  assert.equal(fmaf(0.5, 0.25, 1), 1.125);
  assert.ok(Number.isNaN(fmaf(NaN, 1, 1)));
});

test('powInt is x**n correctly rounded (where Math.pow is not)', () => {
  // Python: 0.9 ** 4.0 == 0.6561 (Math.pow(0.9, 4) gives 0.6561000000000001).
  assert.equal(powInt(0.9, 4), 0.6561);
  assert.equal(powInt(0.999, 0), 1);
  assert.equal(powInt(0.5, 10), 2 ** -10);
});

test('AdamW and Adam agree with a float64 re-derivation within float32 rounding', () => {
  const cfgs = [
    { lr: 1e-3, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 1e-2, decoupled: true },
    { lr: 0.05, b1: 0.8, b2: 0.99, eps: 1e-6, wd: 0.1, decoupled: true, amsgrad: true },
    { lr: 0.01, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.01, decoupled: false },
    { lr: 0.02, b1: 0.3, b2: 0.9, eps: 1e-8, wd: 0, decoupled: false, amsgrad: true },
  ];
  const P = P0.map(f32);
  const G = GRADS.map((g) => g.map(f32));
  for (const c of cfgs) {
    const opts: AdamOptions = { lr: c.lr, betas: [c.b1, c.b2], eps: c.eps, weight_decay: c.wd, amsgrad: c.amsgrad ?? false };
    const want = adamF64(P, G, c);
    for (const momentUpdate of ['lerp', 'mul_add'] as const) {
      const got = run(c.decoupled ? AdamW : Adam, { ...opts, momentUpdate });
      assertClose(got, want, 2e-6, `${c.decoupled ? 'AdamW' : 'Adam'} ${JSON.stringify(c)} ${momentUpdate}`);
    }
  }
});

// Expected values from torch 1.13.1 (CPU capability AVX2), produced by a scratch script with
// p0[k] = ((37k mod 101) - 50) / 64 and gradient s: g[k] = ((13(k+1)(s+3) + 7 mod 97) - 48) / 32
// (k < 64, s < 5: exact in float32), lr=0.05, printed as repr(np.float32(x)):
//  - torch.optim.AdamW(lr=0.05) (torch 1.13 updates exp_avg with mul_(beta1).add_(grad, alpha=1-beta1));
//  - AdamW as torch >= 2.0 runs it (exp_avg.lerp_(grad, 1-beta1)), written out op by op with torch tensors;
//  - torch.optim.Adam(lr=0.05, weight_decay=0.1, amsgrad=True).
// All 64 elements matched; the elements kept here are ones where rounding a*b+c twice (no FMA)
// gives a different float32, so they check the fused multiply-adds too. (On 10,007 random
// elements over 25 steps, several settings and both variants, the updates matched bit for bit.)
test('AdamW / Adam match torch bit for bit', () => {
  const n = 64;
  const p0 = Array.from({ length: n }, (_, k) => (((k * 37) % 101) - 50) / 64);
  const grads = Array.from({ length: 5 }, (_, s) => Array.from({ length: n }, (_, k) => ((((k + 1) * (s + 3) * 13 + 7) % 97) - 48) / 32));
  const cases: Array<[typeof Adam | typeof AdamW, AdamOptions, Record<number, number>]> = [
    [AdamW, { lr: 0.05, momentUpdate: 'mul_add' }, { 2: 0.47271165, 8: 0.5860192, 15: -0.18932089, 34: -0.013914689 }],
    [AdamW, { lr: 0.05 }, { 8: 0.5860193, 12: -0.013135396, 17: -0.35429388, 18: 0.06349747 }],
    [Adam, { lr: 0.05, weight_decay: 0.1, amsgrad: true, momentUpdate: 'mul_add' }, { 4: 0.058018234, 15: -0.1890648, 48: 0.025818517, 61: -0.104620405 }],
  ];
  for (const [Cls, opts, want] of cases) {
    const got = run(Cls, opts, grads, p0);
    for (const [i, w] of Object.entries(want)) assert.equal(got[Number(i)], f32(w), `${Cls.name} ${JSON.stringify(opts)} element ${i}`);
  }
});

test('defaults are torch.optim.AdamW / Adam defaults', () => {
  const w = new AdamW([param([1])]);
  const a = new Adam([param([1])]);
  const g = w.stateDict().param_groups[0]!;
  assert.deepEqual(Object.keys(g), ['lr', 'betas', 'eps', 'weight_decay', 'amsgrad', 'foreach', 'maximize', 'capturable', 'params']);
  assert.deepEqual({ ...g }, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 1e-2, amsgrad: false, foreach: null, maximize: false, capturable: false, params: [0] });
  const ga = a.stateDict().param_groups[0]!;
  assert.equal(ga['weight_decay'], 0);
  assert.deepEqual(Object.keys(ga), ['lr', 'betas', 'eps', 'weight_decay', 'amsgrad', 'maximize', 'foreach', 'capturable', 'differentiable', 'fused', 'params']);
  assert.throws(() => new AdamW([param([1])], { lr: -1 }), /invalid learning rate/);
  assert.throws(() => new AdamW([param([1])], { betas: [1.0, 0.999] }), /beta parameter at index 0/);
});

test('weight decay: AdamW decays the weights, Adam adds L2 to the gradient', () => {
  const zero = [[0, 0, 0]];
  // AdamW with a zero gradient: only param *= 1 - lr*wd (exp_avg stays 0).
  const w = run(AdamW, { lr: 0.1, weight_decay: 0.5 }, zero, [1, -2, 0.25]);
  assert.deepEqual(w, [1, -2, 0.25].map((x) => f32(x * f32(1 - 0.1 * 0.5))));
  // Adam with a zero gradient: grad = wd * param, so the first step moves each weight by ~lr against its sign.
  const a = run(Adam, { lr: 0.1, weight_decay: 0.5 }, zero, [1, -2, 0.25]);
  assertClose(a, [0.9, -1.9, 0.15], 1e-6, 'Adam L2');
  // Without weight decay the two are the same algorithm.
  assert.deepEqual(run(Adam, { lr: 0.05 }), run(AdamW, { lr: 0.05, weight_decay: 0 }));
});

test('maximize and parameters without a gradient', () => {
  const p = param([1, 2]);
  const q = param([3]);
  const opt = new AdamW([p, q], { lr: 0.1, weight_decay: 0, maximize: true });
  opt.step([Float32Array.of(1, -1), null]);
  assertClose(values(p), [1.1, 1.9], 1e-6, 'maximize');
  assert.deepEqual(values(q), [3]);
  assert.deepEqual([...opt.stateDict().state.keys()], [0]);
  assert.throws(() => opt.step([Float32Array.of(1)]), /1 gradients for 2 parameters/);
  assert.throws(() => opt.step([Float32Array.of(1), Float32Array.of(1)]), /gradient 0 has 1 elements/);
});

test('state save / restore (through safetensors) then more steps equals uninterrupted steps exactly', () => {
  const grads = [...GRADS, [0.5, 0.5, 0.5, -0.5, -0.5, -0.5], [1e-3, 2e-3, -3e-3, 4e-3, 0, 0]];
  const make = (): [Parameter, Parameter, Optimizer] => {
    const a = param(P0.slice(0, 4));
    const b = param(P0.slice(4));
    const opt = new AdamW(
      [
        { params: [a], lr: 0.01 },
        { params: [b], lr: 0.02, weight_decay: 0.1, amsgrad: true },
      ],
      {},
    );
    return [a, b, opt];
  };
  const stepAll = (opt: Optimizer, g: number[]): void => opt.step([Float32Array.from(g.slice(0, 4)), Float32Array.from(g.slice(4))]);
  const [a1, b1, o1] = make();
  for (const g of grads) stepAll(o1, g);

  const [a2, b2, o2] = make();
  for (const g of grads.slice(0, 3)) stepAll(o2, g);
  const dir = mkdtempSync(join(tmpdir(), 'sgm-optim-'));
  try {
    const { tensors, meta } = o2.toTensors();
    assert.deepEqual([...tensors.keys()], ['state.0.step', 'state.0.exp_avg', 'state.0.exp_avg_sq', 'state.1.step', 'state.1.exp_avg', 'state.1.exp_avg_sq', 'state.1.max_exp_avg_sq']);
    const file = join(dir, 'opt.safetensors');
    writeSafetensors(file, tensors, { optimizer: meta });
    // A fresh optimizer over parameters with the saved values (what a resumed trainer has).
    const a3 = param(values(a2));
    const b3 = param(values(b2));
    const o3 = new AdamW([{ params: [a3] }, { params: [b3], amsgrad: true }], {});
    o3.loadTensors(readSafetensors(file), meta);
    assert.equal(o3.paramGroups[1]!.lr, 0.02);
    assert.equal(o3.paramGroups[1]!.weight_decay, 0.1);
    assert.equal(o3.state.get(a3)!.step, 3);
    for (const g of grads.slice(3)) stepAll(o3, g);
    assert.deepEqual(values(a3), values(a1));
    assert.deepEqual(values(b3), values(b1));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // stateDict / loadStateDict directly, too.
  const [a4, b4, o4] = make();
  for (const g of grads.slice(0, 3)) stepAll(o4, g);
  const sd = o4.stateDict();
  assert.equal(sd.state.get(1)!.step, 3);
  assert.deepEqual(sd.param_groups.map((g) => g.params), [[0], [1]]);
  for (const g of grads.slice(3)) stepAll(o4, g);
  void a4;
  void b4;
  const [a5, b5, o5] = make();
  a5.assign(Float32Array.from(values(a2)));
  b5.assign(Float32Array.from(values(b2)));
  o5.loadStateDict(sd);
  for (const g of grads.slice(3)) stepAll(o5, g);
  assert.deepEqual(values(a5), values(a1));
  assert.deepEqual(values(b5), values(b1));
});

test('LambdaLR with LambdaLinearScheduler: lr = base_lr * schedule(step)', () => {
  const sched = new LambdaLinearScheduler([2], [0.1], [1.0], [1e-6], [10]);
  const p = param([1, 2]);
  const opt = new AdamW([p], { lr: 1e-4 });
  const lr = new LambdaLR(opt, (n) => sched.schedule(n));
  // Construction performs the initial step: last_epoch 0.
  assert.equal(opt.paramGroups[0]!.lr, 1e-4 * 1e-6);
  assert.equal(opt.paramGroups[0]!['initial_lr'], 1e-4);
  const seen: number[] = [];
  for (let s = 0; s < 5; s++) {
    seen.push(opt.paramGroups[0]!.lr);
    opt.step([Float32Array.of(1, 1)]);
    lr.step();
  }
  const f = (n: number): number => (n < 2 ? ((1.0 - 1e-6) / 2) * n + 1e-6 : 0.1 + ((1.0 - 0.1) * (10 - n)) / 10);
  assert.deepEqual(seen, [0, 1, 2, 3, 4].map((n) => 1e-4 * f(n)));
  const sd = lr.stateDict();
  assert.deepEqual(sd, { base_lrs: [1e-4], last_epoch: 5, verbose: false, _step_count: 6, _get_lr_called_within_step: false, _last_lr: [1e-4 * f(5)], lr_lambdas: [null] });
  assert.deepEqual(opt.stateDict().param_groups[0]!['initial_lr'], 1e-4);
  // Resume: a new scheduler over a restored optimizer continues the schedule.
  const opt2 = new AdamW([param([1, 2])], { lr: 1e-4 });
  opt2.loadStateDict(opt.stateDict());
  const lr2 = new LambdaLR(opt2, (n) => sched.schedule(n), sd.last_epoch - 1);
  lr2.loadStateDict(sd);
  lr2.step();
  assert.equal(opt2.paramGroups[0]!.lr, 1e-4 * f(6));
});

test('clipGradNorm scales gradients to the global norm', () => {
  const g1 = Float32Array.of(3, 0);
  const g2 = Float32Array.of(0, 4);
  const total = clipGradNorm([g1, null, g2], 1.0);
  assert.equal(total, 5);
  const coef = f32(1 / f32(5 + 1e-6));
  assert.deepEqual([...g1, ...g2], [f32(3 * coef), 0, 0, f32(4 * coef)]);
  const h = Float32Array.of(0.3, 0.4);
  assert.equal(clipGradNorm([h], 1.0), f32(0.5));
  assert.deepEqual([...h], [f32(0.3), f32(0.4)]);
  assert.equal(clipGradNorm([Float32Array.of(-7, 2)], 1, Infinity), 7);
  assert.throws(() => clipGradNorm([Float32Array.of(NaN)], 1, 2, true), /non-finite/);
});

test('torch.optim.Adam / AdamW targets build optimizers like instantiate_optimizer_from_config', () => {
  assert.equal(registry.isPlaceholder('torch.optim.AdamW'), false);
  assert.equal(registry.isPlaceholder('torch.optim.Adam'), false);
  const p = param([1, 2, 3]);
  const opt = instantiateOptimizerFromConfig([p], 4e-5, { target: 'torch.optim.AdamW', params: { betas: [0.9, 0.99], weight_decay: 0.05 } });
  assert.ok(opt instanceof AdamW);
  assert.equal(opt.paramGroups[0]!.lr, 4e-5);
  assert.deepEqual(opt.paramGroups[0]!.betas, [0.9, 0.99]);
  assert.equal(opt.paramGroups[0]!.weight_decay, 0.05);
  const adam = instantiateOptimizerFromConfig([param([1])], 1e-3, { target: 'torch.optim.Adam' });
  assert.ok(adam instanceof Adam);
  assert.equal(adam.paramGroups[0]!.weight_decay, 0);
  assert.throws(
    () => instantiateOptimizerFromConfig([p], 1e-3, { target: 'torch.optim.AdamW', params: { weight_decays: 0.1 } }),
    (e: unknown) => e instanceof ConfigError && /unknown param 'weight_decays'.*did you mean 'weight_decay'/.test(e.message),
  );
});

// ---------------------------------------------------------------------------------------------
// LitEma

class Leaf extends Module {
  weight = param([0.5, -1.25, 0.3]);
  frozen = param([7]);
  constructor() {
    super();
    this.frozen.requiresGrad = false;
  }
}

class Net extends Module {
  input_blocks = new ModuleList([new ModuleList([new Leaf()])]);
}

class Wrapper extends Module {
  diffusion_model = new Net();
}

test('LitEma decay warm-up: min(decay, (1 + n) / (10 + n)) in float32', () => {
  const m = new Wrapper();
  const ema = new LitEma(m, 0.5);
  assert.equal(ema.decayValue, 0.5);
  const seen: number[] = [];
  for (let n = 0; n < 12; n++) {
    assert.equal(ema.numUpdates, n);
    seen.push(ema.peekDecay());
    ema.forward(m);
  }
  assert.deepEqual(seen, [2 / 11, 3 / 12, 4 / 13, 5 / 14, 6 / 15, 7 / 16, 8 / 17, 9 / 18, 0.5, 0.5, 0.5, 0.5].map(f32));
  const fixed = new LitEma(m, 0.75, false);
  assert.equal(fixed.numUpdates, -1);
  fixed.forward(m);
  assert.equal(fixed.peekDecay(), 0.75);
  assert.equal(fixed.numUpdates, -1);
  fixed.reset_num_updates();
  assert.equal(fixed.numUpdates, 0);
  assert.throws(() => new LitEma(m, 1.5), /Decay must be between 0 and 1/);
});

// Expected shadows from the reference's LitEma (sgm/modules/ema.py) under torch 1.13.1: a module with
// parameter w = [0.5, -1.25, 0.3], LitEma(decay=0.9), then w set to each row of `updates` followed
// by ema(model); printed as repr(np.float32(x)).
test('LitEma updates match the reference bit for bit', () => {
  const m = new Wrapper();
  const leaf = (m.diffusion_model.input_blocks.at(0) as ModuleList).at(0) as Leaf;
  const ema = new LitEma(m, 0.9);
  const updates = [
    [0.6, -1.0, 0.1],
    [0.61, -0.9, 0.2],
    [1.5, 2.5, -3.3],
  ];
  const want = [
    [0.5818182, -1.0454545, 0.13636364],
    [0.60295457, -0.9363636, 0.18409091],
    [1.223986, 1.4426576, -2.227972],
  ];
  const shadow = ema.shadows.get('diffusion_modelinput_blocks00weight')!;
  let f64 = [0.5, -1.25, 0.3].map(f32);
  updates.forEach((u, k) => {
    leaf.weight.assign(Float32Array.from(u));
    ema.forward(m);
    assert.deepEqual([...float32Values(shadow)], want[k]!.map(f32));
    // Independent float64 check: s <- d*s + (1-d)*p with d = min(0.9, (1+n)/(10+n)).
    const d = Math.min(0.9, (k + 2) / (k + 11));
    f64 = f64.map((s, i) => d * s + (1 - d) * f32(u[i]!));
    assertClose([...float32Values(shadow)], f64, 1e-6, `step ${k}`);
  });
  assert.equal(ema.numUpdates, 3);
});

test('LitEma state dict: the reference names and layout', () => {
  const m = new Wrapper();
  assert.equal(emaShadowName('diffusion_model.input_blocks.0.0.weight'), 'diffusion_modelinput_blocks00weight');
  const ema = new LitEma(m, 0.9999);
  const sd = ema.stateDict('model_ema.');
  // Only parameters that require grad get a shadow.
  assert.deepEqual([...sd.keys()], ['model_ema.decay', 'model_ema.num_updates', 'model_ema.diffusion_modelinput_blocks00weight']);
  assert.equal(sd.get('model_ema.decay')!.dtype, 'float32');
  assert.deepEqual(sd.get('model_ema.decay')!.shape, []);
  assert.equal(sd.get('model_ema.num_updates')!.dtype, 'int32');
  assert.deepEqual([...ema.m_name2s_name], [['diffusion_model.input_blocks.0.0.weight', 'diffusion_modelinput_blocks00weight']]);
  ema.forward(m);
  ema.forward(m);
  // Round trip into a fresh EMA.
  const source = new Map([...ema.stateDict()].map(([k, v]) => [k, { dtype: v.storage.dtype, shape: v.shape, storage: v.storage }]));
  const other = new LitEma(new Wrapper(), 0.1);
  other.loadStateDict(source);
  assert.equal(other.numUpdates, 2);
  assert.equal(other.decayValue, f32(0.9999));
  const leaf = (m.diffusion_model.input_blocks.at(0) as ModuleList).at(0) as Leaf;
  leaf.weight.assign(Float32Array.of(1, 1, 1));
  ema.forward(m);
  other.forward(m);
  assert.deepEqual([...float32Values(other.shadows.get('diffusion_modelinput_blocks00weight')!)], [...float32Values(ema.shadows.get('diffusion_modelinput_blocks00weight')!)]);
});

test('LitEma over a model built without values (for loading): shadows filled by the checkpoint or copied on first use', () => {
  const m = new Wrapper();
  const leaf = (m.diffusion_model.input_blocks.at(0) as ModuleList).at(0) as Leaf;
  leaf.weight = new Parameter([3], 'float32', { kind: 'empty', dtype: 'float32' });
  const ema = new LitEma(m, 0.9);
  const shadow = ema.shadows.get('diffusion_modelinput_blocks00weight')!;
  ema.loadStateDict(new Map([['diffusion_modelinput_blocks00weight', { dtype: 'float32' as const, shape: [3], storage: { kind: 'host' as const, dtype: 'float32' as const, data: Float32Array.of(4, 5, 6) } }]]), { strict: false });
  assert.deepEqual([...float32Values(shadow)], [4, 5, 6]);
  const ema2 = new LitEma(m, 0.9);
  leaf.weight.assign(Float32Array.of(1, 2, 3));
  assert.deepEqual([...float32Values(ema2.shadows.get('diffusion_modelinput_blocks00weight')!)], [1, 2, 3]);
});

test('LitEma store / copyTo / restore round trip; non-trainable parameters untouched', async () => {
  const m = new Wrapper();
  const leaf = (m.diffusion_model.input_blocks.at(0) as ModuleList).at(0) as Leaf;
  const ema = new LitEma(m, 0.9);
  leaf.weight.assign(Float32Array.of(1, 2, 3));
  leaf.frozen.assign(Float32Array.of(-5));
  ema.forward(m);
  const shadow = [...float32Values(ema.shadows.get('diffusion_modelinput_blocks00weight')!)];
  const params = m.parameters();
  ema.store(params);
  ema.copyTo(m);
  assert.deepEqual(values(leaf.weight), shadow);
  assert.deepEqual(values(leaf.frozen), [-5]);
  // copyTo copies: changing the model does not change the shadow.
  float32Values(leaf.weight)[0] = 99;
  assert.deepEqual([...float32Values(ema.shadows.get('diffusion_modelinput_blocks00weight')!)], shadow);
  ema.restore(params);
  assert.deepEqual(values(leaf.weight), [1, 2, 3]);
  assert.deepEqual(values(leaf.frozen), [-5]);
  const inside = await ema.scope(m, () => values(leaf.weight));
  assert.deepEqual(inside, shadow);
  assert.deepEqual(values(leaf.weight), [1, 2, 3]);
});

test('optimizer steps around an EMA scope are unaffected by the swap', async () => {
  const mk = (): [Wrapper, Leaf, AdamW, LitEma] => {
    const m = new Wrapper();
    const leaf = (m.diffusion_model.input_blocks.at(0) as ModuleList).at(0) as Leaf;
    const trainable = m.parameters().filter((p) => p.requiresGrad);
    return [m, leaf, new AdamW(trainable, { lr: 0.1 }), new LitEma(m, 0.99)];
  };
  const [m1, l1, o1, e1] = mk();
  const [m2, l2, o2, e2] = mk();
  for (let s = 0; s < 3; s++) {
    const g = Float32Array.of(0.1 * s, -0.2, 0.3);
    o1.step([g.slice()]);
    e1.forward(m1);
    o2.step([g.slice()]);
    e2.forward(m2);
    await e2.scope(m2, () => undefined);
  }
  assert.deepEqual(values(l2.weight), values(l1.weight));
  assert.deepEqual([...float32Values(e2.shadows.values().next().value!)], [...float32Values(e1.shadows.values().next().value!)]);
});
