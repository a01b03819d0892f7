// Full-size networks with random weights: build from the reference config, write a random
// checkpoint (fp16 by default, as released), load it lazily, compile one forward, time it.
// Each case runs in its own process (peak RSS is per process):
//   npm run bench -- networks                    all cases, one child process each
//   node --import tsx bench/networks.ts CASE     one case in this process
// Cases: sd21_unet_512 (batch 2, latent 64), sdxl_unet_512 / sdxl_unet_1024 (batch 2, latent 64 / 128),
// vae_decode_512 (SDXL first stage, 64x64 latent -> 512x512).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '../src/tensor/index.js';
import * as nn from '../src/nn/index.js';
import { SafetensorsFile, SafetensorsWriter } from '../src/io/safetensors.js';
import { stateSourceFromSafetensors } from '../src/io/checkpoint.js';
import { instantiateFromConfig, loadConfigFile } from '../src/config/index.js';
import '../src/registry.js';
import { fmt, peakRssMiB, stats } from './util.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..');
const configsRoot = process.env.SGM_REFERENCE_CONFIGS ?? resolve(repoRoot, '..', 'shared', 'reference-configs');
const outDir = join(here, 'out');
const THREADS = Number(process.env.SGM_BENCH_THREADS ?? 2);

interface Case {
  config: string;
  part: 'network_config' | 'first_stage_config' | 'conditioner';
  /** The config node to build (default: model.params[part]). */
  select?: (cfg: Record<string, any>) => unknown;
  /** Input specs and how to call the module. */
  inputs: T.InputSpec[];
  call: (m: any, xs: T.Tensor[]) => T.Tensor | T.Tensor[];
  /** Reference on PyTorch 1.13 fp32, 2 threads (shared/perf-anchors.md), seconds. */
  anchor?: string;
}

const CASES: Record<string, Case> = {
  sd21_unet_512: {
    config: 'inference/sd_2_1.yaml',
    part: 'network_config',
    inputs: [{ shape: [2, 4, 64, 64], name: 'x' }, { shape: [2], name: 't' }, { shape: [2, 77, 1024], name: 'context' }],
    call: (m, [x, t, c]) => m.forward(x, t, c),
    anchor: 'sd21_unet_512px fp32: 13.34 s, 5.3 GB',
  },
  sdxl_unet_512: {
    config: 'inference/sd_xl_base.yaml',
    part: 'network_config',
    inputs: [{ shape: [2, 4, 64, 64], name: 'x' }, { shape: [2], name: 't' }, { shape: [2, 77, 2048], name: 'context' }, { shape: [2, 2816], name: 'y' }],
    call: (m, [x, t, c, y]) => m.forward(x, t, c, y),
    anchor: 'sdxl_unet_512px fp32: 23.75 s, 10.4 GB',
  },
  sdxl_unet_1024: {
    config: 'inference/sd_xl_base.yaml',
    part: 'network_config',
    inputs: [{ shape: [2, 4, 128, 128], name: 'x' }, { shape: [2], name: 't' }, { shape: [2, 77, 2048], name: 'context' }, { shape: [2, 2816], name: 'y' }],
    call: (m, [x, t, c, y]) => m.forward(x, t, c, y),
    anchor: 'sdxl_unet_1024px fp32: 113.62 s, 13.4 GB',
  },
  clip_bigG_text: {
    config: 'inference/sd_xl_base.yaml',
    part: 'conditioner',
    select: (cfg) => cfg.model.params.conditioner_config.params.emb_models[1],
    inputs: [{ shape: [1, 77], dtype: 'int64', name: 'tokens' }],
    call: (m, [tokens]) => m.forward(tokens),
    anchor: 'clip_bigG_text fp32: 2.45 s, 9.8 GB',
  },
  vae_decode_512: {
    config: 'inference/sd_xl_base.yaml',
    part: 'first_stage_config',
    inputs: [{ shape: [1, 4, 64, 64], name: 'z' }],
    call: (m, [z]) => m.decode(z),
    anchor: 'vae_decode_512px fp32: 17.40 s, 1.8 GB',
  },
};

/** Random weights with the fan-in scaling of PyTorch's default init, written as fp16 safetensors. */
function writeRandomCheckpoint(m: nn.Module, path: string, dtype: 'F16' | 'F32'): void {
  const state = [...m.stateDict()];
  const w = SafetensorsWriter.create(
    path,
    state.map(([name, v]) => ({ name, dtype, shape: v.shape })),
    { format: 'pt', note: 'random weights for benchmarking' },
  );
  let s = 12345;
  const chunk = 1 << 20;
  const buf = new Float32Array(chunk);
  for (const [name, v] of state) {
    const fanIn = v.ndim > 1 ? v.size / v.shape[0]! : 1;
    const isNormWeight = v.ndim === 1 && /norm/.test(name) && name.endsWith('weight');
    const bound = isNormWeight ? 0 : Math.sqrt(3 / fanIn) * (v.ndim > 1 ? 1 : 0.1);
    for (let off = 0; off < v.size; off += chunk) {
      const n = Math.min(chunk, v.size - off);
      const a = buf.subarray(0, n);
      for (let i = 0; i < n; i++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        a[i] = (isNormWeight ? 1 : 0) + bound * (2 * (s / 4294967296) - 1);
      }
      w.write(name, dtype === 'F16' ? T.f32ToF16(a) : a);
    }
  }
  w.commit();
}

