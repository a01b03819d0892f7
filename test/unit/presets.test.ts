// Model presets and the project's own inference configs: our configs/inference/*.yaml describe
// exactly the reference's models (deep-equal after loading, when ../shared/reference-configs or
// $SGM_REFERENCE_CONFIGS is there), every preset resolves (demo names, any case, api.py ids) and
// carries the settings of api.py / sampling.py / turbo.py, the full-size networks of every config
// build (no weights) with the right parameter counts, and missing files give messages that say
// what to do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { instantiateFromConfig, loadConfigFile, loadConfigs } from '../../src/config/index.js';
import type { ConfigMap } from '../../src/config/index.js';
import '../../src/registry.js';
import { withInitMode } from '../../src/nn/index.js';
import type { Module } from '../../src/nn/index.js';
import {
  DEFAULT_SAMPLING_PARAMS,
  MissingCheckpointError,
  MissingVocabError,
  PresetError,
  SDXL_BASE_RESOLUTIONS,
  TURBO_SAMPLING,
  canRefine,
  checkCheckpointPresent,
  findPresetVocab,
  inferenceConfigDir,
  listPresets,
  presetCheckpointPath,
  presetConfigPath,
  presetPackageRoot,
  resolvePreset,
} from '../../src/inference/presets.js';
import type { Preset } from '../../src/inference/presets.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const referenceDir = process.env['SGM_REFERENCE_CONFIGS']
  ? resolve(process.env['SGM_REFERENCE_CONFIGS'])
  : resolve(repoRoot, '..', 'shared', 'reference-configs');
const OUR_CONFIGS = ['sd_xl_base.yaml', 'sd_xl_refiner.yaml', 'sd_2_1.yaml', 'sd_2_1_768.yaml'];

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'sgm-presets-'));
}

// ------------------------------------------------------------------------------------ configs

test('configs/inference: each describes the same model as the reference config (deep-equal once loaded)', async (t) => {
  const refInference = join(referenceDir, 'inference');
  if (!existsSync(refInference)) {
    t.skip(`reference configs not found at ${referenceDir} (set SGM_REFERENCE_CONFIGS)`);
    return;
  }
  for (const name of OUR_CONFIGS) {
    await t.test(name, () => {
      const ours = join(repoRoot, 'configs', 'inference', name);
      const ref = join(refInference, name);
      assert.ok(existsSync(ref), `the reference has ${name}`);
      assert.deepEqual(loadConfigs([ours]), loadConfigs([ref]));
      assert.deepEqual(loadConfigFile(ours), loadConfigFile(ref), 'the same before resolving too');
    });
  }
});

test('configs/inference: the differences between the models are where the reference puts them', () => {
  const load = (n: string): any => loadConfigs([join(repoRoot, 'configs', 'inference', n)]);
  const [xl, refiner, sd, sd768] = OUR_CONFIGS.map(load);
  for (const c of [xl, refiner, sd, sd768]) assert.equal(c.model.target, 'sgm.models.diffusion.DiffusionEngine');
  assert.equal(xl.model.params.scale_factor, 0.13025);
  assert.equal(refiner.model.params.scale_factor, 0.13025);
  assert.equal(sd.model.params.scale_factor, 0.18215);
  // SD 2.1-768 is the v-prediction model; otherwise identical to SD 2.1 base
  assert.match(sd.model.params.denoiser_config.params.scaling_config.target, /\.EpsScaling$/);
  assert.match(sd768.model.params.denoiser_config.params.scaling_config.target, /\.VScaling$/);
  const sd768AsEps = structuredClone(sd768);
  sd768AsEps.model.params.denoiser_config.params.scaling_config.target = sd.model.params.denoiser_config.params.scaling_config.target;
  assert.deepEqual(sd768AsEps, sd);
  // adm_in_channels = pooled bigG text (1280) + 256 per size/crop/aesthetic number
  const nums = (c: any): number =>
    c.model.params.conditioner_config.params.emb_models
      .filter((e: any) => e.target.endsWith('ConcatTimestepEmbedderND'))
      .reduce((n: number, e: any) => n + e.params.outdim * (e.input_key === 'aesthetic_score' ? 1 : 2), 0);
  assert.equal(xl.model.params.network_config.params.adm_in_channels, 1280 + nums(xl));
  assert.equal(refiner.model.params.network_config.params.adm_in_channels, 1280 + nums(refiner));
  assert.deepEqual(refiner.model.params.network_config.params.context_dim, [1280, 1280, 1280, 1280]);
});

