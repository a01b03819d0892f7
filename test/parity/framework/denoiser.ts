// Parity of the denoisers (kind `denoiser`): each call of the case (the sigma/index helpers of
// DiscreteDenoiser and the full forward with the fake network) against its output, what the network
// saw (aux.net.*) where recorded, and the module's state dict against the weights file.
import assert from 'node:assert/strict';
import type { CaseRunner, ParityCase } from '../../helpers/fixtures.js';
import { recordingFakeNetwork } from '../../helpers/fake-network.js';
import { readSafetensors } from '../../../src/io/safetensors.js';
import type { Denoiser } from '../../../src/modules/diffusionmodules/denoiser.js';
import * as T from '../../../src/tensor/index.js';
import { CaseIo, condFrom, instantiateCase, parseCall } from './common.js';

interface DenoiserCall {
  fn: string;
  inputs: Record<string, string | Record<string, string>>;
  output?: string;
  outputs?: string[];
  network_saw?: Record<string, string>;
}

const HELPERS = ['sigma_to_idx', 'idx_to_sigma', 'possibly_quantize_sigma', 'possibly_quantize_c_noise'] as const;

async function runDenoiser(c: ParityCase): Promise<void> {
  const cio = new CaseIo(c);
  const denoiser = instantiateCase<Denoiser>(c);
  const calls: DenoiserCall[] = c.spec.call.calls ?? [c.spec.call];
  for (const call of calls) {
    const { name, args } = parseCall(call.fn);
    const outName = call.output ?? call.outputs?.[0];
    assert.ok(outName, `${c.name}: ${call.fn} names no output`);
    assert.ok(!call.outputs || call.outputs.length === 1, `${c.name}: ${call.fn} lists several outputs`);
    if (name === 'denoiser') {
      assert.deepEqual(args, ['network', 'input', 'sigma', 'cond'], `${c.name}: unexpected signature ${call.fn}`);
      const { net, calls: seen } = recordingFakeNetwork();
      const out = denoiser.forward(net, cio.tensor(call.inputs.input as string), cio.tensor(call.inputs.sigma as string), condFrom(cio, call.inputs.cond as Record<string, string>));
      await cio.compare(call.fn, out, outName);
      assert.equal(seen.length, 1, `${c.name}: the network should be called once`);
      const saw = call.network_saw ?? {};
      const got: Record<string, T.Tensor> = { x: seen[0]!.x, t: seen[0]!.t, returned: seen[0]!.returned };
      for (const [k, ioName] of Object.entries(saw)) {
        assert.ok(got[k], `${c.name}: network_saw.${k} is not understood`);
        await cio.compare(`network saw ${k}`, got[k]!, ioName);
      }
    } else {
      assert.ok((HELPERS as readonly string[]).includes(name), `${c.name}: unknown denoiser method ${name}`);
      assert.equal(args.length, 1, `${c.name}: ${call.fn} takes one argument`);
      const arg = cio.tensor(call.inputs[args[0]!] as string);
      const fn = (denoiser as unknown as Record<string, (t: T.Tensor) => T.Tensor>)[name]!;
      await cio.compare(call.fn, fn.call(denoiser, arg), outName);
    }
  }
  // The module's state dict (DiscreteDenoiser's `sigmas` buffer) is the reference's.
  if (c.weightsPath) {
    const weights = readSafetensors(c.weightsPath);
    const sd = denoiser.stateDict();
    assert.deepEqual([...sd.keys()].sort(), [...weights.keys()].sort(), `${c.name}: state dict keys`);
    for (const [k, v] of sd) {
      cio.compareData(`state dict ${k}`, { shape: v.shape, dtype: v.dtype, data: (await v.data()) as Float32Array }, k, cio.tol, weights);
    }
  }
  cio.assertAllOutputsChecked();
}

export const denoiserRunners: Record<string, CaseRunner> = {
  denoiser: runDenoiser,
};
