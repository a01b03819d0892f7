// Optimizers on host float32 arrays: torch.optim.Adam / AdamW (single-tensor algorithm), LambdaLR
// and clip_grad_norm_. The trainer computes gradients in one ONNX graph and hands them here as one
// Float32Array per parameter; the update is a plain loop over typed arrays.
//
// Arithmetic follows PyTorch's CPU kernels operation by operation: float32 tensors, Python-float
// hyperparameters combined in float64 and rounded to float32 where they meet a tensor. PyTorch's
// vectorised CPU kernels (AVX2/AVX512 builds) fuse `a + w * b` in lerp_, add_(alpha=) and
// addcmul_ into one fused multiply-add; `fmaf` below reproduces that rounding exactly, so the
// updates are bit-identical to torch on such a CPU (measured against torch 1.13.1, AVX2 capability;
// see test/unit/optim.test.ts). `fusedMultiplyAdd: false` gives the unfused rounding instead.
import { Variable } from '../tensor/index.js';
import { float32Values } from '../modules/ema.js';
import type { Registry, TargetDef } from '../config/registry.js';
import { instantiateFromConfig } from '../config/instantiate.js';
import type { SafetensorsDType } from '../io/safetensors.js';

// ---------------------------------------------------------------------------------------------
// Float32 arithmetic helpers

const f32 = Math.fround;

/**
 * fma(a, b, c) rounded once to float32, for float32 a and b: the product is exact in float64; the
 * float64 sum is rounded to float32 unless it sits exactly on a float32 midpoint with a non-zero
 * float64 rounding error, where the error decides the direction.
 */
export function fmaf(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const r = f32(s);
  if (r === s) return r;
  const bb = s - p;
  const err = p - (s - bb) + (c - bb);
  if (err === 0) return r;
  const d = s - r;
  const o = r + 2 * d;
  if (f32(o) !== o) return r;
  return err > 0 === d > 0 ? o : r;
}

const SPLIT = 134217729; // 2^27 + 1
/**
 * x ** n for an integer n >= 0, correctly rounded for all practical purposes (double-double
 * exponentiation by squaring). Python's `beta ** step` is glibc's pow, correctly rounded in
 * practice; V8's Math.pow is not (it differs in the last bit for ~3% of Adam's bias corrections).
 */
export function powInt(x: number, n: number): number {
  if (!Number.isInteger(n) || n < 0) return Math.pow(x, n);
  let rh = 1;
  let rl = 0;
  let bh = x;
  let bl = 0;
  const mul = (ah: number, al: number, ch: number, cl: number): [number, number] => {
    const p = ah * ch;
    let t = SPLIT * ah;
    const ahh = t - (t - ah);
    const ahl = ah - ahh;
    t = SPLIT * ch;
    const chh = t - (t - ch);
    const chl = ch - chh;
    const e = ahh * chh - p + ahh * chl + ahl * chh + ahl * chl + (ah * cl + al * ch);
    const s = p + e;
    return [s, e - (s - p)];
  };
  while (n > 0) {
    if (n % 2 === 1) [rh, rl] = mul(rh, rl, bh, bl);
    n = Math.floor(n / 2);
    if (n > 0) [bh, bl] = mul(bh, bl, bh, bl);
  }
  return rh + rl;
}

// ---------------------------------------------------------------------------------------------
// Parameter groups and state

/** A parameter the optimizer updates: an nn.Parameter (or any Variable) of float32 compute dtype. */
export type ParamRef = Variable;

export interface AdamHyper {
  lr: number;
  betas: [number, number];
  eps: number;
  weight_decay: number;
  amsgrad: boolean;
  maximize: boolean;
}

/** A param group as given to the constructor: params plus overrides of the defaults. */
export type ParamGroupInput = { params: ParamRef[] } & Partial<AdamHyper> & Record<string, unknown>;

/** A live param group: its params and hyperparameters (a scheduler changes `lr`). */
export type ParamGroup = { params: ParamRef[] } & AdamHyper & Record<string, unknown>;

/** Per-parameter state, PyTorch's keys (step is torch's float32 step counter). */
export interface AdamParamState {
  step: number;
  exp_avg: Float32Array;
  exp_avg_sq: Float32Array;
  max_exp_avg_sq?: Float32Array;
}

