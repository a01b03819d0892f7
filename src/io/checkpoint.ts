// State dicts to and from safetensors files. Loading is lazy: entries point at regions of the
// file, so a module's weights are read by ONNX Runtime when a session is made, never copied
// through JavaScript. Saving writes atomically.
import type { StateEntry, StateSource } from '../nn/module.js';
import { variableData } from '../tensor/compile.js';
import type { DType, Variable } from '../tensor/index.js';
import { SafetensorsFile, SafetensorsWriter, type SafetensorsDType } from './safetensors.js';

/** safetensors dtype names -> engine dtypes. */
export const FROM_ST: Partial<Record<SafetensorsDType, DType>> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  F64: 'float64',
  I64: 'int64',
  I32: 'int32',
  U8: 'uint8',
  BOOL: 'bool',
};

/** engine dtypes -> safetensors dtype names. */
export const TO_ST: Record<DType, SafetensorsDType> = {
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  float64: 'F64',
  int64: 'I64',
  int32: 'I32',
  uint8: 'U8',
  bool: 'BOOL',
};

/** A lazy state-dict view of an open safetensors file (optionally only keys under `prefix`, stripped). */
export function stateSourceFromSafetensors(file: SafetensorsFile, opts: { prefix?: string } = {}): StateSource {
  const prefix = opts.prefix ?? '';
  const keys = file.keys().filter((k) => k.startsWith(prefix));
  return {
    keys: () => keys.map((k) => k.slice(prefix.length)),
    get(key: string): StateEntry | undefined {
      const full = prefix + key;
      if (!file.has(full)) return undefined;
      const info = file.info(full);
      const dtype = FROM_ST[info.dtype];
      if (!dtype) throw new Error(`${file.path}: tensor "${full}" has dtype ${info.dtype}, which cannot be loaded into a model`);
      return {
        dtype,
        shape: info.shape,
        storage: { kind: 'file', dtype, path: file.path, offset: info.fileOffset, byteLength: info.byteLength },
      };
    },
  };
}

/** Writes variables (e.g. `module.stateDict()`) to a safetensors file, atomically, one tensor at a time. */
export function saveStateDict(state: Map<string, Variable>, path: string, metadata: Record<string, string> = {}): void {
  const entries = [...state.entries()];
  const w = SafetensorsWriter.create(
    path,
    entries.map(([name, v]) => ({ name, dtype: TO_ST[v.storage.dtype], shape: v.shape })),
    metadata,
  );
  try {
    for (const [name, v] of entries) w.write(name, variableData(v));
    w.commit();
  } catch (e) {
    w.abort();
    throw e;
  }
}
