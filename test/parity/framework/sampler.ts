// Parity of the samplers (kind `sampler`): each case names the sampler (`target` + `params`), the
// denoiser config and the fake network; the case is run twice, once drawing from a torch
// generator seeded like the reference (the draws must equal the recorded `noise.<k>`), once with
// the recorded draws injected. Outputs: out.sigmas, out.x_init, out.traj.<i>, out.x.
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import * as T from '../../../src/tensor/index.js';
import '../../../src/registry.js';
import { instantiateFromConfig } from '../../../src/config/index.js';
import type { Cond, DenoiserLike } from '../../../src/modules/diffusionmodules/denoiser.js';
import type { BaseDiffusionSampler, DenoiserFn, NoiseSource } from '../../../src/modules/diffusionmodules/sampling.js';
import { loadIo, type CaseRunner, type IoTensor, type ParityCase } from '../../helpers/fixtures.js';
import { assertClose, type Tolerance } from '../../helpers/close.js';
import { fakeNetwork } from '../../helpers/fake-network.js';

/** The io tensor an input description names: its first word (`"in.x (the reference ...)"`). */
function ioName(desc: string): string {
  return desc.trim().split(/\s+/)[0]!;
}

function toTensor(io: Map<string, IoTensor>, name: string, caseName: string): T.Tensor {
  const v = io.get(name);
  if (!v) throw new Error(`${caseName}: io tensor '${name}' is missing`);
  switch (v.dtype) {
    case 'F32':
      return T.tensor(Float32Array.from(v.data as Float32Array), v.shape, 'float32');
    case 'F64':
      return T.tensor(Float32Array.from(v.data as Float64Array), v.shape, 'float32');
    case 'I64':
      return T.tensor(v.data as BigInt64Array, v.shape, 'int64');
    default:
      throw new Error(`${caseName}: io tensor '${name}' has dtype ${v.dtype}, not handled by the sampler runner`);
  }
}

function condFrom(spec: unknown, io: Map<string, IoTensor>, caseName: string): Cond {
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw new Error(`${caseName}: cond spec must be a mapping`);
  const out: Cond = {};
  for (const [k, v] of Object.entries(spec as Record<string, unknown>)) {
    out[k] = typeof v === 'string' && v.startsWith('in.') ? toTensor(io, ioName(v), caseName) : v;
  }
  return out;
}

function f32(io: Map<string, IoTensor>, name: string): Float32Array {
  const v = io.get(name);
  if (!v) throw new Error(`io tensor '${name}' is missing`);
  return v.data as Float32Array;
}

interface RunResult {
  sigmas: Float32Array;
  xInit: Float32Array;
  traj: Float32Array[];
  x: Float32Array;
  draws: Float32Array[];
}

async function runOnce(
  sampler: BaseDiffusionSampler,
  denoiser: DenoiserFn,
  x: T.Tensor,
  cond: Cond,
  uc: Cond | undefined,
  noise: NoiseSource,
): Promise<RunResult> {
  const draws: Float32Array[] = [];
  const recording: NoiseSource = (shape, step, k) => {
    const d = noise(shape, step, k);
    draws.push(d);
    return d;
  };
  const loop = sampler.prepareSamplingLoop(x, cond, uc);
  const traj: Float32Array[] = [];
  const out = await sampler.runLoop(denoiser, loop, {
    noise: recording,
    onStep: async ({ x: xi }) => {
      traj.push((await xi.data()) as Float32Array);
    },
  });
  return {
    sigmas: loop.sigmas,
    xInit: (await loop.x.data()) as Float32Array,
    traj,
    x: (await out.data()) as Float32Array,
    draws,
  };
}