/** PyTorch's optimizer.state_dict(): state by flat parameter index, groups with param indices. */
export interface OptimizerStateDict {
  state: Map<number, AdamParamState>;
  param_groups: Array<Record<string, unknown> & { params: number[] }>;
}

/** A tensor of a serialized state (safetensors-writable). */
export interface StateTensor {
  dtype: SafetensorsDType;
  shape: number[];
  data: Float32Array;
}

export class OptimizerStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptimizerStateError';
  }
}

/**
 * Base class: param groups, per-parameter state, PyTorch-layout state dicts. Subclasses implement
 * `updateParam`. A step reads each parameter's values (any storage: host or file, float32/16,
 * bfloat16) and assigns it a new host float32 array: arrays are never modified in place, so a
 * parameter's storage may be shared (a checkpoint map, a stored EMA copy) without surprises.
 */
export abstract class Optimizer {
  readonly paramGroups: ParamGroup[];
  readonly defaults: Readonly<Record<string, unknown>>;
  /** State by parameter (absent until the parameter's first step, as in PyTorch). */
  readonly state = new Map<ParamRef, AdamParamState>();
  /** Emulate the fused multiply-adds of PyTorch's vectorised CPU kernels (default true). */
  fusedMultiplyAdd = true;

  constructor(params: ParamRef[] | ParamGroupInput[], defaults: Record<string, unknown>) {
    this.defaults = { ...defaults };
    const groups: ParamGroupInput[] =
      params.length > 0 && !(params[0] instanceof Variable) ? (params as ParamGroupInput[]) : [{ params: params as ParamRef[] }];
    if (groups.length === 0 || groups.every((g) => g.params.length === 0)) {
      throw new OptimizerStateError(`${this.constructor.name}: optimizer got an empty parameter list`);
    }
    const seen = new Set<ParamRef>();
    this.paramGroups = groups.map((g) => {
      for (const p of g.params) {
        if (!(p instanceof Variable)) throw new OptimizerStateError(`${this.constructor.name}: params must be Variables (nn.Parameter)`);
        if (seen.has(p)) throw new OptimizerStateError(`${this.constructor.name}: some parameters appear in more than one parameter group`);
        seen.add(p);
      }
      const group = { ...this.defaults, ...g, params: [...g.params] } as ParamGroup;
      this.validate(group);
      return group;
    });
  }

  protected validate(g: ParamGroup): void {
    const who = this.constructor.name;
    if (!(g.lr >= 0)) throw new OptimizerStateError(`${who}: invalid learning rate: ${g.lr}`);
    if (!(g.eps >= 0)) throw new OptimizerStateError(`${who}: invalid epsilon value: ${g.eps}`);
    const [b1, b2] = g.betas;
    if (!(b1 >= 0 && b1 < 1)) throw new OptimizerStateError(`${who}: invalid beta parameter at index 0: ${b1}`);
    if (!(b2 >= 0 && b2 < 1)) throw new OptimizerStateError(`${who}: invalid beta parameter at index 1: ${b2}`);
    if (!(g.weight_decay >= 0)) throw new OptimizerStateError(`${who}: invalid weight_decay value: ${g.weight_decay}`);
  }