// ------------------------------------------------------------------------------------ presets

const DEMO_NAMES = ['SDXL-base-1.0', 'SDXL-base-0.9', 'SD-2.1', 'SD-2.1-768', 'SDXL-refiner-0.9', 'SDXL-refiner-1.0', 'SDXL-Turbo', 'SD-Turbo'];

// api.py's model_specs and the demos' VERSION2SPECS, written out again here.
const EXPECTED: Record<string, { arch: string | null; H: number; legacy: boolean; guided: boolean; config: string; ckpt: string; repo: string }> = {
  'SDXL-base-1.0': { arch: 'stable-diffusion-xl-v1-base', H: 1024, legacy: false, guided: true, config: 'sd_xl_base.yaml', ckpt: 'sd_xl_base_1.0.safetensors', repo: 'stabilityai/stable-diffusion-xl-base-1.0' },
  'SDXL-base-0.9': { arch: 'stable-diffusion-xl-v0-9-base', H: 1024, legacy: false, guided: true, config: 'sd_xl_base.yaml', ckpt: 'sd_xl_base_0.9.safetensors', repo: 'stabilityai/stable-diffusion-xl-base-0.9' },
  'SD-2.1': { arch: 'stable-diffusion-v2-1', H: 512, legacy: true, guided: true, config: 'sd_2_1.yaml', ckpt: 'v2-1_512-ema-pruned.safetensors', repo: 'stabilityai/stable-diffusion-2-1-base' },
  'SD-2.1-768': { arch: 'stable-diffusion-v2-1-768', H: 768, legacy: true, guided: true, config: 'sd_2_1_768.yaml', ckpt: 'v2-1_768-ema-pruned.safetensors', repo: 'stabilityai/stable-diffusion-2-1' },
  'SDXL-refiner-0.9': { arch: 'stable-diffusion-xl-v0-9-refiner', H: 1024, legacy: true, guided: true, config: 'sd_xl_refiner.yaml', ckpt: 'sd_xl_refiner_0.9.safetensors', repo: 'stabilityai/stable-diffusion-xl-refiner-0.9' },
  'SDXL-refiner-1.0': { arch: 'stable-diffusion-xl-v1-refiner', H: 1024, legacy: true, guided: true, config: 'sd_xl_refiner.yaml', ckpt: 'sd_xl_refiner_1.0.safetensors', repo: 'stabilityai/stable-diffusion-xl-refiner-1.0' },
  'SDXL-Turbo': { arch: null, H: 512, legacy: false, guided: false, config: 'sd_xl_base.yaml', ckpt: 'sd_xl_turbo_1.0.safetensors', repo: 'stabilityai/sdxl-turbo' },
  'SD-Turbo': { arch: null, H: 512, legacy: false, guided: false, config: 'sd_2_1.yaml', ckpt: 'sd_turbo.safetensors', repo: 'stabilityai/sd-turbo' },
};

test('presets: the demos\' models, with api.py\'s and the demos\' specs', () => {
  assert.deepEqual(listPresets().map((p) => p.name), DEMO_NAMES);
  for (const p of listPresets()) {
    const e = EXPECTED[p.name]!;
    assert.equal(p.architecture, e.arch, p.name);
    assert.equal(p.H, e.H, p.name);
    assert.equal(p.W, e.H, p.name);
    assert.equal(p.C, 4);
    assert.equal(p.F, 8);
    assert.equal(p.is_legacy, e.legacy, p.name);
    assert.equal(p.is_guided, e.guided, p.name);
    assert.deepEqual(p.force_uc_zero_embeddings, e.legacy ? [] : ['txt'], p.name);
    assert.equal(p.config, e.config, p.name);
    assert.equal(p.checkpoint, e.ckpt, p.name);
    assert.equal(p.repo, e.repo, p.name);
    assert.equal(p.url, `https://huggingface.co/${e.repo}`);
  }
  assert.equal(resolvePreset('SDXL-base-1.0').sha256, '31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6120b893f7e5b');
  assert.equal(resolvePreset('SDXL-refiner-1.0').sha256, '7440042bbdc8a24813002c09b6b69b64dc90fded4472613437b7f55f9b7d9c5f');
  for (const p of listPresets()) if (p.sha256 !== null) assert.match(p.sha256, /^[0-9a-f]{64}$/);
});