function compare(c: ParityCase, io: Map<string, IoTensor>, r: RunResult, tol: Tolerance, label: string): void {
  assertClose(r.sigmas, f32(io, 'out.sigmas'), tol, `${c.name} [${label}] out.sigmas`);
  assertClose(r.xInit, f32(io, 'out.x_init'), tol, `${c.name} [${label}] out.x_init`);
  const nTraj = [...io.keys()].filter((k) => k.startsWith('out.traj.')).length;
  assert.equal(r.traj.length, nTraj, `${c.name} [${label}]: ${r.traj.length} steps, the fixture has ${nTraj}`);
  for (let i = 0; i < nTraj; i++) assertClose(r.traj[i]!, f32(io, `out.traj.${i}`), tol, `${c.name} [${label}] out.traj.${i}`);
  assertClose(r.x, f32(io, 'out.x'), tol, `${c.name} [${label}] out.x`);
}

async function runSamplerCase(c: ParityCase, _t: TestContext): Promise<void> {
  const spec = c.spec;
  const call = spec.call as Record<string, any>;
  const io = loadIo(c);
  const tol = spec.tolerance as Tolerance;

  const sampler = instantiateFromConfig<BaseDiffusionSampler>({ target: spec.target, params: spec.params }, { path: c.name });
  const den = instantiateFromConfig<DenoiserLike>(call.denoiser_config, { path: `${c.name}.call.denoiser_config` });
  assert.match(String(call.network), /^net\(x, t, cond\)/, `${c.name}: call.network is not the fixtures' fake network`);
  const denoiser: DenoiserFn = (x, sigma, cond) => den.forward(fakeNetwork, x, sigma, cond);

  const inputs = call.inputs as Record<string, unknown>;
  const x = toTensor(io, ioName(inputs['x'] as string), c.name);
  const cond = condFrom(inputs['cond'], io, c.name);
  const ucSpec = inputs['uc'];
  let uc: Cond | undefined;
  if (ucSpec === undefined || ucSpec === null) uc = undefined;
  else if (typeof ucSpec === 'string') {
    assert.ok(ucSpec.startsWith('same object as cond'), `${c.name}: unknown uc spec ${JSON.stringify(ucSpec)}`);
    uc = cond;
  } else uc = condFrom(ucSpec, io, c.name);

  const recorded = [...io.keys()].filter((k) => /^noise\.\d+$/.test(k)).sort((a, b) => Number(a.slice(6)) - Number(b.slice(6)));
  const draws = (call.draws ?? []) as Array<{ key: string }>;
  assert.equal(draws.length, recorded.length, `${c.name}: call.draws lists ${draws.length} draws, the io file has ${recorded.length}`);

  // 1. Seeded like the reference: the draws must reproduce the recorded ones bit for bit.
  const seed = call['torch.manual_seed'];
  assert.ok(Number.isInteger(seed), `${c.name}: call["torch.manual_seed"] missing`);
  const gen = new T.Generator(seed as number);
  const seeded = await runOnce(sampler, denoiser, x, cond, uc, (shape) => gen.randnData(shape, 'float32'));
  assert.equal(seeded.draws.length, recorded.length, `${c.name}: the sampler drew ${seeded.draws.length} times, the reference ${recorded.length}`);
  seeded.draws.forEach((d, k) => {
    const ref = f32(io, `noise.${k}`);
    assert.equal(d.length, ref.length, `${c.name}: draw ${k} has ${d.length} values, noise.${k} ${ref.length}`);
    for (let i = 0; i < ref.length; i++) {
      if (!Object.is(d[i], ref[i])) assert.fail(`${c.name}: draw ${k} differs from noise.${k} at [${i}]: ${d[i]} vs ${ref[i]}`);
    }
  });
  compare(c, io, seeded, tol, 'seeded');

  // 2. The recorded draws injected.
  const injected = await runOnce(sampler, denoiser, x, cond, uc, (shape, _step, k) => {
    const name = `noise.${k}`;
    const v = io.get(name);
    if (!v) throw new Error(`${c.name}: the sampler asked for draw ${k}, the fixture recorded ${recorded.length}`);
    assert.deepEqual(v.shape, shape, `${c.name}: draw ${k} shape`);
    return Float32Array.from(v.data as Float32Array);
  });
  assert.equal(injected.draws.length, recorded.length);
  compare(c, io, injected, tol, 'recorded draws');
}

export const samplerRunners: Record<string, CaseRunner> = {
  sampler: runSamplerCase,
};