  /** All parameters in group order: the order of `step`'s gradients and of state-dict indices. */
  params(): ParamRef[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /** The parameter's current float32 values (a view of its storage when that is host float32: do not modify). */
  paramValues(p: ParamRef): Float32Array {
    return float32Values(p);
  }

  /**
   * One optimization step. `grads[i]` is the gradient of `params()[i]` (null: the parameter got no
   * gradient this step and is skipped, like a parameter whose .grad is None).
   */
  step(grads: ReadonlyArray<Float32Array | null | undefined>): void {
    const params = this.params();
    if (grads.length !== params.length) {
      throw new OptimizerStateError(`${this.constructor.name}.step: got ${grads.length} gradients for ${params.length} parameters`);
    }
    let i = 0;
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        const g = grads[i++];
        if (g === null || g === undefined) continue;
        if (g.length !== p.size) {
          throw new OptimizerStateError(
            `${this.constructor.name}.step: gradient ${i - 1} has ${g.length} elements, parameter ${p.name ?? i - 1} has ${p.size}`,
          );
        }
        const src = float32Values(p);
        const out = new Float32Array(p.size);
        let st = this.state.get(p);
        if (!st) {
          st = { step: 0, exp_avg: new Float32Array(p.size), exp_avg_sq: new Float32Array(p.size) };
          if (group.amsgrad) st.max_exp_avg_sq = new Float32Array(p.size);
          this.state.set(p, st);
        }
        this.updateParam(src, out, g, st, group);
        p.assign({ kind: 'host', dtype: 'float32', data: out });
      }
    }
  }

  protected abstract updateParam(param: Float32Array, out: Float32Array, grad: Float32Array, st: AdamParamState, group: ParamGroup): void;

  /** Hyperparameter keys a group carries in the state dict, in PyTorch's order. */
  protected abstract groupKeys(): readonly string[];

  /** optimizer.state_dict() in PyTorch's layout (arrays copied). */
  stateDict(): OptimizerStateDict {
    const index = new Map<ParamRef, number>();
    this.params().forEach((p, i) => index.set(p, i));
    const state = new Map<number, AdamParamState>();
    for (const [p, st] of this.state) {
      const e: AdamParamState = { step: st.step, exp_avg: st.exp_avg.slice(), exp_avg_sq: st.exp_avg_sq.slice() };
      if (st.max_exp_avg_sq) e.max_exp_avg_sq = st.max_exp_avg_sq.slice();
      state.set(index.get(p)!, e);
    }
    const keys = this.groupKeys();
    const param_groups = this.paramGroups.map((g) => {
      const out: Record<string, unknown> = {};
      for (const k of keys) out[k] = k === 'betas' ? [...g.betas] : g[k] ?? null;
      for (const k of Object.keys(g)) if (k !== 'params' && !(k in out)) out[k] = g[k];
      out['params'] = g.params.map((p) => index.get(p)!);
      return out as Record<string, unknown> & { params: number[] };
    });
    return { state: new Map([...state].sort((a, b) => a[0] - b[0])), param_groups };
  }

  /** optimizer.load_state_dict(): same number of groups and parameters; arrays copied. */
  loadStateDict(sd: OptimizerStateDict): void {
    const who = `${this.constructor.name}.loadStateDict`;
    if (sd.param_groups.length !== this.paramGroups.length) {
      throw new OptimizerStateError(`${who}: the state has ${sd.param_groups.length} parameter groups, the optimizer ${this.paramGroups.length}`);
    }
    sd.param_groups.forEach((g, gi) => {
      if (g.params.length !== this.paramGroups[gi]!.params.length) {
        throw new OptimizerStateError(
          `${who}: group ${gi} has ${g.params.length} parameters in the state, ${this.paramGroups[gi]!.params.length} in the optimizer`,
        );
      }
    });
    const byIndex = new Map<number, ParamRef>();
    sd.param_groups.forEach((g, gi) => g.params.forEach((id, k) => byIndex.set(id, this.paramGroups[gi]!.params[k]!)));
    const newState = new Map<ParamRef, AdamParamState>();
    for (const [id, st] of sd.state) {
      const p = byIndex.get(id);
      if (!p) throw new OptimizerStateError(`${who}: state for parameter ${id}, which no group lists`);
      for (const k of ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'] as const) {
        const a = st[k];
        if (a && a.length !== p.size) {
          throw new OptimizerStateError(`${who}: state[${id}].${k} has ${a.length} elements, parameter ${p.name ?? id} has ${p.size}`);
        }
      }
      const e: AdamParamState = { step: f32(st.step), exp_avg: Float32Array.from(st.exp_avg), exp_avg_sq: Float32Array.from(st.exp_avg_sq) };
      if (st.max_exp_avg_sq) e.max_exp_avg_sq = Float32Array.from(st.max_exp_avg_sq);
      newState.set(p, e);
    }
    this.state.clear();
    for (const [p, e] of newState) this.state.set(p, e);
    sd.param_groups.forEach((g, gi) => {
      const live = this.paramGroups[gi]!;
      for (const [k, v] of Object.entries(g)) {
        if (k === 'params') continue;
        live[k] = k === 'betas' ? [...(v as number[])] : v;
      }
    });
  }

  /**
   * The state as safetensors tensors (`state.<i>.<key>`, float32; step as a 0-d tensor) plus a
   * JSON string with the param groups: write both to a checkpoint, read them back with
   * `loadTensors` to resume exactly.
   */
  toTensors(): { tensors: Map<string, StateTensor>; meta: string } {
    const sd = this.stateDict();
    const tensors = new Map<string, StateTensor>();
    const shapes = this.params().map((p) => [...p.shape]);
    for (const [i, st] of sd.state) {
      tensors.set(`state.${i}.step`, { dtype: 'F32', shape: [], data: Float32Array.of(st.step) });
      tensors.set(`state.${i}.exp_avg`, { dtype: 'F32', shape: shapes[i]!, data: st.exp_avg });
      tensors.set(`state.${i}.exp_avg_sq`, { dtype: 'F32', shape: shapes[i]!, data: st.exp_avg_sq });
      if (st.max_exp_avg_sq) tensors.set(`state.${i}.max_exp_avg_sq`, { dtype: 'F32', shape: shapes[i]!, data: st.max_exp_avg_sq });
    }
    const meta = JSON.stringify({ optimizer: this.constructor.name, param_groups: sd.param_groups });
    return { tensors, meta };
  }

  /** Inverse of `toTensors` (tensors as read back from safetensors: float32 arrays). */
  loadTensors(tensors: ReadonlyMap<string, { dtype: string; data: unknown }>, meta: string): void {
    const parsed = JSON.parse(meta) as { optimizer?: string; param_groups?: OptimizerStateDict['param_groups'] };
    if (!parsed || !Array.isArray(parsed.param_groups)) {
      throw new OptimizerStateError(`${this.constructor.name}.loadTensors: the metadata has no param_groups (not an optimizer state?)`);
    }
    if (parsed.optimizer && parsed.optimizer !== this.constructor.name) {
      throw new OptimizerStateError(`${this.constructor.name}.loadTensors: the state was saved by ${parsed.optimizer}`);
    }
    const state = new Map<number, AdamParamState>();
    const get = (k: string): Float32Array | undefined => {
      const t = tensors.get(k);
      if (!t) return undefined;
      if ((t.dtype !== 'F32' && t.dtype !== 'float32') || !(t.data instanceof Float32Array)) {
        throw new OptimizerStateError(`${this.constructor.name}.loadTensors: ${k} is ${t.dtype}, expected F32 data`);
      }
      return t.data;
    };
    for (const k of tensors.keys()) {
      const m = /^state\.(\d+)\.step$/.exec(k);
      if (!m) continue;
      const i = Number(m[1]);
      const exp_avg = get(`state.${i}.exp_avg`);
      const exp_avg_sq = get(`state.${i}.exp_avg_sq`);
      if (!exp_avg || !exp_avg_sq) throw new OptimizerStateError(`${this.constructor.name}.loadTensors: state.${i} lacks exp_avg or exp_avg_sq`);
      const e: AdamParamState = { step: get(k)![0]!, exp_avg, exp_avg_sq };
      const mx = get(`state.${i}.max_exp_avg_sq`);
      if (mx) e.max_exp_avg_sq = mx;
      state.set(i, e);
    }
    this.loadStateDict({ state, param_groups: parsed.param_groups });
  }
}

