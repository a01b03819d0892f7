// Guiders (sgm/modules/diffusionmodules/guiders.py): how a sampler batches the conditional and
// unconditional inputs for one denoiser call (prepareInputs) and combines the outputs (call).
import * as T from '../../tensor/index.js';
import type { Cond } from './denoiser.js';
import { NoDynamicThresholding, type DynamicThresholding } from './sampling_utils.js';

export interface Guider {
  /** Combines the denoiser output of the prepared batch. */
  call(x: T.Tensor, sigma: T.Tensor): T.Tensor;
  /** The denoiser's inputs for sample x at noise level s with conditionings c and uc. */
  prepareInputs(x: T.Tensor, s: T.Tensor, c: Cond, uc: Cond): [T.Tensor, T.Tensor, Cond];
  /** The reference's name for prepareInputs. */
  prepare_inputs(x: T.Tensor, s: T.Tensor, c: Cond, uc: Cond): [T.Tensor, T.Tensor, Cond];
}

/** Thrown when c and uc cannot be batched (a missing key, or an entry that must agree and does not). */
export class GuiderInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuiderInputError';
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'number') return Number.isNaN(a) && Number.isNaN(b) ? false : a === b;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    const x = a as unknown as ArrayLike<number | bigint>;
    const y = b as unknown as ArrayLike<number | bigint>;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object' && Object.getPrototypeOf(a) === Object.prototype && Object.getPrototypeOf(b) === Object.prototype) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual((a as any)[k], (b as any)[k]));
  }
  return false;
}

