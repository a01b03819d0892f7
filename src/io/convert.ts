// Converting a safetensors checkpoint's floating-point tensors to another precision (fp16 / bf16 /
// fp32), tensor by tensor (never the whole file in memory), written atomically. Integer tensors
// (position_ids, ...) are copied unchanged; keys can be filtered by prefix.
import { f32ToBf16, f32ToF16 } from '../tensor/dtype-convert.js';
import { SafetensorsFile, SafetensorsWriter, type SafetensorsDType } from './safetensors.js';

export type FloatDType = 'float16' | 'bfloat16' | 'float32';

const ST: Record<FloatDType, SafetensorsDType> = { float16: 'F16', bfloat16: 'BF16', float32: 'F32' };
const FLOAT: ReadonlySet<SafetensorsDType> = new Set(['F16', 'BF16', 'F32', 'F64']);

export interface ConvertOptions {
  dtype: FloatDType;
  /** Keep only keys starting with one of these prefixes (default: all). */
  keep?: readonly string[];
  /** Drop keys starting with one of these prefixes. */
  drop?: readonly string[];
  /** Extra metadata (merged over the source file's). */
  metadata?: Record<string, string>;
}

/** Converts `src` into `dst`; returns the number of tensors written. */
export function convertCheckpoint(src: string, dst: string, opts: ConvertOptions): number {
  const f = SafetensorsFile.open(src);
  try {
    const names = f.keys().filter((k) => (!opts.keep || opts.keep.some((p) => k.startsWith(p))) && !(opts.drop ?? []).some((p) => k.startsWith(p)));
    const target = ST[opts.dtype];
    const specs = names.map((name) => {
      const i = f.info(name);
      return { name, dtype: FLOAT.has(i.dtype) ? target : i.dtype, shape: i.shape };
    });
    const w = SafetensorsWriter.create(dst, specs, { ...f.metadata, ...(opts.metadata ?? {}) });
    try {
      for (const s of specs) {
        const i = f.info(s.name);
        if (!FLOAT.has(i.dtype)) {
          w.write(s.name, f.read(s.name) as never);
          continue;
        }
        const x = f.readFloat32(s.name);
        w.write(s.name, opts.dtype === 'float32' ? x : opts.dtype === 'float16' ? f32ToF16(x) : f32ToBf16(x));
      }
      w.commit();
    } catch (e) {
      w.abort();
      throw e;
    }
    return specs.length;
  } finally {
    f.close();
  }
}