// ---------------------------------------------------------------------------------------------
// Adam and AdamW

/**
 * How exp_avg is updated: 'lerp' is torch >= 2.0 (`exp_avg.lerp_(grad, 1 - beta1)`, the torch the
 * reference's requirements install); 'mul_add' is torch 1.13 (`exp_avg.mul_(beta1).add_(grad,
 * alpha=1 - beta1)`). Both give the same math; they differ in the last bit.
 */
export type MomentUpdate = 'lerp' | 'mul_add';

export interface AdamOptions extends Partial<AdamHyper> {
  momentUpdate?: MomentUpdate;
  /** Accepted for config compatibility; only the single-tensor CPU algorithm exists here. */
  foreach?: boolean | null;
  capturable?: boolean;
  differentiable?: boolean;
  fused?: boolean | null;
}

abstract class AdamBase extends Optimizer {
  momentUpdate: MomentUpdate;
  /** true: AdamW's decoupled decay (param *= 1 - lr*wd); false: Adam's L2 (grad += wd*param). */
  protected abstract readonly decoupled: boolean;

  constructor(params: ParamRef[] | ParamGroupInput[], opts: AdamOptions, defaultWeightDecay: number, extra: Record<string, unknown>) {
    const { momentUpdate, ...rest } = opts;
    for (const k of ['capturable', 'differentiable'] as const) {
      if (rest[k]) throw new OptimizerStateError(`${new.target.name}: ${k}=true is not supported (CUDA graphs / autograd through the step)`);
    }
    if (rest.fused) throw new OptimizerStateError(`${new.target.name}: fused=true is not supported (a CUDA kernel); leave it unset`);
    super(params, {
      lr: 1e-3,
      betas: [0.9, 0.999],
      eps: 1e-8,
      weight_decay: defaultWeightDecay,
      amsgrad: false,
      ...extra,
      ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)),
    });
    this.momentUpdate = momentUpdate ?? 'lerp';
  }

  protected override updateParam(param: Float32Array, out: Float32Array, gradIn: Float32Array, st: AdamParamState, group: ParamGroup): void {
    const { lr, eps, weight_decay, amsgrad, maximize } = group;
    const [beta1, beta2] = group.betas;
    const fma = this.fusedMultiplyAdd ? fmaf : (a: number, b: number, c: number) => f32(f32(a * b) + c);
    const n = param.length;
    st.step = f32(st.step + 1); // torch keeps step in a float32 tensor
    const step = st.step;
    if (amsgrad && !st.max_exp_avg_sq) st.max_exp_avg_sq = new Float32Array(n);

    // Python-float scalars (float64), rounded to float32 where they meet a float32 tensor.
    const decay = this.decoupled ? f32(1 - lr * weight_decay) : 1;
    const wd32 = f32(weight_decay);
    const b1 = f32(beta1);
    const omb1 = f32(1 - beta1);
    const lerpW = omb1; // the lerp weight
    const lerpOm = f32(1 - lerpW); // (1 - weight), computed on the float32 weight
    const lerpSmall = Math.abs(lerpW) < 0.5;
    const b2 = f32(beta2);
    const omb2 = f32(1 - beta2);
    const bc1 = 1 - powInt(beta1, step);
    const bc2 = 1 - powInt(beta2, step);
    const negStep = f32(-(lr / bc1));
    const bc2s = f32(Math.sqrt(bc2));
    const eps32 = f32(eps);
    const m = st.exp_avg;
    const v = st.exp_avg_sq;
    const vmax = st.max_exp_avg_sq;
    const lerp = this.momentUpdate === 'lerp';

    for (let i = 0; i < n; i++) {
      let g = maximize ? -gradIn[i]! : gradIn[i]!;
      let p = param[i]!;
      if (this.decoupled) {
        if (decay !== 1) p = f32(p * decay);
      } else if (weight_decay !== 0) {
        g = fma(p, wd32, g); // grad.add(param, alpha=weight_decay)
      }
      let mi = m[i]!;
      if (lerp) {
        const d = f32(g - mi);
        mi = lerpSmall ? fma(lerpW, d, mi) : fma(-d, lerpOm, g);
      } else {
        mi = fma(g, omb1, f32(mi * b1));
      }
      m[i] = mi;
      // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2): self + (value * g) * g
      let vi = fma(f32(omb2 * g), g, f32(v[i]! * b2));
      v[i] = vi;
      if (vmax) {
        const mx = vmax[i]!;
        vi = mx > vi || mx !== mx ? mx : vi; // torch.maximum (NaN propagates)
        vmax[i] = vi;
      }
      const denom = f32(f32(f32(Math.sqrt(vi)) / bc2s) + eps32);
      out[i] = f32(p + f32(f32(negStep * mi) / denom));
    }
  }

  protected override validate(g: ParamGroup): void {
    super.validate(g);
    if (!Array.isArray(g.betas) || g.betas.length !== 2) throw new OptimizerStateError(`${this.constructor.name}: betas must be two numbers`);
  }
}

