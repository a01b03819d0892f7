// Parity of the LR schedulers (kind `lr_scheduler`): a fresh scheduler called on every step of
// in.steps in order, the multipliers against out.multiplier (float64).
import assert from 'node:assert/strict';
import type { CaseRunner, ParityCase } from '../../helpers/fixtures.js';
import { CaseIo, instantiateCase } from './common.js';

interface Scheduler {
  call(n: number): number;
}

async function runLrScheduler(c: ParityCase): Promise<void> {
  const cio = new CaseIo(c);
  const call = c.spec.call;
  assert.ok(call.inputs?.steps && Array.isArray(call.outputs) && call.outputs.length === 1, `${c.name}: expected inputs.steps and one output`);
  const sched = instantiateCase<Scheduler>(c);
  const steps = cio.get(call.inputs.steps).data as ArrayLike<number | bigint>;
  const out = new Float64Array(steps.length);
  for (let i = 0; i < steps.length; i++) out[i] = sched.call(Number(steps[i]));
  cio.compareData('multipliers', { shape: [out.length], dtype: 'float64', data: out }, call.outputs[0]);
  cio.assertAllOutputsChecked();
}

export const lrSchedulerRunners: Record<string, CaseRunner> = {
  lr_scheduler: runLrScheduler,
};
