// Training benchmark: one optimisation step (forward, loss, backward, AdamW) of the toy
// class-conditional config (the reference's configs/example_training/toy/mnist_cond.yaml) at
// batch 64 and 512 on 28x28 images, one process per case (peak RSS per case). Compare with the
// PyTorch anchors mnist_train_b64 / mnist_train_b512 in ../shared/perf-anchors.md.
//   npm run bench -- train                 both cases
//   SGM_BENCH_CASES=b64 npm run bench -- train
//   SGM_BENCH_STEPS=6 (timed steps after the first), SGM_BENCH_THREADS=2
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '../src/tensor/index.js';
import { instantiateFromConfig, loadConfigs } from '../src/config/index.js';
import '../src/registry.js';
import type { DiffusionEngine } from '../src/models/diffusion.js';
import { AdamW } from '../src/training/optim.js';
import { DiffusionTrainer, trainableParameters } from '../src/training/trainer.js';
import { median, runInChild, vmHwmMiB } from './util.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(repoRoot, 'bench', 'out');
const THREADS = Number(process.env.SGM_BENCH_THREADS ?? 2);
const STEPS = Number(process.env.SGM_BENCH_STEPS ?? 6);
const CASES: Record<string, number> = { b64: 64, b512: 512 };

/** The project's copy of the toy config, else the reference's. */
function configPath(): string {
  const own = join(repoRoot, 'configs', 'example_training', 'toy', 'mnist_cond.yaml');
  if (existsSync(own)) return own;
  const ref = process.env.SGM_REFERENCE_CONFIGS ? resolve(process.env.SGM_REFERENCE_CONFIGS) : resolve(repoRoot, '..', 'shared', 'reference-configs');
  return join(ref, 'example_training', 'toy', 'mnist_cond.yaml');
}

interface Result {
  case: string;
  batch: number;
  params: number;
  firstStepS: number;
  stepS: number;
  imagesPerS: number;
  peakRssMiB: number | null;
  steps: number[];
}

async function runCase(name: string): Promise<void> {
  const B = CASES[name]!;
  T.setRuntimeDefaults({ threads: THREADS });
  const cfg = loadConfigs([configPath()]) as Record<string, any>;
  T.manualSeed(0);
  const engine = instantiateFromConfig<DiffusionEngine>(cfg.model, { path: 'model' });
  const params = trainableParameters(engine);
  const trainer = new DiffusionTrainer(engine, new AdamW(params, { lr: Number(cfg.model.base_learning_rate ?? 1e-4) }), { generator: new T.Generator().manualSeed(1) });
  // A synthetic batch in [-1, 1] (the data layer is measured separately; loading overlaps compute).
  const img = new Float32Array(B * 28 * 28).map((_, i) => Math.sin(i * 0.013) * 0.9);
  const cls = BigInt64Array.from({ length: B }, (_, i) => BigInt(i % 10));
  const batch = { jpg: { data: img, shape: [B, 1, 28, 28] }, cls: { data: cls, shape: [B] } };
  const times: number[] = [];
  for (let s = 0; s <= STEPS; s++) {
    const t0 = performance.now();
    const r = await trainer.step(batch);
    times.push((performance.now() - t0) / 1000);
    console.log(`  ${name} step ${s}: ${times[s]!.toFixed(3)} s, loss ${r.loss.toFixed(4)}`);
  }
  const stepS = median(times.slice(1));
  const res: Result = {
    case: name,
    batch: B,
    params: params.reduce((a, p) => a + p.size, 0),
    firstStepS: times[0]!,
    stepS,
    imagesPerS: B / stepS,
    peakRssMiB: vmHwmMiB(),
    steps: times,
  };
  writeFileSync(join(outDir, `train.${name}.json`), JSON.stringify(res, null, 1));
}

export async function run(): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  const wanted = process.env.SGM_BENCH_CASES ? process.env.SGM_BENCH_CASES.split(',').map((s) => s.trim()) : Object.keys(CASES);
  console.log(`training benchmark: ${configPath()}, ${THREADS} threads, ${STEPS} timed steps after the first`);
  const rows: Result[] = [];
  for (const name of wanted) {
    if (!CASES[name]) throw new Error(`unknown case ${name}; known: ${Object.keys(CASES).join(', ')}`);
    const r = runInChild(fileURLToPath(import.meta.url), [name], { cwd: repoRoot });
    const p = join(outDir, `train.${name}.json`);
    if (r.status === 0 && existsSync(p)) rows.push(JSON.parse(readFileSync(p, 'utf8')) as Result);
    else console.log(`${name}: failed (exit ${r.status})`);
  }
  console.log('\n| case | params | first step (compile) | step (median) | images/s | peak RSS |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.case} | ${(r.params / 1e6).toFixed(2)} M | ${r.firstStepS.toFixed(2)} s | ${r.stepS.toFixed(3)} s | ${r.imagesPerS.toFixed(1)} | ${r.peakRssMiB === null ? '?' : `${(r.peakRssMiB / 1024).toFixed(2)} GiB`} |`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url) && process.argv[2]) {
  await runCase(process.argv[2]);
}
