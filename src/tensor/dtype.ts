// Element types of the engine and their host / ONNX / ONNX Runtime counterparts.

export type DType = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'uint8' | 'bool';

export const DTYPES: readonly DType[] = ['float32', 'float16', 'bfloat16', 'float64', 'int64', 'int32', 'uint8', 'bool'];

/** Host typed array of each dtype. float16/bfloat16 are raw 16-bit words. */
export type TypedArray = Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array;

export const ITEMSIZE: Record<DType, number> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  uint8: 1,
  bool: 1,
};

/** onnx.TensorProto.DataType values. */
export const ONNX_ELEM_TYPE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
  bfloat16: 16,
};

export function isFloat(d: DType): boolean {
  return d === 'float32' || d === 'float16' || d === 'bfloat16' || d === 'float64';
}

export function isInt(d: DType): boolean {
  return d === 'int64' || d === 'int32' || d === 'uint8';
}

export function allocate(dtype: DType, n: number): TypedArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(n);
    case 'int64':
      return new BigInt64Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'uint8':
    case 'bool':
      return new Uint8Array(n);
  }
}

/** Views raw little-endian bytes as the dtype's typed array (copies when misaligned). */
export function viewBytes(bytes: Uint8Array, dtype: DType): TypedArray {
  const size = ITEMSIZE[dtype];
  if (bytes.byteLength % size !== 0) throw new Error(`viewBytes: ${bytes.byteLength} bytes is not a multiple of ${dtype}'s ${size}`);
  let b = bytes;
  if (b.byteOffset % size !== 0) b = b.slice();
  const n = b.byteLength / size;
  switch (dtype) {
    case 'float32':
      return new Float32Array(b.buffer, b.byteOffset, n);
    case 'float64':
      return new Float64Array(b.buffer, b.byteOffset, n);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(b.buffer, b.byteOffset, n);
    case 'int64':
      return new BigInt64Array(b.buffer, b.byteOffset, n);
    case 'int32':
      return new Int32Array(b.buffer, b.byteOffset, n);
    case 'uint8':
    case 'bool':
      return new Uint8Array(b.buffer, b.byteOffset, n);
  }
}

export function bytesOf(a: TypedArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The dtype a typed array naturally holds (Uint16Array is ambiguous: float16 assumed). */
export function dtypeOfArray(a: TypedArray): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Uint16Array) return 'float16';
  return 'uint8';
}

export function checkArrayDType(a: TypedArray, dtype: DType, what: string): void {
  const ok =
    (dtype === 'float32' && a instanceof Float32Array) ||
    (dtype === 'float64' && a instanceof Float64Array) ||
    ((dtype === 'float16' || dtype === 'bfloat16') && a instanceof Uint16Array) ||
    (dtype === 'int64' && a instanceof BigInt64Array) ||
    (dtype === 'int32' && a instanceof Int32Array) ||
    ((dtype === 'uint8' || dtype === 'bool') && a instanceof Uint8Array);
  if (!ok) throw new TypeError(`${what}: a ${a.constructor.name} cannot hold ${dtype} data`);
}
