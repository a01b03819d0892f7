// The compiled training step: its gradients against central finite differences of its own loss
// (same draws), on a tiny class-conditional engine built from a config in the reference's schema.
import test from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.js';
import { parseConfig } from '../../src/config/index.js';
import '../../src/registry.js';
import { instantiateFromConfig } from '../../src/config/index.js';
import type { DiffusionEngine } from '../../src/models/diffusion.js';
import { AdamW } from '../../src/training/optim.js';
import { DiffusionTrainer, trainableParameters } from '../../src/training/trainer.js';

const CONFIG = `
target: sgm.models.diffusion.DiffusionEngine
params:
  denoiser_config:
    target: sgm.modules.diffusionmodules.denoiser.Denoiser
    params:
      scaling_config:
        target: sgm.modules.diffusionmodules.denoiser_scaling.EDMScaling
        params: {sigma_data: 1.0}
  network_config:
    target: sgm.modules.diffusionmodules.openaimodel.UNetModel
    params:
      in_channels: 1
      out_channels: 1
      model_channels: 32
      attention_resolutions: [2]
      num_res_blocks: 1
      channel_mult: [1, 2]
      num_head_channels: 32
      num_classes: sequential
      adm_in_channels: 16
  conditioner_config:
    target: sgm.modules.GeneralConditioner
    params:
      emb_models:
        - is_trainable: True
          input_key: cls
          ucg_rate: 0.5
          target: sgm.modules.encoders.modules.ClassEmbedder
          params: {embed_dim: 16, n_classes: 10}
  first_stage_config:
    target: sgm.models.autoencoder.IdentityFirstStage
  loss_fn_config:
    target: sgm.modules.diffusionmodules.loss.StandardDiffusionLoss
    params:
      loss_weighting_config:
        target: sgm.modules.diffusionmodules.loss_weighting.EDMWeighting
        params: {sigma_data: 1.0}
      sigma_sampler_config:
        target: sgm.modules.diffusionmodules.sigma_sampling.EDMSampling
`;

function tinyEngine(): DiffusionEngine {
  T.manualSeed(0);
  return instantiateFromConfig<DiffusionEngine>(parseConfig(CONFIG, 'tiny.yaml'), { path: 'model' });
}

function batch(B: number): Record<string, { data: Float32Array | BigInt64Array; shape: number[] }> {
  const img = new Float32Array(B * 8 * 8).map((_, i) => Math.sin(i * 0.37) * 0.8);
  return { jpg: { data: img, shape: [B, 1, 8, 8] }, cls: { data: BigInt64Array.from({ length: B }, (_, i) => BigInt((i * 3) % 10)), shape: [B] } };
}

test('training step: gradients match central finite differences of the same loss (same draws)', async () => {
  const engine = tinyEngine();
  const params = trainableParameters(engine);
  const trainer = new DiffusionTrainer(engine, new AdamW(params, { lr: 0 }), { generator: new T.Generator().manualSeed(3) });
  await trainer.step(batch(6));
  const prep = trainer.lastPrepared!;
  const base = await trainer.lossAndGrads(prep);
  // Probe the largest-gradient element of several different parameters (UNet input conv, a
  // ResBlock, the label embedding MLP, the class embedding table, the output conv).
  engine.stateDict(); // names the variables
  const names = params.map((p) => p.name ?? '');
  const pick = ['input_blocks.0.0.weight', 'input_blocks.1.0.in_layers.2.weight', 'label_emb.0.0.weight', 'embedding.weight', 'out.2.weight', 'time_embed.0.bias'];
  let checked = 0;
  for (const suffix of pick) {
    const i = names.findIndex((n) => n.endsWith(suffix));
    assert.ok(i >= 0, `no parameter ending in ${suffix}`);
    const p = params[i]!;
    const g = base.grads[i]!;
    let j = 0;
    for (let k = 1; k < g.length; k++) if (Math.abs(g[k]!) > Math.abs(g[j]!)) j = k;
    const orig = Float32Array.from((await p.data()) as Float32Array);
    const eps = 1e-2;
    const at = async (delta: number): Promise<number> => {
      const v = Float32Array.from(orig);
      v[j] = orig[j]! + delta;
      p.assign({ kind: 'host', dtype: 'float32', data: v });
      return (await trainer.lossAndGrads(prep)).loss;
    };
    const fd = ((await at(eps)) - (await at(-eps))) / (2 * eps);
    p.assign({ kind: 'host', dtype: 'float32', data: orig });
    const an = g[j]!;
    assert.ok(Math.abs(fd - an) <= 0.03 * Math.abs(an) + 1e-4, `${names[i]}[${j}]: analytic ${an} vs finite difference ${fd}`);
    checked++;
  }
  assert.equal(checked, pick.length);
});

test('training step: the optimizer moves the weights and the loss on a fixed batch goes down', async () => {
  const engine = tinyEngine();
  const params = trainableParameters(engine);
  const trainer = new DiffusionTrainer(engine, new AdamW(params, { lr: 3e-3 }), { generator: new T.Generator().manualSeed(5) });
  const b = batch(8);
  await trainer.step(b);
  const prep = trainer.lastPrepared!;
  const before = (await trainer.lossAndGrads(prep)).loss;
  for (let s = 0; s < 15; s++) await trainer.step(b);
  const after = (await trainer.lossAndGrads(prep)).loss;
  assert.ok(after < before, `loss on the same draws: ${before} -> ${after}`);
  assert.equal(trainer.globalStep, 16);
});
