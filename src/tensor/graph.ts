// Graph planning: the topological order of the nodes an evaluation needs, how each leaf enters
// the ONNX model (embedded, fed at run time, or baked in from external data), and a structural
// key that identifies the compiled session (graph, shapes, dtypes, baked constants and weights).
import { createHash } from 'node:crypto';
import { bytesOf } from './dtype.js';
import { Tensor, Variable } from './tensor.js';

/** Constants up to this many elements are embedded in the model and are part of its structure. */
export const EMBED_LIMIT = 64;

export type LeafRole =
  /** small constant: an initializer inside the model proto */
  | 'embed'
  /** fed at run time from host data (eager evaluation, or variables as graph inputs) */
  | 'feed'
  /** large constant or weight baked into the session as an external-data initializer */
  | 'bake'
  /** symbolic input of a traced function */
  | 'input';

export interface PlanOptions {
  /** 'eager': large constants and variables are fed; 'compile': they are baked in. */
  mode: 'eager' | 'compile';
  /**
   * Variables baked as initializers (compile default) or fed as inputs (training; eager default).
   */
  variables?: 'initializers' | 'inputs';
}

export interface Plan {
  /** All nodes in evaluation order: leaves first where they are first needed. */
  order: Tensor[];
  /** Local index of each node by tensor id (value names derive from it). */
  index: Map<number, number>;
  roles: Map<number, LeafRole>;
  outputs: Tensor[];
  key: string;
}

export function isLeaf(t: Tensor): boolean {
  return t.value !== undefined || t.op === 'const' || t.op === 'variable' || t.op === 'input';
}

export function leafRole(t: Tensor, opts: PlanOptions): LeafRole {
  if (t instanceof Variable) {
    if (opts.variables === 'inputs') return 'feed';
    // Eager evaluations feed variables unless asked to bake them (a model evaluated again and
    // again, like a text encoder or a decoder, keeps its weights in one cached session).
    if (opts.mode === 'eager' && opts.variables !== 'initializers') return 'feed';
    return 'bake';
  }
  if (t.op === 'input' && t.value === undefined) return 'input';
  if (t.size <= EMBED_LIMIT) return 'embed';
  return opts.mode === 'eager' ? 'feed' : 'bake';
}

function hashBytes(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('base64url').slice(0, 22);
}

/** Topologically orders everything `outputs` depend on, stopping at leaves (evaluated tensors are leaves). */
export function plan(outputs: readonly Tensor[], opts: PlanOptions): Plan {
  const order: Tensor[] = [];
  const index = new Map<number, number>();
  const roles = new Map<number, LeafRole>();
  const state = new Map<number, 1 | 2>(); // 1 = on stack, 2 = done
  for (const out of outputs) {
    const stack: Array<[Tensor, number]> = [[out, 0]];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const [t, i] = top;
      if (i === 0) {
        const s = state.get(t.id);
        if (s === 2) {
          stack.pop();
          continue;
        }
        state.set(t.id, 1);
        if (isLeaf(t)) {
          roles.set(t.id, leafRole(t, opts));
          state.set(t.id, 2);
          index.set(t.id, order.length);
          order.push(t);
          stack.pop();
          continue;
        }
      }
      if (i < t.inputs.length) {
        top[1] = i + 1;
        const child = t.inputs[i]!;
        if (state.get(child.id) !== 2) stack.push([child, 0]);
        continue;
      }
      state.set(t.id, 2);
      index.set(t.id, order.length);
      order.push(t);
      stack.pop();
    }
  }
  const lines: string[] = [];
  for (const t of order) {
    const head = `${t.dtype}|${t.shape.join(',')}`;
    const role = roles.get(t.id);
    if (role === undefined) {
      lines.push(`${t.op}|${head}|${JSON.stringify(t.attrs)}|${t.inputs.map((u) => index.get(u.id)).join(',')}`);
    } else if (role === 'input') {
      lines.push(`I|${head}|${String(t.attrs.name)}`);
    } else if (t instanceof Variable) {
      const st = t.rawStorage.dtype;
      lines.push(role === 'feed' ? `VF|${head}|${st}` : `VB|${head}|${st}|${t.uid}.${t.version}`);
    } else if (role === 'feed') {
      lines.push(`CF|${head}`);
    } else {
      lines.push(`C${role === 'embed' ? 'E' : 'B'}|${head}|${hashBytes(bytesOf(t.value!))}`);
    }
  }
  lines.push(`out|${outputs.map((o) => index.get(o.id)).join(',')}`);
  const key = createHash('sha256').update(lines.join('\n')).digest('base64url');
  return { order, index, roles, outputs: [...outputs], key };
}
