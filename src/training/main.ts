// The reference's main.py around DiffusionTrainer: configs merged left to right plus `key=value`
// overrides, a log directory `<logdir>/<now>_<name>/` with configs/, checkpoints/ and images/,
// the lightning section (trainer limits, gradient accumulation, ModelCheckpoint, ImageLogger,
// the metrics-over-trainsteps checkpoint), the learning-rate scaling, resuming from a log dir, and
// metrics (metrics.jsonl, metrics.csv, loss.png).
//
// Checkpoints are a PAIR of safetensors files: the weights (engine.stateDict(): the reference's key
// names, loadable by `sgm sample --config <project.yaml> --ckpt <file>`) and the training state
// (optimizer moments as tensors, everything else as JSON metadata). A save writes both under new
// names (each atomically: temporary file, fsync, rename), then atomically replaces
// `checkpoints/latest.json`, which names the pair, then points `last.safetensors` /
// `last.state.safetensors` at the new pair (hard links, replaced atomically), and only then deletes
// the previous pair. A crash at any moment leaves latest.json naming a complete pair.
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, appendFileSync, copyFileSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/index.js';
import { variableData } from '../tensor/compile.js';
import type { DType } from '../tensor/index.js';
import { ConfigError, cloneConfig, dumpConfig, instantiateFromConfig, isMapping, loadConfigs, type ConfigMap, type ConfigValue } from '../config/index.js';
import { withInitMode } from '../nn/init.js';
import type { StateEntry, StateSource } from '../nn/module.js';
import { DiffusionEngine } from '../models/diffusion.js';
import { SafetensorsFile, SafetensorsWriter, readSafetensors, type SafetensorsDType } from '../io/safetensors.js';
import { FROM_ST, TO_ST } from '../io/checkpoint.js';
import { tempPathFor, writeFileAtomic } from '../io/atomic.js';
import { makeGrid } from '../inference/output.js';
import { writePng } from '../io/png.js';
import { batchToTensors, type DataLoader } from '../data/loader.js';
import type { MapDataModule } from '../data/datamodule.js';
import type { Batch } from '../data/types.js';
import { createProgress, type ProgressStream } from '../io/progress.js';
import { DiffusionTrainer, trainableParameters, type HostBatch, type TrainerState } from './trainer.js';
import { LambdaLR, instantiateOptimizerFromConfig } from './optim.js';
import { writeLossPlot } from './plot.js';

/** A problem with the command line, the log dir or a checkpoint to resume from (no stack trace). */
export class TrainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainError';
  }
}

export interface TrainHooks {
  /**
   * Called (and awaited) in the middle of writing a checkpoint file, after half of its tensors
   * (phase 'weights' / 'state'), and after latest.json is replaced but before the old pair is
   * deleted (phase 'pointer'). For tests that kill the process while it saves.
   */
  duringSave?: (phase: 'weights' | 'state' | 'pointer', path: string) => Promise<void> | void;
  /** Called after every training batch. */
  onBatch?: (r: BatchRecord) => void;
}

export interface TrainOptions {
  /** Config files, merged left to right (main.py's --base). */
  base?: string[];
  /** `key.path=value` overrides applied after merging. */
  overrides?: string[];
  /** -n/--name: the log dir's name (instead of the config's). */
  name?: string;
  /** --no_date: no timestamp in the log dir's name. */
  noDate?: boolean;
  /** -r/--resume: a log dir, or a checkpoint file inside one. */
  resume?: string;
  /** -t/--train (default true): false sets up the log dir and stops. */
  train?: boolean;
  /** --no-test. */
  noTest?: boolean;
  /** -s/--seed (default 23, as main.py). */
  seed?: number;
  /** -f/--postfix: appended to the log dir's name. */
  postfix?: string;
  /** -l/--logdir (default 'logs'). */
  logdir?: string;
  /** --scale_lr: lr = accumulate_grad_batches * ngpu * batch_size * base_lr (default false, as main.py). */
  scaleLr?: boolean;
  /** --no_base_name: no config name in the log dir's name. */
  noBaseName?: boolean;
  /** --legacy_naming: the log dir is named after the first config's file name only. */
  legacyNaming?: boolean;
  /** --data-dir: data.params.data_dir. */
  dataDir?: string;
  /** --max-steps: lightning.trainer.max_steps. */
  maxSteps?: number;
  /** The timestamp of the run (default now, main.py's %Y-%m-%dT%H-%M-%S). */
  now?: string;
  /** Where messages go (default stdout). */
  log?: (s: string) => void;
  /** Where the progress line goes (default stderr). */
  progressStream?: ProgressStream;
  /** Stops training after the current batch (a checkpoint is written). */
  signal?: AbortSignal;
  /** Requests a checkpoint at the next batch boundary when its `requested` flag is set (SIGUSR1). */
  checkpointRequest?: { requested: boolean };
  hooks?: TrainHooks;
}

/** One training batch as recorded in metrics.jsonl / metrics.csv. */
export interface BatchRecord {
  /** Optimizer steps done after this batch (Lightning's global_step). */
  step: number;
  epoch: number;
  batch_idx: number;
  loss: number;
  lr: number;
  images_per_s: number;
  /** Seconds of training so far (all runs of this log dir together). */
  time: number;
}