async function runCase(name: string): Promise<void> {
  const c = CASES[name];
  if (!c) throw new Error(`unknown case ${name}; known: ${Object.keys(CASES).join(', ')}`);
  T.setRuntimeDefaults({ threads: THREADS });
  const dtype = (process.env.SGM_BENCH_WEIGHTS ?? 'F16') as 'F16' | 'F32';
  const cfg = loadConfigFile(join(configsRoot, c.config)) as Record<string, any>;
  const t0 = performance.now();
  const node = c.select ? c.select(cfg) : cfg.model.params[c.part];
  const m = nn.withInitMode('none', () => instantiateFromConfig<nn.Module>(node, { path: `model.params.${c.part}` }));
  m.eval();
  const tBuild = performance.now() - t0;
  const fp32Bytes = m.numParameters() * 4;
  mkdirSync(outDir, { recursive: true });
  const ckpt = join(outDir, `${c.config.replace(/[/.]/g, '_')}_${c.part}_${dtype}.safetensors`);
  if (!existsSync(ckpt)) {
    const tw = performance.now();
    writeRandomCheckpoint(m, ckpt, dtype);
    console.log(`  wrote ${ckpt} (${(statSync(ckpt).size / 2 ** 30).toFixed(2)} GiB) in ${fmt(performance.now() - tw)}`);
  }
  if (process.env.SGM_BENCH_PREPARE) return; // only write the random checkpoint
  const rssBefore = peakRssMiB();
  const tl = performance.now();
  const file = SafetensorsFile.open(ckpt);
  m.loadStateDict(stateSourceFromSafetensors(file), { where: ckpt });
  const tLoad = performance.now() - tl;
  const tc = performance.now();
  const f = await T.compile((...xs) => c.call(m, xs), c.inputs, { name });
  const tCompile = performance.now() - tc;
  const rssAfterCompile = peakRssMiB();
  const inputs = c.inputs.map((s, i): T.TypedArray => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (s.dtype === 'int64') {
      // A prompt-like row: start token, ids, end token at position 20, padding.
      return BigInt64Array.from({ length: n }, (_, j) => BigInt(j === 0 ? 49406 : j === 20 ? 49407 : j < 20 ? 1000 + j : 0));
    }
    const a = new Float32Array(n);
    let q = 99 + i;
    for (let j = 0; j < n; j++) {
      q = (Math.imul(q, 1664525) + 1013904223) >>> 0;
      a[j] = s.name === 't' ? 500 : (q / 4294967296) * 2 - 1;
    }
    return a;
  });
  const reps = Number(process.env.SGM_BENCH_REPS ?? 3);
  const runs: number[] = [];
  const first = performance.now();
  let out = await f(...inputs);
  const firstMs = performance.now() - first;
  for (let r = 0; r < reps; r++) {
    const s0 = performance.now();
    out = await f(...inputs);
    runs.push(performance.now() - s0);
  }
  const d = (await (Array.isArray(out) ? out[0]! : out).data()) as Float32Array;
  let finite = 0;
  for (let i = 0; i < d.length; i++) if (Number.isFinite(d[i]!)) finite++;
  const st = stats(runs);
  console.log(
    `${name}: forward median ${fmt(st.median)} (min ${fmt(st.min)}, ${reps} runs after a first run of ${fmt(firstMs)}); ` +
      `build ${fmt(tBuild)}, load (lazy) ${fmt(tLoad)}, compile (trace + emit + session) ${fmt(tCompile)} of which session ${fmt(f.createMs)}; ` +
      `peak RSS ${(peakRssMiB() / 1024).toFixed(2)} GiB (before load ${(rssBefore / 1024).toFixed(2)}, after compile ${(rssAfterCompile / 1024).toFixed(2)}); ` +
      `fp32 weight bytes ${(fp32Bytes / 2 ** 30).toFixed(2)} GiB; checkpoint ${dtype}; output finite ${finite}/${d.length}` +
      (c.anchor ? `; PyTorch anchor: ${c.anchor}` : ''),
  );
}

export async function run(): Promise<void> {
  const wanted = (process.env.SGM_BENCH_CASES ?? 'sd21_unet_512,vae_decode_512,sdxl_unet_512,clip_bigG_text').split(',');
  for (const name of wanted) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), name], { stdio: 'inherit', cwd: repoRoot });
    if (r.status !== 0) console.log(`${name}: failed (exit ${r.status})`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url) && process.argv[2]) {
  await runCase(process.argv[2]);
}
