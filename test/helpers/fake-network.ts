// The parity fixtures' deterministic fake network (each case's `call.network`), in exactly that
// operation order, all in float32:
//   h = 0.5 * tanh(x); h = h + 0.1 * mean(x, dim=1, keepdim=True); h = h + 0.01 * t[b];
//   h = h + 0.1 * mean(cond['crossattn'][b]); if 'vector' in cond: h = h + 0.05 * mean(cond['vector'][b]).
// t is cast to x's dtype first (an int64 index for DiscreteDenoiser with quantize_c_noise).
import * as T from '../../src/tensor/index.js';
import type { Cond } from '../../src/modules/diffusionmodules/denoiser.js';

/** Reshapes a per-sample (B,) tensor to (B, 1, ..., 1) with `ndim` dims. */
function perSample(v: T.Tensor, ndim: number): T.Tensor {
  return T.reshape(v, [v.shape[0]!, ...new Array<number>(ndim - 1).fill(1)]);
}

function meanOverNonBatch(v: T.Tensor): T.Tensor {
  return T.mean(v, Array.from({ length: v.ndim - 1 }, (_, i) => i + 1));
}

export function fakeNetwork(x: T.Tensor, t: T.Tensor, cond: Cond): T.Tensor {
  const tf = T.cast(t, x.dtype);
  let h = T.mul(T.tanh(x), 0.5);
  h = T.add(h, T.mul(T.mean(x, 1, true), 0.1));
  h = T.add(h, perSample(T.mul(tf, 0.01), x.ndim));
  const ca = cond['crossattn'];
  if (!(ca instanceof T.Tensor)) throw new Error("fake network: cond['crossattn'] must be a tensor");
  h = T.add(h, perSample(T.mul(meanOverNonBatch(ca), 0.1), x.ndim));
  const vec = cond['vector'];
  if (vec !== undefined) {
    if (!(vec instanceof T.Tensor)) throw new Error("fake network: cond['vector'] must be a tensor");
    h = T.add(h, perSample(T.mul(T.mean(vec, 1), 0.05), x.ndim));
  }
  return h;
}

/** What the network saw on its calls (inputs and output tensors), for the fixtures' `network_saw`. */
export interface NetworkCall {
  x: T.Tensor;
  t: T.Tensor;
  cond: Cond;
  extra: Record<string, unknown> | undefined;
  returned: T.Tensor;
}

/** The fake network, recording each call. */
export function recordingFakeNetwork(): { net: (x: T.Tensor, t: T.Tensor, cond: Cond, extra?: Record<string, unknown>) => T.Tensor; calls: NetworkCall[] } {
  const calls: NetworkCall[] = [];
  const net = (x: T.Tensor, t: T.Tensor, cond: Cond, extra?: Record<string, unknown>): T.Tensor => {
    const returned = fakeNetwork(x, t, cond);
    calls.push({ x, t, cond, extra, returned });
    return returned;
  };
  return { net, calls };
}