export interface TrainResult {
  logdir: string;
  /** The merged project config (without the lightning section) as saved in configs/. */
  projectConfig: string;
  globalStep: number;
  epoch: number;
  /** The records of the batches this run trained. */
  records: BatchRecord[];
  /** The weights file of the latest checkpoint (null when none was written). */
  lastCheckpoint: string | null;
  /** Whether the run stopped because of the signal. */
  interrupted: boolean;
}

const STATE_META_KEY = 'sgm_train_state';
const STATE_FORMAT = 1;

// ---------------------------------------------------------------------------------------------
// log dir and configs
// ---------------------------------------------------------------------------------------------

/** main.py's `now`: %Y-%m-%dT%H-%M-%S in local time. */
export function nowString(d = new Date()): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}-${p(d.getMinutes())}-${p(d.getSeconds())}`;
}

/** main.py's run name from the first config: the folders after `configs/` and the file name, joined by '-'. */
export function configRunName(path: string, legacy = false): string {
  const file = basename(path);
  const stem = file.includes('.') ? file.slice(0, file.lastIndexOf('.')) : file;
  if (legacy) return stem;
  const parts = dirname(path).split(sep).filter((s) => s !== '' && s !== '.');
  const i = parts.lastIndexOf('configs');
  // main.py asserts that the config lives under a `configs` folder; elsewhere the file name serves.
  if (i < 0) return stem;
  return [...parts.slice(i + 1), stem].join('-');
}

/** A checkpoint pair to resume from. */
interface ResumePoint {
  weights: string;
  state: string;
}

interface RunLayout {
  logdir: string;
  nowname: string;
  base: string[];
  resume: ResumePoint | null;
}

function latestPointerPath(ckptdir: string): string {
  return join(ckptdir, 'latest.json');
}

interface LatestPointer {
  weights: string;
  state: string;
  global_step: number;
  epoch: number;
  batches: number;
}

function readLatest(ckptdir: string): LatestPointer | null {
  const p = latestPointerPath(ckptdir);
  if (!existsSync(p)) return null;
  let v: LatestPointer;
  try {
    v = JSON.parse(readFileSync(p, 'utf8')) as LatestPointer;
  } catch (e) {
    throw new TrainError(`${p}: not a checkpoint pointer (${(e as Error).message})`);
  }
  if (typeof v.weights !== 'string' || typeof v.state !== 'string') throw new TrainError(`${p}: names no weights/state files`);
  return v;
}

function resumePointOf(ckptdir: string, file: string | null): ResumePoint {
  if (file !== null) {
    const b = basename(file);
    if (!['last.safetensors', 'last.state.safetensors', 'latest.json'].includes(b)) {
      if (!b.endsWith('.safetensors')) throw new TrainError(`--resume ${file}: not a .safetensors checkpoint`);
      const state = b.endsWith('.state.safetensors') ? file : file.replace(/\.safetensors$/, '.state.safetensors');
      const weights = state.replace(/\.state\.safetensors$/, '.safetensors');
      if (!existsSync(state) || !existsSync(weights)) {
        throw new TrainError(`--resume ${file}: no training state beside it (${basename(state)}); resume from the log dir (its latest checkpoint) instead`);
      }
      return { weights, state };
    }
  }
  const latest = readLatest(ckptdir);
  if (!latest) throw new TrainError(`cannot resume: ${ckptdir} has no complete checkpoint (no latest.json)`);
  const r = { weights: join(ckptdir, latest.weights), state: join(ckptdir, latest.state) };
  for (const f of [r.weights, r.state]) if (!existsSync(f)) throw new TrainError(`cannot resume: ${latestPointerPath(ckptdir)} names ${f}, which does not exist`);
  return r;
}

/** main.py's log dir logic (new run or resume). */
export function resolveLayout(o: TrainOptions, now: string): RunLayout {
  const base = [...(o.base ?? [])];
  if (o.name && o.resume) {
    throw new TrainError('-n/--name and -r/--resume cannot be specified both. To resume training in a new log folder, start a new run.');
  }
  if (o.resume) {
    if (!existsSync(o.resume)) throw new TrainError(`Cannot find ${o.resume}`);
    let logdir: string;
    let file: string | null = null;
    if (statSync(o.resume).isFile()) {
      file = o.resume;
      logdir = dirname(dirname(resolve(o.resume)));
    } else {
      logdir = o.resume.replace(/[\\/]+$/, '');
    }
    const cfgdir = join(logdir, 'configs');
    if (!existsSync(cfgdir)) throw new TrainError(`cannot resume: ${logdir} has no configs/ folder (is it a log dir of sgm train?)`);
    const saved = readdirSync(cfgdir).filter((f) => f.endsWith('.yaml')).sort().map((f) => join(cfgdir, f));
    return { logdir, nowname: basename(logdir), base: [...saved, ...base], resume: resumePointOf(join(logdir, 'checkpoints'), file) };
  }
  let name: string;
  if (o.name) name = `_${o.name}`;
  else if (base.length > 0) name = o.noBaseName ? '' : `_${configRunName(base[0]!, o.legacyNaming)}`;
  else name = '';
  let nowname = o.noDate ? name + (o.postfix ?? '') : now + name + (o.postfix ?? '');
  if (o.noDate && nowname.startsWith('_')) nowname = nowname.slice(1);
  if (nowname === '') throw new TrainError('the run has no name: give -n/--name or a config (with --no_date and --no_base_name, nothing is left)');
  return { logdir: join(o.logdir ?? 'logs', nowname), nowname, base, resume: null };
}

function getPath(cfg: ConfigValue | undefined, path: string[]): ConfigValue | undefined {
  let v: ConfigValue | undefined = cfg;
  for (const k of path) {
    if (!isMapping(v)) return undefined;
    v = v[k];
  }
  return v;
}

function asMap(v: ConfigValue | undefined): ConfigMap {
  return isMapping(v) ? v : {};
}

function num(v: ConfigValue | undefined, path: string, dflt: number): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(`${path}: expected a number, got ${JSON.stringify(v)}`, { path });
  return v;
}

function int(v: ConfigValue | undefined, path: string, dflt: number): number {
  const n = num(v, path, dflt);
  if (!Number.isInteger(n)) throw new ConfigError(`${path}: expected an integer, got ${n}`, { path });
  return n;
}

function bool(v: ConfigValue | undefined, dflt: boolean): boolean {
  if (v === undefined || v === null) return dflt;
  return v === true || v === 'true' || v === 'True';
}

// ---------------------------------------------------------------------------------------------
// the image logger (main.ImageLogger)
// ---------------------------------------------------------------------------------------------

interface ImageLoggerSettings {
  batch_frequency: number;
  max_images: number;
  clamp: boolean;
  rescale: boolean;
  disabled: boolean;
  log_on_batch_idx: boolean;
  log_first_step: boolean;
  log_before_first_step: boolean;
  log_images_kwargs: ConfigMap;
  log_steps: number[];
}

function imageLoggerSettings(cfg: ConfigMap | null): ImageLoggerSettings | null {
  if (cfg === null) return null;
  const target = cfg['target'];
  if (target !== undefined && target !== 'main.ImageLogger') return null;
  const p = asMap(cfg['params']);
  const where = 'lightning.callbacks.image_logger.params';
  const freq = int(p['batch_frequency'], `${where}.batch_frequency`, 1000);
  if (freq < 1) throw new ConfigError(`${where}.batch_frequency: must be a positive integer, got ${freq}`, { path: `${where}.batch_frequency` });
  const increase = bool(p['increase_log_steps'], true);
  const logSteps: number[] = [];
  if (increase) for (let n = 0; n <= Math.floor(Math.log2(freq)); n++) logSteps.push(2 ** n);
  else logSteps.push(freq);
  return {
    batch_frequency: freq,
    max_images: int(p['max_images'], `${where}.max_images`, 4),
    clamp: bool(p['clamp'], true),
    rescale: bool(p['rescale'], true),
    disabled: bool(p['disabled'], false),
    log_on_batch_idx: bool(p['log_on_batch_idx'], false),
    log_first_step: bool(p['log_first_step'], false),
    log_before_first_step: bool(p['log_before_first_step'], false),
    log_images_kwargs: asMap(p['log_images_kwargs']),
    log_steps: logSteps,
  };
}

/** ImageLogger.check_frequency (pops the next increasing log step whenever it logs). */
function checkFrequency(s: ImageLoggerSettings, idx: number): boolean {
  if ((idx % s.batch_frequency === 0 || s.log_steps.includes(idx)) && (idx > 0 || s.log_first_step)) {
    s.log_steps.shift();
    return true;
  }
  return false;
}

/** Images of (N, C, H, W) in [-1, 1] as torchvision's make_grid(nrow=4) + the rescale to uint8. */
function gridOf(x: Float32Array, shape: readonly number[], maxImages: number, clamp: boolean, rescale: boolean): { data: Uint8Array; width: number; height: number } {
  const [n0, c, h, w] = shape as [number, number, number, number];
  const n = Math.min(n0, maxImages);
  const toByte = (v: number): number => {
    if (clamp) v = Math.min(1, Math.max(-1, v));
    const u = rescale ? ((v + 1) / 2) * 255 : v * 255;
    return Math.min(255, Math.max(0, Math.trunc(u)));
  };
  const images: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const img = new Uint8Array(h * w * 3);
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        for (let ch = 0; ch < 3; ch++) {
          const src = c === 1 ? 0 : Math.min(ch, c - 1);
          img[(y * w + xx) * 3 + ch] = toByte(x[((i * c + src) * h + y) * w + xx]!);
        }
      }
    }
    images.push(img);
  }
  return makeGrid(images, h, w, { nrow: 4, padding: 2, padValue: toByte(0) });
}

// ---------------------------------------------------------------------------------------------
// checkpoint files
// ---------------------------------------------------------------------------------------------

// (dtype names: FROM_ST / TO_ST of io/checkpoint.ts)

interface PlannedTensor {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  data: () => T.TypedArray;
}

/** Writes tensors to a safetensors file atomically; `mid` runs after half of them are written. */
async function writeTensorsAtomic(path: string, tensors: PlannedTensor[], metadata: Record<string, string>, mid?: () => Promise<void> | void): Promise<void> {
  const w = SafetensorsWriter.create(path, tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })), metadata);
  try {
    const half = Math.floor(tensors.length / 2);
    for (let i = 0; i < tensors.length; i++) {
      if (i === half && mid) await mid();
      w.write(tensors[i]!.name, tensors[i]!.data());
    }
    if (tensors.length === 0 && mid) await mid();
    w.commit();
  } catch (e) {
    w.abort();
    throw e;
  }
}

/** Gives `target`'s inode the name `name` atomically (a hard link renamed into place; a copy where links fail). */
function linkAtomic(target: string, name: string): void {
  const temp = tempPathFor(name);
  try {
    linkSync(target, temp);
  } catch {
    copyFileSync(target, temp);
  }
  try {
    renameSync(temp, name);
  } catch (e) {
    try {
      unlinkSync(temp);
    } catch {
      // gone already
    }
    throw e;
  }
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** A state source over tensors held in memory (host storage: no file stays referenced). */
function hostSource(tensors: Map<string, { dtype: SafetensorsDType; shape: number[]; data: unknown }>, where: string): StateSource {
  return {
    keys: () => tensors.keys(),
    get(key: string): StateEntry | undefined {
      const t = tensors.get(key);
      if (!t) return undefined;
      const dtype = FROM_ST[t.dtype];
      if (!dtype) throw new TrainError(`${where}: tensor ${key} has dtype ${t.dtype}, which cannot be loaded`);
      return { dtype, shape: t.shape, storage: { kind: 'host', dtype, data: t.data as T.TypedArray } };
    },
  };
}

/** What the state file's metadata holds besides the optimizer's tensors. */
interface SavedState {
  format: number;
  weights: string;
  optimizer_meta: string;
  scheduler: TrainerState['scheduler'];
  global_step: number;
  pending: number;
  accum_count: number;
  generator: string;
  dataloader: ReturnType<DataLoader['state']>;
  batches: number;
  metrics_rows: number;
  elapsed_s: number;
  log_steps: number[] | null;
  last_logged_step: number;
}

// ---------------------------------------------------------------------------------------------
// the run
// ---------------------------------------------------------------------------------------------

function fmt(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** Formats a Lightning checkpoint filename template such as `{epoch:06}-{step:09}`. */
export function checkpointName(template: string, epoch: number, step: number): string {
  return template.replace(/\{(epoch|step)(?::0?(\d+))?\}/g, (_, k: string, w?: string) => `${k}=${w ? fmt(k === 'epoch' ? epoch : step, Number(w)) : k === 'epoch' ? epoch : step}`);
}

const KNOWN_TRAINER_KEYS = new Set(['devices', 'accelerator', 'benchmark', 'num_sanity_val_steps', 'accumulate_grad_batches', 'max_epochs', 'max_steps', 'strategy', 'precision', 'num_nodes', 'val_check_interval', 'check_val_every_n_epoch', 'limit_val_batches', 'log_every_n_steps']);

export async function train(o: TrainOptions = {}): Promise<TrainResult> {
  const log = o.log ?? ((s: string) => void process.stdout.write(s));
  const now = o.now ?? nowString();
  const layout = resolveLayout(o, now);
  const { logdir } = layout;
  if (layout.resume) log(`${'#'.repeat(60)}\nResuming from checkpoint "${layout.resume.weights}"\n${'#'.repeat(60)}\n`);
  else log(`LOGDIR: ${logdir}\n`);
  if (layout.base.length === 0) throw new TrainError('no config: give one or more config files (--base FILE ... or positional)');
  for (const f of layout.base) if (!existsSync(f)) throw new TrainError(`config file not found: ${f}`);
  const ckptdir = join(logdir, 'checkpoints');
  const cfgdir = join(logdir, 'configs');
  const seed = o.seed ?? 23;
  if (!Number.isSafeInteger(seed)) throw new TrainError(`--seed must be an integer, got ${seed}`);

  // configs: merge, overrides, then our conveniences (--max-steps, --data-dir)
  const overrides = [...(o.overrides ?? [])];
  let config = loadConfigs(layout.base, { overrides });
  config = cloneConfig(config);
  if (o.maxSteps !== undefined) {
    const l = (config['lightning'] = asMap(config['lightning']));
    const t = (l['trainer'] = asMap(l['trainer']));
    t['max_steps'] = o.maxSteps;
  }
  if (o.dataDir !== undefined) {
    const d = asMap(config['data']);
    if (!isMapping(config['data'])) throw new ConfigError('--data-dir: the config has no data section', { path: 'data' });
    const p = (d['params'] = asMap(d['params']));
    p['data_dir'] = o.dataDir;
  }
  const lightning = asMap(config['lightning']);
  delete config['lightning'];
  const trainerCfg = (lightning['trainer'] = asMap(lightning['trainer']));
  for (const k of Object.keys(trainerCfg)) if (!KNOWN_TRAINER_KEYS.has(k)) log(`note: lightning.trainer.${k} has no effect here\n`);
  const accumulate = int(trainerCfg['accumulate_grad_batches'], 'lightning.trainer.accumulate_grad_batches', 1);
  trainerCfg['accumulate_grad_batches'] = accumulate;
  const maxSteps = int(trainerCfg['max_steps'], 'lightning.trainer.max_steps', -1);
  const maxEpochsCfg = trainerCfg['max_epochs'];
  let maxEpochs = maxEpochsCfg === undefined || maxEpochsCfg === null ? (maxSteps === -1 ? 1000 : Infinity) : int(maxEpochsCfg, 'lightning.trainer.max_epochs', 1000);
  if (maxEpochs === -1) maxEpochs = Infinity;

  // model (torch-style random init after seed_everything; a resumed run loads its weights instead)
  if (!isMapping(config['model'])) throw new ConfigError('the config has no model section', { path: 'model' });
  T.manualSeed(seed);
  const build = (): unknown => instantiateFromConfig(config['model'], { path: 'model' });
  const engine = layout.resume ? withInitMode('lazy', build) : build();
  if (!(engine instanceof DiffusionEngine)) throw new ConfigError(`model.target must be sgm.models.diffusion.DiffusionEngine for training, got ${String(getPath(config, ['model', 'target']))}`, { path: 'model.target' });
  if (!engine.sampler || !engine.loss_fn) throw new ConfigError('Sampler and loss function need to be set for training (model.params.sampler_config and loss_fn_config).', { path: 'model.params' });

  // data
  if (!isMapping(config['data'])) throw new ConfigError('the config has no data section', { path: 'data' });
  const data = instantiateFromConfig<MapDataModule>(config['data'], { path: 'data' });
  if (!data || typeof (data as MapDataModule).setup !== 'function') throw new ConfigError('data.target must be a data module (sgm.data.mnist.MNISTLoader, sgm.data.cifar10.CIFAR10Loader)', { path: 'data.target' });
  await data.setup();
  log('#### Data #####\n');
  log(`train, ${data.trainDataset.constructor.name}, ${data.trainDataset.length}\n`);
  log(`test, ${data.testDataset.constructor.name}, ${data.testDataset.length}\n`);
  const dataSeed = getPath(config, ['data', 'params', 'seed']);
  const loader = data.trainDataloader(new T.Generator().manualSeed(typeof dataSeed === 'number' ? dataSeed : seed));

  // learning rate
  const bs = data.batchSize;
  const baseLr = num(getPath(config, ['model', 'base_learning_rate']), 'model.base_learning_rate', NaN);
  if (!Number.isFinite(baseLr)) throw new ConfigError('model.base_learning_rate: the config must set the base learning rate', { path: 'model.base_learning_rate' });
  const ngpu = 1;
  log(`accumulate_grad_batches = ${accumulate}\n`);
  let lr: number;
  if (o.scaleLr) {
    lr = accumulate * ngpu * bs * baseLr;
    log(`Setting learning rate to ${lr.toExponential(2)} = ${accumulate} (accumulate_grad_batches) * ${ngpu} (num_gpus) * ${bs} (batchsize) * ${baseLr.toExponential(2)} (base_lr)\n`);
  } else {
    lr = baseLr;
    log('++++ NOT USING LR SCALING ++++\n');
    log(`Setting learning rate to ${lr.toExponential(2)}\n`);
  }
  engine.learning_rate = lr;

  // optimizer, schedule, trainer (the draws continue the seeded stream after the model's init)
  const optimizer = instantiateOptimizerFromConfig(trainableParameters(engine), lr, engine.optimizer_config, { path: 'model.params.optimizer_config' });
  let scheduler: LambdaLR | null = null;
  if (engine.scheduler_config) {
    const sched = instantiateFromConfig<{ schedule(n: number): number }>(engine.scheduler_config, { path: 'model.params.scheduler_config' });
    log('Setting up LambdaLR scheduler...\n');
    scheduler = new LambdaLR(optimizer, (n) => sched.schedule(n));
  }
  const generator = new T.Generator();
  generator.setState(T.defaultGenerator.getState());
  const trainer = new DiffusionTrainer(engine, optimizer, { generator, accumulateGradBatches: accumulate, scheduler });

  // callbacks
  const callbacks = asMap(lightning['callbacks']);
  const imageLogger = imageLoggerSettings(
    isMapping(callbacks['image_logger']) ? callbacks['image_logger'] : { target: 'main.ImageLogger', params: { batch_frequency: 1000, max_images: 4, clamp: true } },
  );
  for (const [k, v] of Object.entries(callbacks)) {
    if (k === 'image_logger' || k === 'metrics_over_trainsteps_checkpoint') continue;
    log(`note: callback ${k} (${String(getPath(v, ['target']))}) is not supported here and is ignored\n`);
  }
  const mc = asMap(getPath(lightning, ['modelcheckpoint', 'params']));
  const everyN = int(mc['every_n_train_steps'], 'lightning.modelcheckpoint.params.every_n_train_steps', 0);
  const ckptTemplate = typeof mc['filename'] === 'string' ? (mc['filename'] as string) : '{epoch:06}-{step:09}';
  const saveTopK = int(mc['save_top_k'], 'lightning.modelcheckpoint.params.save_top_k', 1);
  const motCfg = isMapping(callbacks['metrics_over_trainsteps_checkpoint']) ? asMap(callbacks['metrics_over_trainsteps_checkpoint']) : null;
  const motEvery = motCfg ? int(getPath(motCfg, ['params', 'every_n_train_steps']), 'lightning.callbacks.metrics_over_trainsteps_checkpoint.params.every_n_train_steps', 10000) : 0;
  if (motCfg) log('Caution: Saving checkpoints every n train steps without deleting. This might require some free space.\n');

  // SetupCallback: directories and configs
  mkdirSync(ckptdir, { recursive: true });
  mkdirSync(cfgdir, { recursive: true });
  if (motCfg) mkdirSync(join(ckptdir, 'trainstep_checkpoints'), { recursive: true });
  const projectYaml = dumpConfig(config);
  const projectPath = join(cfgdir, `${now}-project.yaml`);
  await writeFileAtomic(projectPath, Buffer.from(projectYaml));
  await writeFileAtomic(join(cfgdir, `${now}-lightning.yaml`), Buffer.from(dumpConfig({ lightning })));
  log(`Project config\n${projectYaml}`);

  // metrics files
  const jsonlPath = join(logdir, 'metrics.jsonl');
  const csvPath = join(logdir, 'metrics.csv');
  const CSV_HEADER = 'step,epoch,batch_idx,loss,lr,images_per_s,time\n';
  const history: BatchRecord[] = [];
  let batches = 0;
  let elapsedBefore = 0;
  let lastLoggedStep = -1;
  let previousPair: LatestPointer | null = readLatest(ckptdir);

  // resume: weights, optimizer/scheduler/counters/generator, the data order, metrics up to the checkpoint
  if (layout.resume) {
    const { weights, state } = layout.resume;
    const wt = readSafetensors(weights);
    engine.loadStateDict(hostSource(wt as never, weights), { strict: true, where: weights });
    const sf = SafetensorsFile.open(state);
    let saved: SavedState;
    try {
      const meta = sf.metadata[STATE_META_KEY];
      if (!meta) throw new TrainError(`${state}: not a training state file (no ${STATE_META_KEY} metadata)`);
      saved = JSON.parse(meta) as SavedState;
      if (saved.format !== STATE_FORMAT) throw new TrainError(`${state}: training state format ${saved.format}, this version reads ${STATE_FORMAT}`);
    } finally {
      sf.close();
    }
    const st = readSafetensors(state);
    const optTensors = new Map<string, { dtype: string; data: unknown }>();
    for (const [k, v] of st) if (k.startsWith('optimizer.')) optTensors.set(k.slice('optimizer.'.length), { dtype: v.dtype, data: v.data });
    const accum: Float32Array[] | null = saved.accum_count > 0 ? Array.from({ length: saved.accum_count }, (_, i) => Float32Array.from(st.get(`accum.${i}`)!.data as Float32Array)) : null;
    trainer.loadState({
      optimizer: { tensors: optTensors, meta: saved.optimizer_meta },
      scheduler: saved.scheduler,
      globalStep: saved.global_step,
      pending: saved.pending,
      accum,
      generator: saved.generator,
    });
    loader.setState(saved.dataloader);
    batches = saved.batches;
    elapsedBefore = saved.elapsed_s;
    lastLoggedStep = saved.last_logged_step;
    if (imageLogger && saved.log_steps) imageLogger.log_steps = saved.log_steps;
    // metrics written after the checkpoint (a crash) are dropped: the resumed run repeats them
    const rows = existsSync(jsonlPath) ? readFileSync(jsonlPath, 'utf8').split('\n').filter(Boolean).slice(0, saved.metrics_rows) : [];
    for (const r of rows) history.push(JSON.parse(r) as BatchRecord);
    await writeFileAtomic(jsonlPath, Buffer.from(rows.map((r) => `${r}\n`).join('')));
    await writeFileAtomic(csvPath, Buffer.from(CSV_HEADER + history.map(csvRow).join('')));
    // leftovers of an interrupted save: temporary files, pairs no pointer names
    const keep = new Set([basename(weights), basename(state), ...(previousPair ? [previousPair.weights, previousPair.state] : [])]);
    for (const f of readdirSync(ckptdir)) {
      if ((f.startsWith('.') && f.endsWith('.tmp')) || (/^pair-\d+/.test(f) && !keep.has(f))) unlinkQuiet(join(ckptdir, f));
    }
    log(`Restored training state: global_step ${saved.global_step}, epoch ${saved.dataloader.epoch}, batch ${saved.dataloader.indexInEpoch}\n`);
  } else {
    await writeFileAtomic(jsonlPath, Buffer.alloc(0));
    await writeFileAtomic(csvPath, Buffer.from(CSV_HEADER));
  }

  const result: TrainResult = { logdir, projectConfig: projectPath, globalStep: trainer.globalStep, epoch: loader.epoch, records: [], lastCheckpoint: previousPair ? join(ckptdir, previousPair.weights) : null, interrupted: false };
  if (o.train === false) {
    log('-t/--train is false: the log dir is set up, nothing trained\n');
    return result;
  }

  let savedAtBatches = layout.resume ? batches : -1;
  const runStart = performance.now();
  const elapsed = (): number => elapsedBefore + (performance.now() - runStart) / 1000;

  let saving = false;
  /** Lightning's current_epoch: the epoch of the batch just trained (the loader may already be past it). */
  let curEpoch = loader.epoch;
  const saveCheckpoint = async (why: string): Promise<void> => {
    if (savedAtBatches === batches) return;
    saving = true;
    const gs = trainer.globalStep;
    const epoch = curEpoch;
    const stem = `pair-${fmt(batches, 9)}`;
    const weightsName = `${stem}.safetensors`;
    const stateName = `${stem}.state.safetensors`;
    const weightsPath = join(ckptdir, weightsName);
    const statePath = join(ckptdir, stateName);
    const sd = engine.stateDict();
    const meta = { global_step: String(gs), epoch: String(epoch), format: 'sgm-ts DiffusionEngine weights (engine.stateDict())' };
    await writeTensorsAtomic(
      weightsPath,
      [...sd.entries()].map(([name, v]) => ({ name, dtype: TO_ST[v.storage.dtype], shape: [...v.shape], data: () => variableData(v) })),
      meta,
      o.hooks?.duringSave ? () => o.hooks!.duringSave!('weights', weightsPath) : undefined,
    );
    const ts = trainer.state();
    const stateTensors: PlannedTensor[] = [];
    for (const [k, t] of ts.optimizer.tensors) {
      const s = t as unknown as { dtype: string; shape: number[]; data: Float32Array };
      stateTensors.push({ name: `optimizer.${k}`, dtype: 'F32', shape: [...s.shape], data: () => s.data });
    }
    (ts.accum ?? []).forEach((a, i) => stateTensors.push({ name: `accum.${i}`, dtype: 'F32', shape: [a.length], data: () => a }));
    const saved: SavedState = {
      format: STATE_FORMAT,
      weights: weightsName,
      optimizer_meta: ts.optimizer.meta,
      scheduler: ts.scheduler,
      global_step: ts.globalStep,
      pending: ts.pending,
      accum_count: ts.accum?.length ?? 0,
      generator: ts.generator,
      dataloader: loader.state(),
      batches,
      metrics_rows: history.length,
      elapsed_s: elapsed(),
      log_steps: imageLogger ? [...imageLogger.log_steps] : null,
      last_logged_step: lastLoggedStep,
    };
    await writeTensorsAtomic(statePath, stateTensors, { [STATE_META_KEY]: JSON.stringify(saved) }, o.hooks?.duringSave ? () => o.hooks!.duringSave!('state', statePath) : undefined);
    const pointer: LatestPointer = { weights: weightsName, state: stateName, global_step: gs, epoch, batches };
    await writeFileAtomic(latestPointerPath(ckptdir), Buffer.from(`${JSON.stringify(pointer, null, 2)}\n`));
    if (o.hooks?.duringSave) await o.hooks.duringSave('pointer', latestPointerPath(ckptdir));
    linkAtomic(weightsPath, join(ckptdir, 'last.safetensors'));
    linkAtomic(statePath, join(ckptdir, 'last.state.safetensors'));
    if (previousPair && previousPair.weights !== weightsName) {
      unlinkQuiet(join(ckptdir, previousPair.weights));
      unlinkQuiet(join(ckptdir, previousPair.state));
    }
    previousPair = pointer;
    savedAtBatches = batches;
    saving = false;
    result.lastCheckpoint = weightsPath;
    log(`\nsaved checkpoint (${why}): global_step ${gs}, epoch ${epoch} -> ${join(ckptdir, 'last.safetensors')}\n`);
    if (history.length > 0) await writeLossPlot(join(logdir, 'loss.png'), history.map((_, i) => i + 1), history.map((r) => r.loss));
  };

  /** The numbered checkpoints (weights only: hard links of the pair's weights file). */
  const numberedCheckpoints = (stepped: boolean): void => {
    const gs = trainer.globalStep;
    if (!stepped || !result.lastCheckpoint) return;
    if (everyN > 0 && gs % everyN === 0) {
      const name = join(ckptdir, `${checkpointName(ckptTemplate, curEpoch, gs)}.safetensors`);
      if (saveTopK === 1) for (const f of readdirSync(ckptdir)) if (f.startsWith('epoch=') && f.endsWith('.safetensors') && join(ckptdir, f) !== name) unlinkQuiet(join(ckptdir, f));
      linkAtomic(result.lastCheckpoint, name);
    }
    if (motEvery > 0 && gs % motEvery === 0) {
      const tmpl = typeof getPath(motCfg!, ['params', 'filename']) === 'string' ? (getPath(motCfg!, ['params', 'filename']) as string) : '{epoch:06}-{step:09}';
      linkAtomic(result.lastCheckpoint, join(ckptdir, 'trainstep_checkpoints', `${checkpointName(tmpl, curEpoch, gs)}.safetensors`));
    }
  };

  const logImages = async (batch: Batch, batchIdx: number, epoch: number): Promise<void> => {
    if (!imageLogger) return;
    const kw = imageLogger.log_images_kwargs;
    if (imageLogger.max_images <= 0) return;
    engine.eval();
    try {
      const tensors = batchToTensors(batch);
      const gen = new T.Generator().manualSeed(seed + trainer.globalStep);
      const ucg = Array.isArray(kw['ucg_keys']) ? (kw['ucg_keys'] as string[]) : null;
      const logged = await engine.log_images(tensors as Record<string, Tensor>, { N: typeof kw['N'] === 'number' ? kw['N'] : 8, sample: bool(kw['sample'], true), ucg_keys: ucg, generator: gen });
      const root = join(logdir, 'images', 'train');
      mkdirSync(root, { recursive: true });
      const suffix = `gs-${fmt(trainer.globalStep, 6)}_e-${fmt(epoch, 6)}_b-${fmt(batchIdx, 6)}`;
      for (const k of ['inputs', 'reconstructions', 'samples'] as const) {
        const t = logged[k];
        if (!t) continue;
        const g = gridOf((await t.data()) as Float32Array, t.shape, imageLogger.max_images, imageLogger.clamp, imageLogger.rescale);
        await writePng(join(root, `${k}_${suffix}.png`), g.data, g.width, g.height);
      }
      for (const [k, lines] of Object.entries(logged.conditionings)) {
        await writeFileAtomic(join(root, `${k}_${suffix}.txt`), Buffer.from(lines.slice(0, imageLogger.max_images).map((l) => `${l}\n`).join('')));
      }
    } finally {
      engine.train();
    }
  };

  const batchesPerEpoch = loader.length;
  const totalSteps = maxSteps > 0 ? maxSteps : Number.isFinite(maxEpochs) ? Math.ceil((maxEpochs * batchesPerEpoch) / accumulate) : undefined;
  const startStep = trainer.globalStep;
  const progress = createProgress({ label: 'training', total: totalSteps !== undefined ? Math.max(0, totalSteps - startStep) : undefined, unit: 'steps', stream: o.progressStream });
  const done = (): boolean => (maxSteps >= 0 && trainer.globalStep >= maxSteps) || loader.epoch >= maxEpochs;
  try {
    if (!done()) {
      for await (const { batch, epoch, indexInEpoch } of loader.batches(maxEpochs)) {
        if (imageLogger && imageLogger.log_before_first_step && trainer.globalStep === 0 && !imageLogger.disabled) {
          log('ImageLogger: logging before training\n');
          await logImages(batch, indexInEpoch, epoch);
        }
        curEpoch = epoch;
        const t0 = performance.now();
        const r = await trainer.step(batch as unknown as HostBatch);
        const dt = (performance.now() - t0) / 1000;
        batches++;
        const nImages = (batch[engine.input_key] as { shape: number[] }).shape[0]!;
        const rec: BatchRecord = { step: r.globalStep, epoch, batch_idx: indexInEpoch, loss: r.loss, lr: r.lr, images_per_s: dt > 0 ? nImages / dt : 0, time: elapsed() };
        history.push(rec);
        result.records.push(rec);
        appendFileSync(jsonlPath, `${JSON.stringify(rec)}\n`);
        appendFileSync(csvPath, csvRow(rec));
        o.hooks?.onBatch?.(rec);
        progress.update(r.globalStep - startStep, `loss ${r.loss.toPrecision(4)} lr ${r.lr.toExponential(2)} epoch ${epoch}`);
        // ImageLogger.on_train_batch_end (once per global step)
        if (imageLogger && !imageLogger.disabled && (r.globalStep > 0 || imageLogger.log_first_step) && r.globalStep !== lastLoggedStep) {
          const idx = imageLogger.log_on_batch_idx ? indexInEpoch : r.globalStep;
          if (checkFrequency(imageLogger, idx)) {
            lastLoggedStep = r.globalStep;
            await logImages(batch, indexInEpoch, epoch);
          }
        }
        // ModelCheckpoint(every_n_train_steps) and the metrics-over-trainsteps checkpoint
        const due = r.optimizerStepped && ((everyN > 0 && r.globalStep % everyN === 0) || (motEvery > 0 && r.globalStep % motEvery === 0));
        if (due) {
          await saveCheckpoint(`every ${everyN || motEvery} steps`);
          numberedCheckpoints(true);
        } else if (o.checkpointRequest?.requested) {
          o.checkpointRequest.requested = false;
          log('Summoning checkpoint.\n');
          await saveCheckpoint('requested');
        }
        if (o.signal?.aborted) {
          result.interrupted = true;
          break;
        }
        if (done()) break;
      }
    }
    await saveCheckpoint(result.interrupted ? 'interrupted' : 'end of training');
    progress.done(`global_step ${trainer.globalStep}`);
  } catch (e) {
    progress.fail((e as Error).message);
    // main.py's melk(): keep what was trained when training fails (not when saving failed)
    if (batches > 0 && savedAtBatches !== batches && !saving) {
      log('Summoning checkpoint.\n');
      try {
        await saveCheckpoint('after an error');
      } catch {
        // the original error matters more
      }
    }
    throw e;
  }
  if (history.length > 0) await writeLossPlot(join(logdir, 'loss.png'), history.map((_, i) => i + 1), history.map((r) => r.loss));
  result.globalStep = trainer.globalStep;
  result.epoch = loader.epoch;
  if (!o.noTest && !result.interrupted) log('note: the DiffusionEngine defines no test_step (as in the reference), so there is nothing to test; --no-test skips this note\n');
  return result;
}

function csvRow(r: BatchRecord): string {
  return `${r.step},${r.epoch},${r.batch_idx},${r.loss},${r.lr},${r.images_per_s},${r.time}\n`;
}
