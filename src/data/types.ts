// The data layer's shapes of things: samples (dicts, as the reference's datasets return), array
// values with their shape, map-style datasets, batches.

/** The typed arrays a sample or batch array can hold. */
export type ArrayStorage = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

/** A host array with its shape (a tensor before it becomes one). */
export interface ArrayData<A extends ArrayStorage = ArrayStorage> {
  data: A;
  shape: number[];
}

/** One example: keys as in the reference (`jpg`, `cls`, `txt`, `__key__`, ...). */
export type Sample = Record<string, unknown>;

/** A batch: array values stacked along a new first axis, strings and other values as lists. */
export type Batch = Record<string, unknown>;

/** A map-style dataset (torch.utils.data.Dataset): `length` examples, read by index. */
export interface MapDataset<S = Sample> {
  readonly length: number;
  get(index: number): S | Promise<S>;
}

export function isArrayData(v: unknown): v is ArrayData {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as { data?: unknown; shape?: unknown };
  return ArrayBuffer.isView(o.data) && Array.isArray(o.shape);
}
