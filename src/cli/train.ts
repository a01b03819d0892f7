// `sgm train`: the reference's main.py (training from configs, log dirs, resuming) on this port's
// trainer. Options follow main.py's names; `key.path=value` arguments override the merged config.
import type { Command } from 'commander';
import { train, TrainError, type TrainOptions } from '../training/main.js';

export interface TrainCliOptions {
  base?: string[];
  name?: string;
  no_date?: string | boolean;
  resume?: string;
  train?: string | boolean;
  test?: boolean;
  seed?: string;
  postfix?: string;
  logdir: string;
  scale_lr?: string | boolean;
  no_base_name?: string | boolean;
  legacy_naming?: string | boolean;
  dataDir?: string;
  maxSteps?: string;
}

/** main.py's str2bool for options that take an optional value (`--no_date`, `--scale_lr true`). */
export function str2bool(v: string | boolean | undefined, option: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v === 'boolean') return v;
  const s = v.toLowerCase();
  if (['yes', 'true', 't', 'y', '1'].includes(s)) return true;
  if (['no', 'false', 'f', 'n', '0'].includes(s)) return false;
  throw new TrainError(`${option}: Boolean value expected, got '${v}' (write the option after the config files, or give it a value: ${option} true)`);
}

function intOpt(v: string | undefined, option: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n)) throw new TrainError(`${option} must be an integer, got '${v}'`);
  return n;
}

/** Splits the positional arguments into config files and `key=value` overrides. */
export function splitPositional(args: readonly string[]): { configs: string[]; overrides: string[] } {
  const configs: string[] = [];
  const overrides: string[] = [];
  for (const a of args) {
    if (/^[A-Za-z_][\w.\-[\]]*=/.test(a)) overrides.push(a);
    else if (a.startsWith('--')) throw new TrainError(`unknown option ${a} (config overrides are written key.path=value, without dashes)`);
    else configs.push(a);
  }
  return { configs, overrides };
}

export function trainOptionsFromCli(positional: string[], o: TrainCliOptions): TrainOptions {
  const { configs, overrides } = splitPositional([...(o.base ?? []), ...positional]);
  const maxSteps = intOpt(o.maxSteps, '--max-steps');
  if (maxSteps !== undefined && maxSteps < -1) throw new TrainError(`--max-steps must be -1 (no limit) or more, got ${maxSteps}`);
  return {
    base: configs,
    overrides,
    name: o.name,
    noDate: str2bool(o.no_date, '--no_date', false),
    resume: o.resume,
    train: str2bool(o.train, '--train', true),
    noTest: o.test === false,
    seed: intOpt(o.seed, '--seed') ?? 23,
    postfix: o.postfix ?? '',
    logdir: o.logdir,
    scaleLr: str2bool(o.scale_lr, '--scale_lr', false),
    noBaseName: str2bool(o.no_base_name, '--no_base_name', false),
    legacyNaming: str2bool(o.legacy_naming, '--legacy_naming', false),
    dataDir: o.dataDir,
    maxSteps,
  };
}

export function registerTrain(cmd: Command, out: (s: string) => void): void {
  cmd
    .command('train')
    .description("train a DiffusionEngine from configs (the reference's main.py): log dir with checkpoints, configs, images, metrics")
    .argument('[configs-and-overrides...]', 'config files (merged left to right) and key.path=value overrides')
    .option('-b, --base <configs...>', 'config files, merged left to right')
    .option('-n, --name <name>', 'name of the log dir (instead of the config name)')
    .option('--no_date [bool]', 'no timestamp in the log dir name')
    .option('-r, --resume <logdir-or-ckpt>', 'resume from a log dir (its latest checkpoint) or a checkpoint file in one')
    .option('-t, --train [bool]', 'train (default true; false only sets up the log dir)')
    .option('--no-test', 'skip the test phase (the DiffusionEngine has no test_step, so there is none)')
    .option('-s, --seed <n>', 'seed of the initial weights, the draws and the data order', '23')
    .option('-f, --postfix <text>', 'appended to the log dir name', '')
    .option('-l, --logdir <dir>', 'folder of the log dirs', 'logs')
    .option('--scale_lr [bool]', 'lr = accumulate_grad_batches * ngpu * batch_size * base_learning_rate (default false, as main.py)')
    .option('--no_base_name [bool]', 'leave the config name out of the log dir name')
    .option('--legacy_naming [bool]', 'name the log dir after the config file name only')
    .option('--data-dir <dir>', 'the dataset folder (sets data.params.data_dir)')
    .option('--max-steps <n>', 'stop after n optimizer steps (sets lightning.trainer.max_steps)')
    .allowUnknownOption(false)
    .action(async (positional: string[], opts: TrainCliOptions) => {
      const options = trainOptionsFromCli(positional, opts);
      const ac = new AbortController();
      const request = { requested: false };
      const onInt = (): void => {
        if (ac.signal.aborted) process.exit(130);
        process.stderr.write('\nsgm train: interrupted; saving a checkpoint after this batch (Ctrl-C again to quit now)\n');
        ac.abort();
      };
      const onUsr1 = (): void => void (request.requested = true);
      process.on('SIGINT', onInt);
      process.on('SIGUSR1', onUsr1);
      try {
        const r = await train({ ...options, log: out, signal: ac.signal, checkpointRequest: request });
        out(`${r.logdir}\n`);
      } finally {
        process.off('SIGINT', onInt);
        process.off('SIGUSR1', onUsr1);
      }
    });
}
