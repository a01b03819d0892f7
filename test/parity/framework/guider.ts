// Parity of the guiders (kind `guider`): prepare_inputs(x, s, c, uc) on dict conds (tensor entries
// and the non-tensor entries the case lists) against the prepared batch, then guider(x, sigma)
// on a batch of denoiser outputs. An `out.*` name given as an input refers to that output as this
// implementation produced it.
import assert from 'node:assert/strict';
import type { CaseRunner, ParityCase } from '../../helpers/fixtures.js';
import type { Cond } from '../../../src/modules/diffusionmodules/denoiser.js';
import type { Guider } from '../../../src/modules/diffusionmodules/guiders.js';
import * as T from '../../../src/tensor/index.js';
import { CaseIo, condFrom, instantiateCase, parseCall } from './common.js';

interface GuiderCall {
  fn: string;
  inputs: Record<string, string | Record<string, string>>;
  outputs?: { x: string; s: string; c: Record<string, string>; c_non_tensor?: Record<string, unknown> };
  output?: string;
  [k: string]: unknown;
}

async function runGuider(c: ParityCase): Promise<void> {
  const cio = new CaseIo(c);
  const guider = instantiateCase<Guider>(c);
  const produced = new Map<string, T.Tensor>();
  const input = (name: string): T.Tensor => produced.get(name) ?? cio.tensor(name);
  const calls = (c.spec.call?.calls ?? []) as GuiderCall[];
  assert.ok(calls.length > 0, `${c.name}: call.calls is empty`);
  for (const call of calls) {
    const { name, args } = parseCall(call.fn);
    if (name === 'guider.prepare_inputs') {
      assert.deepEqual(args, ['x', 's', 'c', 'uc'], `${c.name}: unexpected signature ${call.fn}`);
      const nonTensorKey = Object.keys(call).find((k) => k.startsWith('non_tensor_cond_entries'));
      const nonTensor = (nonTensorKey ? call[nonTensorKey] : {}) as Record<string, unknown>;
      const cc: Cond = condFrom(cio, call.inputs.c as Record<string, string>, nonTensor);
      const uc: Cond = condFrom(cio, call.inputs.uc as Record<string, string>, nonTensor);
      const [x, s, cOut] = guider.prepareInputs(input(call.inputs.x as string), input(call.inputs.s as string), cc, uc);
      const outs = call.outputs;
      assert.ok(outs, `${c.name}: prepare_inputs lists no outputs`);
      await cio.compare('prepared x', x, outs.x);
      await cio.compare('prepared s', s, outs.s);
      produced.set(outs.x, x);
      produced.set(outs.s, s);
      const tensorKeys = Object.keys(cOut).filter((k) => cOut[k] instanceof T.Tensor).sort();
      assert.deepEqual(tensorKeys, Object.keys(outs.c).sort(), `${c.name}: prepared cond tensor keys`);
      for (const [k, ioName] of Object.entries(outs.c)) {
        await cio.compare(`prepared c[${k}]`, cOut[k] as T.Tensor, ioName);
        produced.set(ioName, cOut[k] as T.Tensor);
      }
      const nonTensorOut = Object.fromEntries(Object.entries(cOut).filter(([, v]) => !(v instanceof T.Tensor)));
      assert.deepEqual(nonTensorOut, outs.c_non_tensor ?? {}, `${c.name}: prepared non-tensor cond entries`);
    } else if (name === 'guider') {
      assert.deepEqual(args, ['x', 'sigma'], `${c.name}: unexpected signature ${call.fn}`);
      assert.ok(call.output, `${c.name}: ${call.fn} names no output`);
      const out = guider.call(input(call.inputs.x as string), input(call.inputs.sigma as string));
      await cio.compare(call.fn, out, call.output);
    } else {
      assert.fail(`${c.name}: call ${call.fn} is not understood`);
    }
  }
  // The per-frame scale of LinearPredictionGuider, where recorded.
  const scale = (guider as unknown as { scale?: unknown }).scale;
  if (cio.has('aux.scale') && scale instanceof T.Tensor) await cio.compare('scale', scale, 'aux.scale');
  cio.assertAllOutputsChecked();
}

export const guiderRunners: Record<string, CaseRunner> = {
  guider: runGuider,
};
