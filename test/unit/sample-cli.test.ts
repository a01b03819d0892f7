// `sgm sample` end to end on tiny engines whose checkpoints this test writes (random weights, the
// released single-file layout): PNG files with metadata, determinism by seed, img2img, the
// watermark, the latent round trip, and the errors that must come before any model loads.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { main } from '../../src/cli/main.js';
import { loadConfigs } from '../../src/config/index.js';
import '../../src/registry.js';
import { loadModelFromConfig, CheckpointError } from '../../src/models/load.js';
import { saveStateDict } from '../../src/io/checkpoint.js';
import { registerHFTextConfig, registerOpenCLIPModelConfig } from '../../src/modules/encoders/modules.js';
import { readImageRgb, rgbToBgr } from '../../src/io/image.js';
import { readPngText } from '../../src/io/png.js';
import { decodeWatermark, watermarkVerdict } from '../../src/watermark/dwtdct.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const data = join(repoRoot, 'test', 'data', 'pipeline');
const vocab = process.env.SGM_VOCAB_DIR ? resolve(process.env.SGM_VOCAB_DIR) : resolve(repoRoot, '..', 'shared', 'vocab');
const skip = existsSync(vocab) ? false : `the CLIP vocabulary is needed: ${vocab} is absent (set SGM_VOCAB_DIR)`;

const archs = JSON.parse(readFileSync(join(data, 'tiny_archs.json'), 'utf8'));
for (const [n, c] of Object.entries(archs.open_clip_model_configs)) registerOpenCLIPModelConfig(n, c as never);
for (const [n, c] of Object.entries(archs.hf_text_configs)) registerHFTextConfig(n, c as never);

const work = mkdtempSync(join(tmpdir(), 'sgm-sample-'));
test.after(() => rmSync(work, { recursive: true, force: true }));

/** Builds the engine with random weights and saves its state dict as the released files do (no denoiser.sigmas). */
function writeCheckpoint(config: string, path: string): void {
  const { engine } = loadModelFromConfig(loadConfigs([config]) as Record<string, unknown>, null, { verbose: false });
  const sd = engine.stateDict();
  sd.delete('denoiser.sigmas');
  saveStateDict(sd, path);
}

const sdxlCfg = join(data, 'tiny_sdxl.yaml');
const sd21Cfg = join(data, 'tiny_sd21.yaml');
const sdxlCkpt = join(work, 'tiny_sdxl.safetensors');
const sd21Ckpt = join(work, 'tiny_sd21.safetensors');