function describe(v: unknown): string {
  if (v instanceof T.Tensor) return `a ${v.dtype} tensor of shape ${T.fmtShape(v.shape)}`;
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.length} items]`;
  return String(v);
}

/**
 * The reference's `assert c[k] == uc[k]` for entries that are not concatenated. The same object,
 * equal plain values, or tensors whose host values are known and equal pass; anything else is an
 * error that names the key (the reference fails on any multi-element tensor there).
 */
export function checkSharedEntry(who: string, key: string, c: unknown, uc: unknown, concatKeys: readonly string[]): void {
  if (c === uc) return;
  const hint =
    `only ${concatKeys.map((k) => `'${k}'`).join(', ')} are concatenated (unconditional first); ` +
    `every other entry must be identical in c and uc`;
  if (c instanceof T.Tensor || uc instanceof T.Tensor) {
    if (c instanceof T.Tensor && uc instanceof T.Tensor) {
      const same = c.shape.length === uc.shape.length && c.shape.every((d, i) => d === uc.shape[i]) && c.dtype === uc.dtype;
      if (same && c.value !== undefined && uc.value !== undefined) {
        if (deepEqual(c.value, uc.value)) return;
        throw new GuiderInputError(`${who}.prepare_inputs: cond entry '${key}' differs between c and uc (${describe(c)}); ${hint}`);
      }
      throw new GuiderInputError(
        `${who}.prepare_inputs: cond entry '${key}' is a different tensor in c and uc (${describe(c)} vs ${describe(uc)}) whose values cannot be ` +
          `compared while building the graph; ${hint} (pass the same tensor object in both)`,
      );
    }
    throw new GuiderInputError(`${who}.prepare_inputs: cond entry '${key}' is ${describe(c)} in c but ${describe(uc)} in uc; ${hint}`);
  }
  if (!deepEqual(c, uc)) {
    throw new GuiderInputError(`${who}.prepare_inputs: cond entry '${key}' differs between c (${describe(c)}) and uc (${describe(uc)}); ${hint}`);
  }
}

/** Batches (uc, c) along dim 0 for the concatenated keys, passes identical entries through. */
function prepareCfgInputs(
  who: string,
  x: T.Tensor,
  s: T.Tensor,
  c: Cond,
  uc: Cond,
  concatKeys: readonly string[],
): [T.Tensor, T.Tensor, Cond] {
  const out: Cond = {};
  for (const k of Object.keys(c)) {
    if (concatKeys.includes(k)) {
      if (!Object.prototype.hasOwnProperty.call(uc, k)) {
        throw new GuiderInputError(`${who}.prepare_inputs: cond key '${k}' is in c but not in uc; both must have it to be concatenated`);
      }
      const a = uc[k];
      const b = c[k];
      if (!(a instanceof T.Tensor) || !(b instanceof T.Tensor)) {
        throw new GuiderInputError(`${who}.prepare_inputs: cond entry '${k}' must be a tensor in c and uc to be concatenated, got ${describe(b)} and ${describe(a)}`);
      }
      out[k] = T.concat([a, b], 0);
    } else {
      checkSharedEntry(who, k, c[k], uc[k], concatKeys);
      out[k] = c[k];
    }
  }
  return [T.concat([x, x], 0), T.concat([s, s], 0), out];
}

/** x.chunk(2): the unconditional and the conditional half of a prepared batch. */
function halves(who: string, x: T.Tensor): [T.Tensor, T.Tensor] {
  if (x.ndim === 0 || x.shape[0]! % 2 !== 0) {
    throw new RangeError(`${who}: expected the denoiser output of a (uc, c) batch with an even first dim, got shape ${T.fmtShape(x.shape)}`);
  }
  const [a, b] = T.chunk(x, 2, 0);
  return [a!, b!];
}

const CFG_KEYS = ['vector', 'crossattn', 'concat'] as const;

/** Classifier-free guidance: x_u + scale * (x_c - x_u) over a (uc, c) batch. */
export class VanillaCFG implements Guider {
  readonly scale: number;
  readonly dyn_thresh: DynamicThresholding;

  /**
   * `dyn_thresh` is the instantiated `dyn_thresh_config` (sgm.inference.api passes
   * NoDynamicThresholding, which is also the default: the plain CFG combination).
   */
  constructor(scale: number, dyn_thresh: DynamicThresholding | null = null) {
    this.scale = scale;
    this.dyn_thresh = dyn_thresh ?? new NoDynamicThresholding();
  }

  call(x: T.Tensor, _sigma: T.Tensor): T.Tensor {
    const [x_u, x_c] = halves('VanillaCFG', x);
    return this.dyn_thresh.call(x_u, x_c, this.scale);
  }

  prepareInputs(x: T.Tensor, s: T.Tensor, c: Cond, uc: Cond): [T.Tensor, T.Tensor, Cond] {
    return prepareCfgInputs('VanillaCFG', x, s, c, uc, CFG_KEYS);
  }

  prepare_inputs(x: T.Tensor, s: T.Tensor, c: Cond, uc: Cond): [T.Tensor, T.Tensor, Cond] {
    return this.prepareInputs(x, s, c, uc);
  }
}

/** No guidance: the denoiser sees (x, s, c) and its output is used as is. */
export class IdentityGuider implements Guider {
  call(x: T.Tensor, _sigma: T.Tensor): T.Tensor {
    return x;
  }

  prepareInputs(x: T.Tensor, s: T.Tensor, c: Cond, _uc: Cond): [T.Tensor, T.Tensor, Cond] {
    return [x, s, { ...c }];
  }

  prepare_inputs(x: T.Tensor, s: T.Tensor, c: Cond, uc: Cond): [T.Tensor, T.Tensor, Cond] {
    return this.prepareInputs(x, s, c, uc);
  }
}

/**
 * CFG for video (SVD): the scale rises linearly over the frames, from min_scale on the first to
 * max_scale on the last. The batch is (b t) frames; `additional_cond_keys` are concatenated too.
 */
export class LinearPredictionGuider implements Guider {
  readonly min_scale: number;
  readonly max_scale: number;
  readonly num_frames: number;
  /** torch.linspace(min_scale, max_scale, num_frames) in float32, shape (1, num_frames). */
  readonly scale: T.Tensor;
  readonly additional_cond_keys: string[];

  constructor(max_scale: number, num_frames: number, min_scale = 1.0, additional_cond_keys: string[] | string | null = null) {
    if (!Number.isInteger(num_frames) || num_frames < 1) throw new RangeError(`LinearPredictionGuider: num_frames must be a positive integer, got ${num_frames}`);
    this.min_scale = min_scale;
    this.max_scale = max_scale;
    this.num_frames = num_frames;
    this.scale = T.reshape(T.linspace(min_scale, max_scale, num_frames, 'float32'), [1, num_frames]);
    const keys = additional_cond_keys ?? [];
    this.additional_cond_keys = typeof keys === 'string' ? [keys] : [...keys];
  }

  call(x: T.Tensor, _sigma: T.Tensor): T.Tensor {
    const [xu, xc] = halves('LinearPredictionGuider', x);
    const n = xu.shape[0]!;
    const t = this.num_frames;
    if (n % t !== 0) {
      throw new RangeError(`LinearPredictionGuider: the batch half has ${n} frames, not a multiple of num_frames=${t}`);
    }
    const b = n / t;
    const rest = xu.shape.slice(1);
    const x_u = T.reshape(xu, [b, t, ...rest]);
    const x_c = T.reshape(xc, [b, t, ...rest]);
    const scale = T.appendDims(T.expand(this.scale, [b, t]), x_u.ndim);
    const out = T.add(x_u, T.mul(scale, T.sub(x_c, x_u)));
    return T.reshape(out, [n, ...rest]);
  }

  prepareInputs(x: T.Tensor, s: T.Tensor, c: Cond, uc: Cond): [T.Tensor, T.Tensor, Cond] {
    return prepareCfgInputs('LinearPredictionGuider', x, s, c, uc, [...CFG_KEYS, ...this.additional_cond_keys]);
  }

  prepare_inputs(x: T.Tensor, s: T.Tensor, c: Cond, uc: Cond): [T.Tensor, T.Tensor, Cond] {
    return this.prepareInputs(x, s, c, uc);
  }
}
