// Parameter initialisation with PyTorch's distributions, drawn from the torch-compatible default
// generator (so a seed and the same construction order give PyTorch's own initial weights).
// Init mode: 'eager' draws at construction (PyTorch's order), 'lazy' draws when a parameter is
// first used (building a huge model costs nothing), 'none' leaves parameters empty for loading.
import { defaultGenerator, numel, type DType, type Shape, type Storage, type TypedArray } from '../tensor/index.js';
import { f32ToBf16, f32ToF16 } from '../tensor/dtype-convert.js';

export type InitMode = 'eager' | 'lazy' | 'none';

let mode: InitMode = 'eager';

export function setInitMode(m: InitMode): void {
  mode = m;
}

export function getInitMode(): InitMode {
  return mode;
}

/** Runs `fn` with the given init mode (e.g. 'none' while building a model that will be loaded). */
export function withInitMode<T>(m: InitMode, fn: () => T): T {
  const prev = mode;
  mode = m;
  try {
    return fn();
  } finally {
    mode = prev;
  }
}

function toDType(a: Float32Array, dtype: DType): TypedArray {
  switch (dtype) {
    case 'float32':
      return a;
    case 'float64':
      return Float64Array.from(a);
    case 'float16':
      return f32ToF16(a);
    case 'bfloat16':
      return f32ToBf16(a);
    default:
      throw new TypeError(`cannot initialise a ${dtype} parameter from floats`);
  }
}

/** Storage for a new parameter according to the init mode. */
export function initStorage(shape: Shape, dtype: DType, draw: () => Float32Array): Storage {
  if (mode === 'none') return { kind: 'empty', dtype };
  if (mode === 'lazy') return { kind: 'lazy', dtype, init: () => toDType(draw(), dtype) };
  return { kind: 'host', dtype, data: toDType(draw(), dtype) };
}

export const uniform = (shape: Shape, bound: number) => (): Float32Array => defaultGenerator.uniformData(shape, -bound, bound);
export const normal = (shape: Shape, std = 1) => (): Float32Array => {
  const a = defaultGenerator.randnData(shape) as Float32Array;
  if (std !== 1) for (let i = 0; i < a.length; i++) a[i] = Math.fround(a[i]! * std);
  return a;
};
export const constantInit = (shape: Shape, v: number) => (): Float32Array => new Float32Array(numel(shape)).fill(v);

/** kaiming_uniform_(a=sqrt(5)) as nn.Linear / nn.ConvNd use it: U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
export const kaimingUniformDefault = (shape: Shape, fanIn: number) => uniform(shape, fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0);

export const xavierUniform = (shape: Shape, fanIn: number, fanOut: number, gain = 1) =>
  uniform(shape, gain * Math.sqrt(6 / (fanIn + fanOut)));