test('presets: resolve by demo name, any case, api.py id and Hugging Face repo', () => {
  for (const p of listPresets()) {
    assert.equal(resolvePreset(p.name), p);
    assert.equal(resolvePreset(p.name.toLowerCase()), p);
    assert.equal(resolvePreset(p.name.toUpperCase()), p);
    assert.equal(resolvePreset(`  ${p.name} `), p);
    assert.equal(resolvePreset(p), p);
    assert.equal(resolvePreset(p.repo), p);
    if (p.architecture) assert.equal(resolvePreset(p.architecture), p);
  }
  assert.equal(resolvePreset('stable-diffusion-xl-v1-base').name, 'SDXL-base-1.0');
  assert.equal(resolvePreset('STABLE-DIFFUSION-V2-1-768').name, 'SD-2.1-768');
  assert.equal(resolvePreset('stable-diffusion-xl-v0-9-refiner').name, 'SDXL-refiner-0.9');
  assert.equal(resolvePreset('sdxl-turbo').name, 'SDXL-Turbo');
});

test('presets: an unknown name is a PresetError listing every name and the closest one', () => {
  const check = (name: string, closest: string): void => {
    assert.throws(
      () => resolvePreset(name),
      (e: unknown) => {
        assert.ok(e instanceof PresetError, String(e));
        assert.equal(e.requested, name);
        assert.equal(e.closest, closest);
        assert.ok(e.message.includes(`'${name}'`), e.message);
        assert.ok(e.message.includes(`closest: '${closest}'`), e.message);
        for (const n of DEMO_NAMES) assert.ok(e.message.includes(n), `lists ${n}: ${e.message}`);
        return true;
      },
    );
  };
  check('SDXL-base-1.1', 'SDXL-base-1.0');
  check('sdxl turbo', 'SDXL-Turbo');
  check('SD-2.1-786', 'SD-2.1-768');
  check('stable-diffusion-xl-v1-refiner-x', 'SDXL-refiner-1.0');
  assert.throws(() => resolvePreset(' '), (e: unknown) => e instanceof PresetError && e.closest === null && /^no model preset named; known presets: SDXL-base-1\.0, /.test(e.message));
});

test('presets: sampling defaults are api.py\'s SamplingParams; turbo is turbo.py\'s SubstepSampler', () => {
  // api.py SamplingParams, field for field
  assert.deepEqual(
    { ...DEFAULT_SAMPLING_PARAMS },
    {
      width: 1024, height: 1024, steps: 50, sampler: 'DPMPP2MSampler', discretization: 'LegacyDDPMDiscretization', guider: 'VanillaCFG',
      thresholder: 'None', scale: 6.0, aesthetic_score: 5.0, negative_aesthetic_score: 5.0, img2img_strength: 1.0, orig_width: 1024,
      orig_height: 1024, crop_coords_top: 0, crop_coords_left: 0, sigma_min: 0.0292, sigma_max: 14.6146, rho: 3.0, s_churn: 0.0,
      s_tmin: 0.0, s_tmax: 999.0, s_noise: 1.0, eta: 1.0, order: 4,
    },
  );
  assert.ok(Object.isFrozen(DEFAULT_SAMPLING_PARAMS));
  for (const p of listPresets()) {
    if (p.is_guided) {
      assert.equal(p.turbo, null);
      const s = p.sampling!;
      assert.equal(s.width, p.W);
      assert.equal(s.height, p.H);
      assert.equal(s.orig_width, p.W);
      assert.equal(s.steps, 50);
      assert.equal(s.sampler, 'DPMPP2MSampler');
      assert.equal(s.guider, 'VanillaCFG');
      assert.equal(s.scale, 6.0);
    } else {
      assert.equal(p.sampling, null);
      assert.equal(p.turbo, TURBO_SAMPLING);
      assert.equal(p.seed, 0);
    }
  }
  assert.equal(TURBO_SAMPLING.sampler, 'EulerAncestralSampler');
  assert.equal(TURBO_SAMPLING.eta, 1.0);
  assert.equal(TURBO_SAMPLING.discretization, 'LegacyDDPMDiscretization');
  assert.equal(TURBO_SAMPLING.discretization_steps, 1000);
  assert.deepEqual(TURBO_SAMPLING.steps_subset, [0, 100, 200, 300, 1000]);
  assert.equal(TURBO_SAMPLING.steps, 1);
  assert.equal(TURBO_SAMPLING.max_steps, 4);
  assert.equal(TURBO_SAMPLING.guider, 'IdentityGuider');
  assert.equal(TURBO_SAMPLING.noise, 'numpy');
  assert.equal(resolvePreset('SDXL-base-1.0').seed, 42);
  // SDXL-base offers the demo's resolutions (default 1024x1024, every side a multiple of 64)
  assert.equal(resolvePreset('SDXL-base-0.9').resolutions, SDXL_BASE_RESOLUTIONS);
  assert.deepEqual(SDXL_BASE_RESOLUTIONS['1.0'], [1024, 1024]);
  for (const [ratio, [w, h]] of Object.entries(SDXL_BASE_RESOLUTIONS)) {
    assert.equal(w % 64, 0);
    assert.equal(h % 64, 0);
    assert.ok(Math.abs(w / h - Number(ratio)) < 0.03, `${ratio}: ${w}x${h}`);
  }
  assert.equal(resolvePreset('SD-2.1').resolutions, null);
});

