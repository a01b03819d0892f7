// LitEma (sgm/modules/ema.py): an exponential moving average of a model's trainable parameters,
// kept as buffers so that it lands in checkpoints as `model_ema.decay`, `model_ema.num_updates`
// and `model_ema.<parameter name without dots>`. Values live in host float32 arrays; the update
// follows torch's float32 tensor arithmetic, so it matches the reference bit for bit.
import { Module, Buffer, Parameter } from '../nn/module.js';
import { Variable, bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, type Storage } from '../tensor/index.js';
import { variableData } from '../tensor/compile.js';

const f32 = Math.fround;

/** The float32 values of a variable whatever its storage (host or file; float32/16, bfloat16, float64). */
export function float32Values(v: Variable): Float32Array {
  const dtype = v.storage.dtype;
  const data = variableData(v);
  switch (dtype) {
    case 'float32':
      return data as Float32Array;
    case 'float16':
      return f16ToF32(data as Uint16Array);
    case 'bfloat16':
      return bf16ToF32(data as Uint16Array);
    case 'float64':
      return Float32Array.from(data as Float64Array);
    default:
      throw new TypeError(`${v.name ?? 'a variable'} has storage dtype ${dtype}; expected a floating-point tensor`);
  }
}

/** Host storage in the variable's compute dtype holding `values` (copied). */
function storageFor(v: Variable, values: Float32Array): Storage {
  switch (v.dtype) {
    case 'float16':
      return { kind: 'host', dtype: 'float16', data: f32ToF16(values) };
    case 'bfloat16':
      return { kind: 'host', dtype: 'bfloat16', data: f32ToBf16(values) };
    case 'float64':
      return { kind: 'host', dtype: 'float64', data: Float64Array.from(values) };
    default:
      return { kind: 'host', dtype: 'float32', data: values.slice() };
  }
}

/** A copy of a variable's storage (host memory; a file region is immutable and kept as it is). */
function cloneStorage(v: Variable): Storage {
  const st = v.storage;
  if (st.kind === 'file') return { ...st };
  return { kind: 'host', dtype: st.dtype, data: st.data.slice() } as Storage;
}

/** The reference's m_name2s_name: buffers cannot contain '.', so the dots are removed. */
export function emaShadowName(paramName: string): string {
  return paramName.split('.').join('');
}

export class LitEma extends Module {
  /** torch.tensor(decay, dtype=float32). */
  readonly decay: Buffer;
  /** torch.tensor(0 or -1, dtype=int): -1 disables the warm-up (use_num_upates=False). */
  num_updates: Buffer;
  /** Parameter name to shadow buffer name, for the parameters that require grad. */
  readonly m_name2s_name = new Map<string, string>();
  /** Shadow buffers by their (dot-free) name, in parameter order. */
  readonly shadows = new Map<string, Buffer>();
  /** What `store` saved, for `restore`. */
  collected_params: Storage[] = [];

  constructor(model: Module, decay = 0.9999, use_num_upates = true) {
    super();
    if (!(decay >= 0.0 && decay <= 1.0)) throw new RangeError('Decay must be between 0 and 1');
    this.decay = new Buffer([], 'float32', { kind: 'host', dtype: 'float32', data: Float32Array.of(decay) });
    this.num_updates = LitEma.counter(use_num_upates ? 0 : -1);
    for (const [name, p] of model.namedParameters()) {
      if (!p.requiresGrad) continue;
      const sName = emaShadowName(name);
      if (this.shadows.has(sName)) {
        throw new Error(`LitEma: parameters ${[...this.m_name2s_name].find(([, s]) => s === sName)?.[0]} and ${name} both become buffer '${sName}'`);
      }
      this.m_name2s_name.set(name, sName);
      // A copy of the parameter now (p.clone()); a parameter without a value yet (built for
      // loading) gets a shadow that copies it when first read, unless a checkpoint fills it first.
      const storage: Storage =
        p.rawStorage.kind === 'empty'
          ? { kind: 'lazy', dtype: 'float32', init: () => Float32Array.from(float32Values(p)) }
          : { kind: 'host', dtype: 'float32', data: Float32Array.from(float32Values(p)) };
      this.shadows.set(sName, new Buffer(p.shape, p.dtype, storage));
    }
  }

  private static counter(n: number): Buffer {
    return new Buffer([], 'int32', { kind: 'host', dtype: 'int32', data: Int32Array.of(n) });
  }