/** torch.optim.AdamW: decoupled weight decay (defaults lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 1e-2). */
export class AdamW extends AdamBase {
  protected readonly decoupled = true;
  constructor(params: ParamRef[] | ParamGroupInput[], opts: AdamOptions = {}) {
    super(params, opts, 1e-2, { foreach: null, maximize: false, capturable: false });
  }
  protected groupKeys(): readonly string[] {
    return ['lr', 'betas', 'eps', 'weight_decay', 'amsgrad', 'foreach', 'maximize', 'capturable'];
  }
}

/** torch.optim.Adam: L2 weight decay added to the gradient (default 0). */
export class Adam extends AdamBase {
  protected readonly decoupled = false;
  constructor(params: ParamRef[] | ParamGroupInput[], opts: AdamOptions = {}) {
    super(params, opts, 0, { maximize: false, foreach: null, capturable: false, differentiable: false, fused: false });
  }
  protected groupKeys(): readonly string[] {
    return ['lr', 'betas', 'eps', 'weight_decay', 'amsgrad', 'maximize', 'foreach', 'capturable', 'differentiable', 'fused'];
  }
}

// ---------------------------------------------------------------------------------------------
// LambdaLR

export interface LambdaLRStateDict {
  base_lrs: number[];
  last_epoch: number;
  verbose: boolean;
  _step_count: number;
  _get_lr_called_within_step: boolean;
  _last_lr: number[];
  lr_lambdas: null[];
}