async function run(args: string[]): Promise<{ code: number; stdout: string[]; stderr: string }> {
  let text = '';
  const errWrite = process.stderr.write.bind(process.stderr);
  let stderr = '';
  process.stderr.write = ((s: string | Uint8Array) => {
    stderr += typeof s === 'string' ? s : Buffer.from(s).toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await main(args, (s) => void (text += s));
    return { code, stdout: text.split('\n').filter(Boolean), stderr };
  } finally {
    process.stderr.write = errWrite;
  }
}

const base = (out: string): string[] => ['sample', '--config', sdxlCfg, '--ckpt', sdxlCkpt, '--vocab', vocab, '--out', out, '--no-hash'];

test('sgm sample: txt2img on a tiny SDXL-like checkpoint writes PNGs with metadata; the seed decides the image', { skip }, async () => {
  writeCheckpoint(sdxlCfg, sdxlCkpt);
  const out = join(work, 'txt2img');
  const args = [...base(out), '--prompt', 'a red fox', '--negative-prompt', 'blurry', '--steps', '3', '--sampler', 'euler', '--scale', '5', '--seed', '7', '--discretization', 'EDMDiscretization', '--sigma-max', '10', '--s-churn', '0.5', '--width', '64', '--height', '32', '--n-samples', '2', '--grid'];
  const r1 = await run(args);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(r1.stdout.length, 3, 'two samples and a grid');
  const img = await readImageRgb(r1.stdout[0]!);
  assert.equal(img.width, 64);
  assert.equal(img.height, 32);
  const meta = await readPngText(r1.stdout[0]!);
  assert.equal(meta.prompt, 'a red fox');
  assert.equal(meta.negative_prompt, 'blurry');
  assert.equal(meta.seed, '7');
  assert.equal(meta.sampler, 'EulerEDMSampler');
  assert.equal(meta.steps, '3');
  assert.equal(meta.scale, '5');
  assert.equal(meta.discretization, 'EDMDiscretization');
  assert.equal(meta.guider, 'VanillaCFG');
  assert.equal(meta.width, '64');
  assert.equal(meta.height, '32');
  assert.equal(meta.model, sdxlCfg);
  assert.equal(meta.watermark, 'none', '64x32 is too small for the watermark: auto saves without it');
  assert.match(r1.stderr, /too small for the invisible watermark/);
  const grid = await sharp(r1.stdout[2]!).metadata();
  assert.deepEqual([grid.width, grid.height], [2 + 2 * (64 + 2), 2 + 32 + 2], 'grid: 2 columns, padding 2');

  const r2 = await run(args);
  assert.equal(r2.code, 0, r2.stderr);
  assert.notEqual(r2.stdout[0], r1.stdout[0], 'never overwrites');
  assert.deepEqual((await readImageRgb(r2.stdout[0]!)).data, img.data, 'same seed and settings: same image');
  const r3 = await run(args.map((a) => (a === '7' ? '8' : a)));
  assert.notDeepEqual((await readImageRgb(r3.stdout[0]!)).data, img.data, 'another seed: another image');
});

test('sgm sample: a 256x256 image carries the watermark by default, not with --no-watermark; hash in the metadata', { skip }, async () => {
  const out = join(work, 'wm');
  const args = ['sample', '--config', sdxlCfg, '--ckpt', sdxlCkpt, '--vocab', vocab, '--out', out, '--steps', '1', '--width', '256', '--height', '256'];
  const r = await run(args);
  assert.equal(r.code, 0, r.stderr);
  const img = await readImageRgb(r.stdout[0]!);
  const meta = await readPngText(r.stdout[0]!);
  assert.match(meta.watermark!, /dwtDct/);
  assert.match(meta.model_hash!, /^sha256:[0-9a-f]{64}$/);
  // The watermark's presence is checked on the saved pixels (decoding random images is not reliable
  // in general, so only the metadata and a difference to the unwatermarked run are asserted).
  const r2 = await run([...args, '--no-watermark']);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal((await readPngText(r2.stdout[0]!)).watermark, 'none');
  const plain = await readImageRgb(r2.stdout[0]!);
  assert.notDeepEqual(img.data, plain.data);
  const bits = decodeWatermark(rgbToBgr(img.data), 256, 256);
  const plainBits = decodeWatermark(rgbToBgr(plain.data), 256, 256);
  const ref = watermarkVerdict(bits).numMatched;
  assert.ok(ref > watermarkVerdict(plainBits).numMatched, 'the watermarked file matches more watermark bits');
});

let savedLatent = '';

test('sgm sample: img2img from an image file, a tiny SD 2.1-like model, latent save', { skip }, async () => {
  writeCheckpoint(sd21Cfg, sd21Ckpt);
  const init = join(work, 'init.png');
  const px = Buffer.alloc(70 * 66 * 3);
  for (let i = 0; i < px.length; i++) px[i] = (i * 37) % 251;
  await sharp(px, { raw: { width: 70, height: 66, channels: 3 } }).png().toFile(init);
  const out = join(work, 'img2img');
  const r = await run(['sample', '--config', sd21Cfg, '--ckpt', sd21Ckpt, '--vocab', vocab, '--out', out, '--no-hash', '--init-image', init, '--strength', '0.5', '--steps', '4', '--prompt', 'a cat', '--save-latent']);
  assert.equal(r.code, 0, r.stderr);
  const png = r.stdout.find((f) => f.endsWith('.png'))!;
  const img = await readImageRgb(png);
  assert.deepEqual([img.width, img.height], [64, 64], 'cut down to multiples of 64');
  assert.equal((await readPngText(png)).strength, '0.5');
  const latent = r.stdout.find((f) => f.endsWith('.safetensors'))!;
  const f = SafetensorsFile.open(latent);
  assert.deepEqual(f.info('samples_z').shape, [1, 4, 8, 8]);
  f.close();
  savedLatent = latent;
});

test('sgm sample: SDXL-like base + refiner in one run (the demo\'s finish-denoising flow), from configs', { skip }, async () => {
  const refCfg = join(data, 'tiny_refiner.yaml');
  const refCkpt = join(work, 'tiny_refiner.safetensors');
  writeCheckpoint(refCfg, refCkpt);
  const out = join(work, 'refined');
  const args = [...base(out), '--steps', '5', '--width', '64', '--height', '64', '--refiner-config', refCfg, '--refiner-ckpt', refCkpt, '--refiner-strength', '0.4'];
  const r = await run(args);
  assert.equal(r.code, 0, r.stderr);
  const meta = await readPngText(r.stdout[0]!);
  assert.equal(meta.model, `${sdxlCfg} + ${refCfg}`);
  assert.equal(meta.refiner_mode, 'finish');
  assert.equal(meta.refiner_strength, '0.4');
  const r2 = await run([...args, '--refiner-mode', 'img2img']);
  assert.equal(r2.code, 0, r2.stderr);
  assert.notDeepEqual((await readImageRgb(r2.stdout[0]!)).data, (await readImageRgb(r.stdout[0]!)).data, 'the two refiner modes differ');
  // A latent saved by an earlier run, refined on its own (the library's refiner on finished latents).
  assert.ok(savedLatent, 'the img2img test saved a latent');
  const r3 = await run(['sample', '--config', refCfg, '--ckpt', refCkpt, '--vocab', vocab, '--out', out, '--no-hash', '--latent', savedLatent, '--refiner-strength', '0.5', '--steps', '4', '--prompt', 'a cat']);
  assert.equal(r3.code, 0, r3.stderr);
  const m3 = await readPngText(r3.stdout[0]!);
  assert.equal(m3.mode, 'refine-latent');
  assert.deepEqual([(await readImageRgb(r3.stdout[0]!)).width, (await readImageRgb(r3.stdout[0]!)).height], [64, 64]);
});

test('sgm sample: bad options fail before any model loads, with a message naming the option', async () => {
  const out = join(work, 'errors');
  const cases: Array<[string[], RegExp]> = [
    [['--width', '60'], /--width: 60 is not a positive multiple of 8/],
    [['--width', '72'], /--width: 72 is not a multiple of 32: this model's UNet halves/],
    [['--sampler', 'eulr'], /--sampler: unknown sampler 'eulr'/],
    [['--steps', '0'], /--steps: must be an integer from 1/],
    [['--init-image', join(work, 'nope.png')], /cannot read image .*nope\.png/],
    [['--strength', '1.5'], /--strength: must be a number in \[0, 1\]/],
    [['--watermark', 'on', '--width', '64', '--height', '64'], /too small for the invisible watermark/],
    [['--device', 'gpu'], /--device: unknown device 'gpu'/],
    [['--guider', 'CFG'], /guider: unknown guider 'CFG'/],
    [['--eta', '-1'], /--eta: must be a number >= 0/],
    [['--init-image', join(data, 'tiny_archs.json'), '--strength', '0.2', '--steps', '4'], /cannot read image/],
    [['--refiner-config', sdxlCfg, '--refiner-ckpt', sdxlCkpt, '--refiner-strength', '0.2', '--steps', '4'], /--refiner-strength: strength 0.2 with 4 steps leaves no denoising step/],
  ];
  for (const [extra, re] of cases) {
    const r = await run([...base(out), ...extra]);
    assert.equal(r.code, 2, `${extra.join(' ')}: exit code`);
    assert.match(r.stderr, re, extra.join(' '));
    assert.doesNotMatch(r.stderr, /loading/, `${extra.join(' ')}: nothing loaded`);
  }
  assert.equal(existsSync(out), false, 'no output folder was made');

  const missing = await run(['sample', '--preset', 'SDXL-base-1.0', '--model-dir', join(work, 'none'), '--out', out]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /sd_xl_base_1\.0\.safetensors/);
  assert.match(missing.stderr, /huggingface\.co\/stabilityai\/stable-diffusion-xl-base-1\.0/);
  const unknown = await run(['sample', '--preset', 'SDXL-bsae-1.0']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /SDXL-base-1\.0/);
});

test('checkpoint errors: truncated file, misshaped and missing keys name the file and keys', { skip }, () => {
  const cfg = loadConfigs([sd21Cfg]) as Record<string, unknown>;
  const bad = join(work, 'truncated.safetensors');
  const bytes = readFileSync(sd21Ckpt);
  writeFileSync(bad, bytes.subarray(0, bytes.length - 1000));
  assert.throws(() => loadModelFromConfig(cfg, bad, { verbose: false }), /truncated\.safetensors/);
  // A checkpoint of another model: SDXL weights into the SD 2.1 config.
  assert.throws(
    () => loadModelFromConfig(cfg, sdxlCkpt, { verbose: false }),
    (e: unknown) => e instanceof CheckpointError && /wrong shape|not in the checkpoint/.test(e.message) && e.message.includes('tiny_sdxl.safetensors'),
  );
  assert.throws(() => loadModelFromConfig(cfg, join(work, 'model.ckpt'), { verbose: false }), /not found/);
  assert.ok(readdirSync(work).length > 0);
});

test("the README's main command: the bundled toy-fashion-mnist model samples a grid of the requested class", async () => {
  const out = join(work, 'toy');
  const r = await run(['sample', '--preset', 'toy-fashion-mnist', '--class', '7', '--n-samples', '16', '--grid', '--steps', '10', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.length, 17, '16 samples and the grid');
  const meta = await readPngText(r.stdout[0]!);
  assert.equal(meta.class, '7');
  assert.equal(meta.class_name, 'Sneaker');
  assert.equal(meta.model, 'toy-fashion-mnist');
  assert.match(meta.model_hash!, /^sha256:[0-9a-f]{64}$/);
  const img = await readImageRgb(r.stdout[0]!);
  assert.deepEqual([img.width, img.height], [28, 28]);
  const grid = await sharp(r.stdout[16]!).metadata();
  assert.deepEqual([grid.width, grid.height], [2 + 4 * 30, 2 + 4 * 30], '4x4 grid of 28x28 tiles, padding 2');
  // Not a blank or saturated image: a garment on a dark background.
  const mean = img.data.reduce((a, v) => a + v, 0) / img.data.length;
  assert.ok(mean > 10 && mean < 200, `mean pixel ${mean}`);
  const missing = await run(['sample', '--preset', 'toy-fashion-mnist', '--out', out]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /class-conditional: give --class N \(0 T-shirt\/top, 1 Trouser/);
});