test('presets: refiners refine the SDXL bases with strength 0.15 and finish denoising', () => {
  for (const name of ['SDXL-refiner-1.0', 'SDXL-refiner-0.9']) {
    const r = resolvePreset(name);
    assert.deepEqual({ ...r.refiner!, refines: [...r.refiner!.refines] }, {
      strength: 0.15, finish_denoising: true, aesthetic_score: 6.0, negative_aesthetic_score: 2.5, refines: ['SDXL-base-1.0', 'SDXL-base-0.9'],
    });
    assert.equal(r.sampling!.aesthetic_score, 6.0);
    assert.equal(r.sampling!.negative_aesthetic_score, 2.5);
    assert.deepEqual(r.refiners, []);
    for (const base of ['SDXL-base-1.0', 'SDXL-base-0.9']) assert.ok(canRefine(name, base));
    for (const other of ['SD-2.1', 'SD-2.1-768', 'SDXL-Turbo', 'SD-Turbo', 'SDXL-refiner-1.0']) assert.ok(!canRefine(name, other));
  }
  for (const base of ['SDXL-base-1.0', 'SDXL-base-0.9']) assert.deepEqual(resolvePreset(base).refiners, ['SDXL-refiner-1.0', 'SDXL-refiner-0.9']);
  for (const p of listPresets()) {
    if (!p.name.startsWith('SDXL-base')) assert.deepEqual(p.refiners, [], p.name);
    if (!p.name.startsWith('SDXL-refiner')) {
      assert.equal(p.refiner, null, p.name);
      assert.ok(!canRefine(p, 'SDXL-base-1.0'));
    }
  }
});

test('presets: config paths are the package\'s configs/inference; each exists, loads, and its text encoders match the vocab list', () => {
  assert.equal(presetPackageRoot(), repoRoot);
  assert.equal(inferenceConfigDir(), join(repoRoot, 'configs', 'inference'));
  for (const p of listPresets()) {
    const path = presetConfigPath(p);
    assert.ok(isAbsolute(path));
    assert.equal(path, join(repoRoot, 'configs', 'inference', p.config));
    assert.equal(presetConfigPath(p.name.toLowerCase()), path);
    assert.ok(existsSync(path), path);
    const cfg = loadConfigs([path]) as any;
    assert.equal(cfg.model.target, 'sgm.models.diffusion.DiffusionEngine');
    const textEmbedders: string[] = cfg.model.params.conditioner_config.params.emb_models
      .filter((e: any) => e.input_key === 'txt')
      .map((e: any) => e.target.split('.').pop());
    assert.deepEqual(p.vocab.flatMap((v) => v.embedders), textEmbedders, p.name);
    for (const v of p.vocab) {
      assert.equal(v.kind, v.embedders[0] === 'FrozenCLIPEmbedder' ? 'hf_clip' : 'open_clip');
      assert.deepEqual(v.files, v.kind === 'hf_clip' ? ['vocab.json', 'merges.txt'] : ['bpe_simple_vocab_16e6.txt.gz']);
    }
  }
});

// -------------------------------------------------------------------- full-size networks

function build(cfg: ConfigMap, key: string): Module {
  const sub = (cfg['model'] as any).params[key];
  return withInitMode('none', () => instantiateFromConfig(sub, { path: `model.params.${key}` })) as Module;
}

