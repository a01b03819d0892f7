// ONNX emission: turns a Plan into an ONNX ModelProto (protobuf via the onnx-proto package).
// One entry per primitive op; weights and large constants become external-data initializers
// that point into checkpoint files (or a spill file for data held in JavaScript).
import onnxProto from 'onnx-proto';
import { ONNX_ELEM_TYPE, bytesOf, isFloat, type DType } from './dtype.js';
import type { Plan } from './graph.js';
import { convertedRegion, externalRegion } from './spill.js';
import { Tensor, Variable } from './tensor.js';

const { onnx } = onnxProto;
type INode = onnxProto.onnx.INodeProto;
type ITensorProto = onnxProto.onnx.ITensorProto;
type IValueInfo = onnxProto.onnx.IValueInfoProto;
type IAttr = onnxProto.onnx.IAttributeProto;

export const OPSET = 21;
export const IR_VERSION = 10;

export type OnnxAttr = number | string | readonly number[] | { floats: readonly number[] } | { float: number };

/** A value fed at run time: the graph input's name and the tensor it comes from. */
export interface Feed {
  name: string;
  tensor: Tensor;
}

export interface EmitResult {
  bytes: Uint8Array;
  feeds: Feed[];
  outputNames: string[];
  /** Folder that external-data locations are relative to (for ORT's session config). */
  externalRoot: string | null;
}

function attr(name: string, v: OnnxAttr): IAttr {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') {
    return Number.isInteger(v) ? { name, type: A.INT, i: v } : { name, type: A.FLOAT, f: v };
  }
  if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: A.INTS, ints: [...(v as number[])] };
  if ('floats' in (v as object)) return { name, type: A.FLOATS, floats: [...(v as { floats: number[] }).floats] };
  return { name, type: A.FLOAT, f: (v as { float: number }).float };
}

export function valueInfo(name: string, dtype: DType, shape: readonly number[]): IValueInfo {
  return {
    name,
    type: { tensorType: { elemType: ONNX_ELEM_TYPE[dtype], shape: { dim: shape.map((d) => ({ dimValue: d })) } } },
  };
}

/** Builds nodes of one graph; op emitters call `node()` and the constant helpers. */
export class Emitter {
  readonly nodes: INode[] = [];
  readonly initializers: ITensorProto[] = [];
  readonly inputs: IValueInfo[] = [];
  readonly feeds: Feed[] = [];
  private counter = 0;
  private readonly constCache = new Map<string, string>();
  externalRoot: string | null = null;

  fresh(prefix = 't'): string {
    return `${prefix}_${this.counter++}`;
  }

  node(opType: string, inputs: readonly string[], attrs: Record<string, OnnxAttr | undefined> = {}, out?: string, domain?: string): string {
    const output = out ?? this.fresh(opType.toLowerCase());
    const attribute: IAttr[] = [];
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined) attribute.push(attr(k, v));
    this.nodes.push({ opType, input: [...inputs], output: [output], attribute, ...(domain ? { domain } : {}) });
    return output;
  }

  /** An int64 constant (shapes, axes, pads), shared between nodes. */
  int64(values: readonly number[], scalar = false): string {
    const key = `i64:${scalar ? 's' : 'v'}:${values.join(',')}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = this.fresh('c');
      const data = new BigInt64Array(values.map((v) => BigInt(v)));
      this.initializers.push({ name, dims: scalar ? [] : [values.length], dataType: ONNX_ELEM_TYPE.int64, rawData: bytesOf(data) });
      this.constCache.set(key, name);
    }
    return name;
  }

  /** A scalar constant of a float or integer dtype. */
  scalar(value: number, dtype: DType): string {
    const key = `s:${dtype}:${Object.is(value, -0) ? '-0' : value}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = this.fresh('c');
      let raw: Uint8Array;
      switch (dtype) {
        case 'float32':
          raw = bytesOf(new Float32Array([value]));
          break;
        case 'float64':
          raw = bytesOf(new Float64Array([value]));
          break;
        case 'int64':
          raw = bytesOf(new BigInt64Array([BigInt(value)]));
          break;
        case 'int32':
          raw = bytesOf(new Int32Array([value]));
          break;
        case 'uint8':
        case 'bool':
          raw = new Uint8Array([value]);
          break;
        default: {
          // float16 / bfloat16: emit float32 and cast.
          const f = this.scalar(value, 'float32');
          name = this.node('Cast', [f], { to: ONNX_ELEM_TYPE[dtype] });
          this.constCache.set(key, name);
          return name;
        }
      }
      this.initializers.push({ name, dims: [], dataType: ONNX_ELEM_TYPE[dtype], rawData: raw });
      this.constCache.set(key, name);
    }
    return name;
  }

  /** A graph input fed at run time. */
  feed(name: string, t: Tensor, dtype: DType = t.dtype): string {
    this.inputs.push(valueInfo(name, dtype, t.shape));
    this.feeds.push({ name, tensor: t });
    return name;
  }

  /** An initializer stored as external data (a region of a checkpoint or of the spill file). */
  external(name: string, dtype: DType, shape: readonly number[], region: { path: string; offset: number; byteLength: number }): string {
    const rel = this.relativeToRoot(region.path);
    this.initializers.push({
      name,
      dims: [...shape],
      dataType: ONNX_ELEM_TYPE[dtype],
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: rel },
        { key: 'offset', value: String(region.offset) },
        { key: 'length', value: String(region.byteLength) },
      ],
    });
    return name;
  }

  private relativeToRoot(path: string): string {
    // ORT only accepts external data under one folder: use the filesystem root of the paths.
    const m = /^([A-Za-z]:[\\/]|\/)/.exec(path);
    if (!m) throw new Error(`external data path must be absolute: ${path}`);
    const root = m[1]!;
    if (this.externalRoot !== null && this.externalRoot !== root) {
      throw new Error(`external data on different roots (${this.externalRoot}, ${root}) cannot share one session`);
    }
    this.externalRoot = root;
    return path.slice(root.length).replace(/\\/g, '/');
  }

  rawInitializer(name: string, dtype: DType, shape: readonly number[], raw: Uint8Array): string {
    this.initializers.push({ name, dims: [...shape], dataType: ONNX_ELEM_TYPE[dtype], rawData: raw });
    return name;
  }
}