/**
 * torch.optim.lr_scheduler.LambdaLR: lr = base_lr * lambda(last_epoch). Construction sets each
 * group's `initial_lr` and performs the initial step (last_epoch 0); call `step()` after every
 * optimizer step (the reference's interval "step"). Use it with the schedules of
 * src/lr_scheduler.ts: `new LambdaLR(opt, (n) => sched.schedule(n))`.
 */
export class LambdaLR {
  readonly optimizer: Optimizer;
  readonly lrLambdas: Array<(epoch: number) => number>;
  baseLrs: number[];
  lastEpoch: number;
  private stepCount = 0;
  private lastLr: number[] = [];

  constructor(optimizer: Optimizer, lrLambda: ((epoch: number) => number) | Array<(epoch: number) => number>, lastEpoch = -1) {
    this.optimizer = optimizer;
    const groups = optimizer.paramGroups;
    if (lastEpoch === -1) {
      for (const g of groups) g['initial_lr'] ??= g.lr;
    } else {
      groups.forEach((g, i) => {
        if (g['initial_lr'] === undefined) throw new OptimizerStateError(`LambdaLR: param 'initial_lr' is not specified in param_groups[${i}] when resuming an optimizer`);
      });
    }
    this.baseLrs = groups.map((g) => g['initial_lr'] as number);
    this.lastEpoch = lastEpoch;
    if (Array.isArray(lrLambda)) {
      if (lrLambda.length !== groups.length) throw new OptimizerStateError(`LambdaLR: expected ${groups.length} lr_lambdas, but got ${lrLambda.length}`);
      this.lrLambdas = [...lrLambda];
    } else {
      this.lrLambdas = groups.map(() => lrLambda);
    }
    this.step();
  }

  getLr(): number[] {
    return this.baseLrs.map((base, i) => base * this.lrLambdas[i]!(this.lastEpoch));
  }

  /** The lrs set by the last step (get_last_lr()). */
  getLastLr(): number[] {
    return [...this.lastLr];
  }

  step(): void {
    this.stepCount++;
    this.lastEpoch++;
    const lrs = this.getLr();
    this.optimizer.paramGroups.forEach((g, i) => (g.lr = lrs[i]!));
    this.lastLr = this.optimizer.paramGroups.map((g) => g.lr);
  }

  stateDict(): LambdaLRStateDict {
    return {
      base_lrs: [...this.baseLrs],
      last_epoch: this.lastEpoch,
      verbose: false,
      _step_count: this.stepCount,
      _get_lr_called_within_step: false,
      _last_lr: [...this.lastLr],
      lr_lambdas: this.lrLambdas.map(() => null),
    };
  }

  /** Restores the counters (the lambdas stay; the optimizer's lrs come from its own state). */
  loadStateDict(sd: Partial<LambdaLRStateDict>): void {
    if (sd.base_lrs) this.baseLrs = [...sd.base_lrs];
    if (sd.last_epoch !== undefined) this.lastEpoch = sd.last_epoch;
    if (sd._step_count !== undefined) this.stepCount = sd._step_count;
    if (sd._last_lr) this.lastLr = [...sd._last_lr];
  }
}

// ---------------------------------------------------------------------------------------------
// Gradient clipping

/**
 * torch.nn.utils.clip_grad_norm_: scales the gradients in place so their global norm is at most
 * maxNorm (coefficient max_norm / (total + 1e-6), clamped to 1). Returns the total norm. The norm
 * is accumulated in float64 (torch reduces in float32 in its own order, so the total may differ
 * from torch's in the last bits).
 */