/** open_clip text tower (+ text_projection and logit_scale) parameter count, computed from its shape. */
function openClipTextParams(width: number, layers: number, embedDim: number): number {
  const perLayer = 3 * width * width + 3 * width + width * width + width + 4 * width + (width * 4 * width + 4 * width) + (4 * width * width + width);
  return 49408 * width + 77 * width + layers * perLayer + 2 * width + width * embedDim + 1;
}
/** transformers' CLIPTextModel (CLIP ViT-L/14 text) parameter count, computed from its shape. */
function hfClipTextParams(width: number, layers: number, inter: number): number {
  const perLayer = 4 * (width * width + width) + 4 * width + (width * inter + inter) + (inter * width + width);
  return 49408 * width + 77 * width + layers * perLayer + 2 * width;
}

test('full-size networks of each config build without weights, with the right parameter counts', async (t) => {
  const UNET: Record<string, number> = { 'sd_xl_base.yaml': 2_567_463_684, 'sd_xl_refiner.yaml': 2_259_526_660, 'sd_2_1.yaml': 865_910_724, 'sd_2_1_768.yaml': 865_910_724 };
  const CLIP_L = hfClipTextParams(768, 12, 3072);
  const BIG_G = openClipTextParams(1280, 32, 1280);
  const VIT_H = openClipTextParams(1024, 24, 1024);
  assert.equal(CLIP_L, 123_060_480);
  assert.ok(Math.abs(BIG_G - 694.7e6) < 0.1e6, String(BIG_G));
  assert.ok(Math.abs(VIT_H - 354.0e6) < 0.1e6, String(VIT_H));
  const EMBEDDERS: Record<string, Array<[string, number]>> = {
    'sd_xl_base.yaml': [['FrozenCLIPEmbedder', CLIP_L], ['FrozenOpenCLIPEmbedder2', BIG_G], ['ConcatTimestepEmbedderND', 0], ['ConcatTimestepEmbedderND', 0], ['ConcatTimestepEmbedderND', 0]],
    'sd_xl_refiner.yaml': [['FrozenOpenCLIPEmbedder2', BIG_G], ['ConcatTimestepEmbedderND', 0], ['ConcatTimestepEmbedderND', 0], ['ConcatTimestepEmbedderND', 0]],
    'sd_2_1.yaml': [['FrozenOpenCLIPEmbedder', VIT_H]],
    'sd_2_1_768.yaml': [['FrozenOpenCLIPEmbedder', VIT_H]],
  };
  const configs = [...new Set(listPresets().map((p) => p.config))];
  assert.deepEqual(configs.sort(), [...OUR_CONFIGS].sort());
  for (const name of configs) {
    await t.test(name, () => {
      const cfg = loadConfigs([join(inferenceConfigDir(), name)]);
      const unet = build(cfg, 'network_config');
      assert.equal(unet.constructor.name, 'UNetModel');
      assert.equal(unet.numParameters(), UNET[name]);
      const vae = build(cfg, 'first_stage_config');
      assert.equal(vae.constructor.name, 'AutoencoderKL');
      assert.equal(vae.numParameters(), 83_653_863);
      const cond = build(cfg, 'conditioner_config') as Module & { embedders: { items: Module[] } };
      assert.equal(cond.constructor.name, 'GeneralConditioner');
      assert.deepEqual(
        cond.embedders.items.map((e) => [e.constructor.name, e.numParameters()]),
        EMBEDDERS[name],
      );
      // CLIP-L's position_ids is a buffer (persistent, as in the SDXL checkpoints), not a parameter
      const clip = cond.embedders.items.find((e) => e.constructor.name === 'FrozenCLIPEmbedder');
      if (clip) assert.deepEqual(clip.namedBuffers().map(([n, b]) => [n, b.size]), [['transformer.text_model.embeddings.position_ids', 77]]);
    });
  }
});

// ------------------------------------------------------------------------- missing files