/** Largest constant embedded as raw bytes in the model proto; larger ones go to external data. */
const RAW_BAKE_LIMIT = 1 << 20;

export type OpEmitter = (e: Emitter, t: Tensor, ins: string[], out: string) => void;

const EMITTERS = new Map<string, OpEmitter>();

export function registerEmitter(op: string, fn: OpEmitter): void {
  EMITTERS.set(op, fn);
}

export function hasEmitter(op: string): boolean {
  return EMITTERS.has(op);
}

function emitLeaf(e: Emitter, t: Tensor, role: string, name: string): void {
  if (t instanceof Variable) {
    const st = t.storage;
    if (role !== 'feed') {
      // Baked weights in another precision are converted once on disk, not cast in the graph:
      // ORT would keep both the stored and the folded copy in memory.
      if (st.dtype !== t.dtype && !(isFloat(st.dtype) && isFloat(t.dtype))) {
        throw new Error(`${t.name ?? 'a variable'} is stored as ${st.dtype} and cannot be used as ${t.dtype}`);
      }
      e.external(name, t.dtype, t.shape, convertedRegion(st, t.dtype));
      return;
    }
    // bfloat16 cannot be fed to ONNX Runtime from JavaScript: such feeds arrive as float32 (exact).
    const stored = st.dtype === 'bfloat16' ? 'float32' : st.dtype;
    const storeName = stored === t.dtype ? name : `${name}_stored`;
    e.feed(storeName, t, stored);
    if (stored !== t.dtype) e.node('Cast', [storeName], { to: ONNX_ELEM_TYPE[t.dtype] }, name);
    return;
  }
  if (role === 'input') {
    e.inputs.push(valueInfo(name, t.dtype, t.shape));
    return;
  }
  const data = t.value!;
  if (role === 'feed') {
    e.feed(name, t);
  } else if (role === 'embed' || data.byteLength <= RAW_BAKE_LIMIT) {
    e.rawInitializer(name, t.dtype, t.shape, bytesOf(data).slice());
  } else {
    e.external(name, t.dtype, t.shape, externalRegion({ kind: 'host', dtype: t.dtype, data }));
  }
}

/** Value name of a node in a plan: inputs keep their traced names, everything else a local index. */
export function valueName(p: Plan, t: Tensor): string {
  if (p.roles.get(t.id) === 'input') return `in_${String(t.attrs.name)}`;
  return `v${p.index.get(t.id)}`;
}

export function emitModel(p: Plan, graphName = 'sgm'): EmitResult {
  const e = new Emitter();
  for (const t of p.order) {
    const name = valueName(p, t);
    const role = p.roles.get(t.id);
    if (role !== undefined) {
      emitLeaf(e, t, role, name);
      continue;
    }
    const fn = EMITTERS.get(t.op);
    if (!fn) throw new Error(`no ONNX emitter for op "${t.op}"`);
    fn(
      e,
      t,
      t.inputs.map((u) => valueName(p, u)),
      name,
    );
  }
  // Graph outputs must be distinct node outputs: wrap leaves and repeated outputs in Identity.
  const outputNames: string[] = [];
  const outputs: IValueInfo[] = [];
  const used = new Set<string>();
  p.outputs.forEach((t, i) => {
    let name = valueName(p, t);
    if (p.roles.has(t.id) || used.has(name)) name = e.node('Identity', [name], {}, `out_${i}`);
    used.add(name);
    outputNames.push(name);
    outputs.push(valueInfo(name, t.dtype, t.shape));
  });
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'sgm-ts',
    opsetImport: [
      { domain: '', version: OPSET },
      { domain: 'com.microsoft', version: 1 },
    ],
    graph: { name: graphName, node: e.nodes, input: e.inputs, output: outputs, initializer: e.initializers },
  });
  return { bytes: onnx.ModelProto.encode(model).finish(), feeds: e.feeds, outputNames, externalRoot: e.externalRoot };
}