  /** decay, num_updates, then one buffer per trainable parameter (the reference's order). */
  override namedOwnVariables(): Array<[string, Variable]> {
    return [['decay', this.decay], ['num_updates', this.num_updates], ...this.shadows];
  }

  /** The decay buffer's value (float32). */
  get decayValue(): number {
    return float32Values(this.decay)[0]!;
  }

  /** The num_updates buffer's value. */
  get numUpdates(): number {
    const st = this.num_updates.storage;
    const d = variableData(this.num_updates);
    return st.dtype === 'int64' ? Number((d as BigInt64Array)[0]!) : Number(d[0]!);
  }

  private setNumUpdates(n: number): void {
    this.num_updates.assign({ kind: 'host', dtype: 'int32', data: Int32Array.of(n) });
  }

  reset_num_updates(): void {
    this.num_updates = LitEma.counter(0);
  }

  /**
   * The decay the next update will use (and, with `advance`, count the update): with num_updates
   * >= 0 it is min(decay, (1 + n) / (10 + n)) for the incremented n, in float32 like the reference's
   * int-tensor division.
   */
  private nextDecay(advance: boolean): number {
    let decay = this.decayValue;
    let n = this.numUpdates;
    if (n >= 0) {
      n = (n + 1) | 0;
      if (advance) this.setNumUpdates(n);
      const q = f32((1 + n) / (10 + n));
      decay = q < decay ? q : decay; // Python's min(self.decay, q)
    }
    return decay;
  }

  /** The decay the next `forward` will apply. */
  peekDecay(): number {
    return this.nextDecay(false);
  }

  /** One EMA update: shadow -= (1 - decay) * (shadow - param) for every trainable parameter. */
  forward(model: Module): void {
    const decay = this.nextDecay(true);
    const omd = f32(1.0 - decay);
    for (const [name, p] of model.namedParameters()) {
      if (p.requiresGrad) {
        const sName = this.m_name2s_name.get(name);
        const buf = sName === undefined ? undefined : this.shadows.get(sName);
        if (!buf) throw new Error(`LitEma.forward: parameter '${name}' requires grad but has no EMA shadow (the model's parameters changed since the EMA was made)`);
        if (buf.size !== p.size) throw new Error(`LitEma.forward: parameter '${name}' has ${p.size} elements, its shadow ${buf.size}`);
        const s = float32Values(buf);
        const v = float32Values(p);
        const out = new Float32Array(s.length);
        for (let i = 0; i < s.length; i++) {
          const si = s[i]!;
          out[i] = f32(si - f32(omd * f32(si - v[i]!)));
        }
        buf.assign({ kind: 'host', dtype: 'float32', data: out }); // a new array: storages may be shared
      } else if (this.m_name2s_name.has(name)) {
        throw new Error(`LitEma.forward: parameter '${name}' has an EMA shadow but no longer requires grad`);
      }
    }
  }

  /** Alias of forward (the engine's name for it). */
  update(model: Module): void {
    this.forward(model);
  }

  /** Copies the EMA weights into the model's trainable parameters (others are left as they are). */
  copyTo(model: Module): void {
    for (const [name, p] of model.namedParameters()) {
      if (p.requiresGrad) {
        const sName = this.m_name2s_name.get(name);
        const buf = sName === undefined ? undefined : this.shadows.get(sName);
        if (!buf) throw new Error(`LitEma.copyTo: parameter '${name}' requires grad but has no EMA shadow`);
        p.assign(storageFor(p, float32Values(buf)));
      } else if (this.m_name2s_name.has(name)) {
        throw new Error(`LitEma.copyTo: parameter '${name}' has an EMA shadow but no longer requires grad`);
      }
    }
  }

  /** Saves copies of the parameters' current values for `restore`. */
  store(parameters: Iterable<Parameter | Variable>): void {
    this.collected_params = [...parameters].map(cloneStorage);
  }

  /** Puts back the values saved by `store` (same parameters, same order). */
  restore(parameters: Iterable<Parameter | Variable>): void {
    const ps = [...parameters];
    if (ps.length !== this.collected_params.length) {
      throw new Error(`LitEma.restore: ${ps.length} parameters given, ${this.collected_params.length} stored`);
    }
    ps.forEach((p, i) => p.assign(this.collected_params[i]!));
  }

  /** The reference's ema_scope: runs fn with the EMA weights in the model, then restores. */
  async scope<R>(model: Module, fn: () => Promise<R> | R): Promise<R> {
    const params = model.parameters();
    this.store(params);
    this.copyTo(model);
    try {
      return await fn();
    } finally {
      this.restore(params);
    }
  }
}