test('checkpoints: the path is modelDir/<file>; a missing one says where the weights are and how to point elsewhere', () => {
  assert.equal(presetCheckpointPath('SDXL-base-1.0'), join('checkpoints', 'sd_xl_base_1.0.safetensors'));
  assert.equal(presetCheckpointPath('sd-turbo', join('models', 'x')), join('models', 'x', 'sd_turbo.safetensors'));
  const dir = tmp();
  try {
    const expected = join(dir, 'sd_xl_base_1.0.safetensors');
    assert.throws(
      () => checkCheckpointPresent('SDXL-base-1.0', dir),
      (e: unknown) => {
        assert.ok(e instanceof MissingCheckpointError, String(e));
        assert.equal(e.path, expected);
        assert.equal(e.preset, 'SDXL-base-1.0');
        assert.equal(e.url, 'https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0');
        for (const s of [expected, 'SDXL-base-1.0', 'https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0', '31e35c80fc4829d1', '--ckpt', '--model-dir']) {
          assert.ok(e.message.includes(s), `names ${s}: ${e.message}`);
        }
        return true;
      },
    );
    // a relative path is shown with its absolute form too
    if (!existsSync(resolve('checkpoints', 'v2-1_512-ema-pruned.safetensors'))) {
      assert.throws(() => checkCheckpointPresent('SD-2.1'), (e: unknown) => e instanceof MissingCheckpointError && e.message.includes(resolve('checkpoints', 'v2-1_512-ema-pruned.safetensors')));
    }
    // gated 0.9 weights say so
    assert.throws(() => checkCheckpointPresent('SDXL-refiner-0.9', dir), /stable-diffusion-xl-refiner-0\.9.*gated/);
    writeFileSync(expected, '');
    assert.equal(checkCheckpointPresent('sdxl-base-1.0', dir), expected);
    mkdirSync(join(dir, 'sd_turbo.safetensors'));
    assert.throws(() => checkCheckpointPresent('SD-Turbo', dir), (e: unknown) => e instanceof MissingCheckpointError && /is not a file/.test(e.message));
    // --ckpt: an explicit file wins over the model folder
    assert.equal(checkCheckpointPresent('SD-2.1', 'nowhere', { ckpt: expected }), expected);
    assert.throws(() => checkCheckpointPresent('SD-2.1', dir, { ckpt: join(dir, 'other.safetensors') }), (e: unknown) => e instanceof MissingCheckpointError && e.path === join(dir, 'other.safetensors'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('vocabularies: found in the model folder (or clip/, tokenizer/), either layout serves; none is a MissingVocabError', () => {
  const dir = tmp();
  try {
    const need = (p: Preset): string => p.vocab.map((v) => v.kind).join(',');
    assert.equal(need(resolvePreset('SDXL-base-1.0')), 'hf_clip,open_clip');
    assert.equal(need(resolvePreset('SDXL-refiner-1.0')), 'open_clip');
    assert.equal(need(resolvePreset('SD-Turbo')), 'open_clip');
    assert.throws(
      () => findPresetVocab('SDXL-base-1.0', dir),
      (e: unknown) => e instanceof MissingVocabError && e.missing.length === 2 && e.message.includes(dir) && e.message.includes('bpe_simple_vocab_16e6.txt.gz') && e.message.includes('vocab.json'),
    );
    // the open_clip gz alone serves both encoders (same BPE, same ids)
    writeFileSync(join(dir, 'bpe_simple_vocab_16e6.txt.gz'), '');
    let found = findPresetVocab('SDXL-base-1.0', dir);
    assert.deepEqual(found.map((f) => [f.requirement.kind, f.dir, f.files]), [
      ['hf_clip', dir, [join(dir, 'bpe_simple_vocab_16e6.txt.gz')]],
      ['open_clip', dir, [join(dir, 'bpe_simple_vocab_16e6.txt.gz')]],
    ]);
    // the reference's own layout is preferred where both are there
    mkdirSync(join(dir, 'tokenizer'));
    writeFileSync(join(dir, 'tokenizer', 'vocab.json'), '{}');
    writeFileSync(join(dir, 'tokenizer', 'merges.txt'), '');
    found = findPresetVocab('SDXL-base-1.0', dir);
    assert.deepEqual(found[0]!.files, [join(dir, 'tokenizer', 'vocab.json'), join(dir, 'tokenizer', 'merges.txt')]);
    assert.deepEqual(found[1]!.files, [join(dir, 'bpe_simple_vocab_16e6.txt.gz')]);
    rmSync(join(dir, 'bpe_simple_vocab_16e6.txt.gz'));
    found = findPresetVocab('SD-2.1', dir);
    assert.equal(found[0]!.dir, join(dir, 'tokenizer'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