export function clipGradNorm(
  grads: ReadonlyArray<Float32Array | null | undefined>,
  maxNorm: number,
  normType = 2,
  errorIfNonfinite = false,
): number {
  const gs = grads.filter((g): g is Float32Array => g !== null && g !== undefined);
  if (gs.length === 0) return 0;
  let total: number;
  if (normType === Infinity) {
    total = 0;
    for (const g of gs) for (let i = 0; i < g.length; i++) total = Math.max(total, Math.abs(g[i]!));
  } else {
    let acc = 0;
    for (const g of gs) {
      let s = 0;
      for (let i = 0; i < g.length; i++) s += Math.abs(g[i]!) ** normType;
      acc += f32(s ** (1 / normType)) ** normType; // per-tensor norms (float32), then the norm of those
    }
    total = acc ** (1 / normType);
  }
  total = f32(total);
  if (errorIfNonfinite && !Number.isFinite(total)) {
    throw new RangeError(`clipGradNorm: the total norm of order ${normType} of the gradients is non-finite (${total}), so it cannot be clipped`);
  }
  const coef = f32(f32(maxNorm) / f32(total + 1e-6));
  if (coef < 1) for (const g of gs) for (let i = 0; i < g.length; i++) g[i] = f32(g[i]! * coef);
  return total;
}

// ---------------------------------------------------------------------------------------------
// Config targets: torch.optim.Adam / AdamW

/**
 * What instantiating `torch.optim.Adam(W)` from a config gives: the optimizer class and its
 * keyword arguments, built later with the model's parameters and learning rate, like the
 * reference's `instantiate_optimizer_from_config(params, lr, cfg)`.
 */
export interface OptimizerBuilder {
  target: string;
  kwargs: AdamOptions;
  build(params: ParamRef[] | ParamGroupInput[], lr: number): Optimizer;
}

function optimizerTarget(target: string, Cls: typeof Adam | typeof AdamW, wd: number): TargetDef<OptimizerBuilder> {
  return {
    target,
    params: {
      betas: { type: 'list', default: [0.9, 0.999], doc: 'coefficients of the running averages of the gradient and its square' },
      eps: { type: 'number', default: 1e-8 },
      weight_decay: { type: 'number', default: wd },
      amsgrad: { type: 'bool', default: false },
      maximize: { type: 'bool', default: false },
      foreach: { type: 'bool', nullable: true },
      capturable: { type: 'bool' },
      differentiable: { type: 'bool' },
      fused: { type: 'bool', nullable: true },
    },
    create(p) {
      const betas = p['betas'] as unknown[];
      if (betas.length !== 2 || !betas.every((b) => typeof b === 'number')) {
        throw new OptimizerStateError(`${target}: betas must be a list of two numbers, got ${JSON.stringify(betas)}`);
      }
      const kwargs: AdamOptions = {
        betas: [betas[0] as number, betas[1] as number],
        eps: p['eps'] as number,
        weight_decay: p['weight_decay'] as number,
        amsgrad: p['amsgrad'] as boolean,
        maximize: p['maximize'] as boolean,
      };
      for (const k of ['foreach', 'capturable', 'differentiable', 'fused'] as const) {
        if (p[k] !== undefined) (kwargs as Record<string, unknown>)[k] = p[k];
      }
      return { target, kwargs, build: (params, lr) => new Cls(params, { ...kwargs, lr }) };
    },
  };
}

/** Registers torch.optim.Adam and torch.optim.AdamW (replacing their placeholders). */
export function registerOptimizerTargets(reg: Registry): void {
  for (const def of [optimizerTarget('torch.optim.Adam', Adam, 0), optimizerTarget('torch.optim.AdamW', AdamW, 1e-2)]) {
    if (reg.isPlaceholder(def.target)) reg.replace(def as TargetDef);
    else if (!reg.has(def.target)) reg.register(def as TargetDef);
  }
}

/**
 * sgm's DiffusionEngine.instantiate_optimizer_from_config(params, lr, cfg): `cfg` is the
 * `optimizer_config` ({target: torch.optim.AdamW, params: {...}}); lr is the engine's learning rate.
 */
export function instantiateOptimizerFromConfig(
  params: ParamRef[] | ParamGroupInput[],
  lr: number,
  cfg: unknown,
  opts: { registry?: Registry; path?: string } = {},
): Optimizer {
  const builder = instantiateFromConfig<OptimizerBuilder>(cfg, { registry: opts.registry, path: opts.path ?? 'optimizer_config' });
  if (!builder || typeof builder.build !== 'function') {
    throw new OptimizerStateError(`${opts.path ?? 'optimizer_config'}: the target is not an optimizer (torch.optim.Adam or torch.optim.AdamW)`);
  }
  return builder.build(params, lr);
}
