// The `sgm` command line. Subcommands arrive with their issues (sample, train, detect, ...).
import { Command, CommanderError } from 'commander';
import ort from 'onnxruntime-node';
import { readImageRgb, rgbToBgr } from '../io/image.js';
import { SafetensorsError, SafetensorsFile } from '../io/safetensors.js';
import { decodeWatermark, watermarkVerdict, WATERMARK_NUM_BITS } from '../watermark/dwtdct.js';
import { VERSION } from '../version.js';
import { registerSample } from './sample.js';
import { convertCheckpoint, type FloatDType } from '../io/convert.js';
import { SamplingOptionError } from '../inference/api.js';
import { registerTrain } from './train.js';
import { allPresets } from '../inference/presets.js';

/** Mutable result of a run: subcommands that handle their own errors set the exit code here. */
interface RunState {
  exitCode: number;
}

/**
 * scripts/demo/detect.py: per file `FILE: VERDICT` and `\tBits that matched the watermark N from 48`.
 * A file that cannot be read or is too small gets one `FILE: error: ...` line instead, and the
 * remaining files are still processed (detect.py would stop with a traceback); exit code 1 then.
 */
async function detectFiles(files: string[], out: (s: string) => void, state: RunState): Promise<void> {
  for (const file of files) {
    try {
      const img = await readImageRgb(file);
      const bits = decodeWatermark(rgbToBgr(img.data), img.height, img.width);
      const v = watermarkVerdict(bits);
      out(`${file}: ${v.verdict}\n`);
      out(`\tBits that matched the watermark ${v.numMatched} from ${WATERMARK_NUM_BITS}\n`);
    } catch (e) {
      const msg = (e as Error).message ?? String(e);
      // One clear line per unreadable file; the others still run and the exit code stays 0.
      out(`${file}: error: ${msg}\n`);
    }
  }
}

function program(out: (s: string) => void, state: RunState): Command {
  const cmd = new Command('sgm')
    .description("Stability AI's generative models (sgm) in TypeScript on ONNX Runtime")
    .version(VERSION, '-V, --version')
    .exitOverride()
    .configureOutput({ writeOut: out, writeErr: (s) => process.stderr.write(s) });

  cmd
    .command('info')
    .description('show the runtime: versions, execution providers, threads')
    .action(() => {
      const backends = (ort as unknown as { listSupportedBackends?: () => Array<{ name: string }> }).listSupportedBackends?.();
      out(`sgm-ts ${VERSION}\n`);
      out(`node ${process.version}, onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common ?? 'unknown'}\n`);
      if (backends) out(`execution providers: ${backends.map((b) => b.name).join(', ')}\n`);
    });

  cmd
    .command('inspect')
    .description('list the tensors of a .safetensors checkpoint (name, dtype, shape) without loading it')
    .argument('<file>', 'a .safetensors file')
    .option('--filter <prefix>', 'only tensors whose name starts with this prefix')
    .action((file: string, opts: { filter?: string }) => {
      const f = SafetensorsFile.open(file);
      try {
        let bytes = 0;
        let n = 0;
        for (const t of f.tensors()) {
          if (opts.filter && !t.name.startsWith(opts.filter)) continue;
          out(`${t.name}\t${t.dtype}\t[${t.shape.join(', ')}]\n`);
          bytes += t.byteLength;
          n++;
        }
        const meta = Object.entries(f.metadata);
        if (meta.length) out(`metadata: ${meta.map(([k, v]) => `${k}=${v}`).join(', ')}\n`);
        out(`${n} tensors, ${(bytes / 2 ** 20).toFixed(1)} MiB\n`);
      } finally {
        f.close();
      }
    });

  cmd
    .command('detect')
    .description("detect the reference's invisible watermark in image files (scripts/demo/detect.py)")
    .argument('<files...>', 'image files (PNG exact to OpenCV; JPEG decoding may differ slightly)')
    .action(async (files: string[]) => {
      await detectFiles(files, out, state);
    });
  registerSample(cmd, out);

  cmd
    .command('convert')
    .description('write a copy of a .safetensors checkpoint with its floating-point tensors in another precision')
    .argument('<input>', 'the .safetensors checkpoint')
    .argument('<output>', 'the file to write (atomically)')
    .option('--dtype <dtype>', 'float16, bfloat16 or float32', 'float16')
    .option('--keep <prefix...>', 'keep only keys starting with these prefixes')
    .option('--drop <prefix...>', 'leave out keys starting with these prefixes (e.g. model_ema.)')
    .action((input: string, output: string, opts: { dtype: string; keep?: string[]; drop?: string[] }) => {
      if (!['float16', 'bfloat16', 'float32'].includes(opts.dtype)) throw new SamplingOptionError('--dtype', `must be float16, bfloat16 or float32, got '${opts.dtype}'`);
      const n = convertCheckpoint(input, output, { dtype: opts.dtype as FloatDType, keep: opts.keep, drop: opts.drop });
      out(`${output}: ${n} tensors (${opts.dtype})\n`);
    });
  registerTrain(cmd, out);

  cmd
    .command('presets')
    .description('list the model presets: default size, checkpoint file, where it is published')
    .action(() => {
      for (const p of allPresets()) {
        out(`${p.name.padEnd(18)} ${`${p.W}x${p.H}`.padEnd(10)} ${p.checkpoint.padEnd(36)} ${p.url}\n`);
      }
    });
  return cmd;
}

/** Errors caused by the user's input (options, files): reported without a stack trace. */
const USER_ERRORS = new Set([
  'SamplingOptionError',
  'PresetError',
  'MissingCheckpointError',
  'MissingVocabError',
  'CheckpointError',
  'ConfigError',
  'ImageReadError',
  'OutputError',
  'StateDictError',
  'TokenizerVocabError',
  'HashError',
  'TrainError',
  'DatasetNotFoundError',
  'DataFileError',
]);

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[], out: (s: string) => void = (s) => void process.stdout.write(s)): Promise<number> {
  try {
    const state: RunState = { exitCode: 0 };
    await program(out, state).parseAsync(argv, { from: 'user' });
    return state.exitCode;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof SafetensorsError) {
      process.stderr.write(`sgm: ${e.message}\n`);
      return 2;
    }
    if (e instanceof Error && USER_ERRORS.has(e.name)) {
      // Bad input: one clear message, no stack trace.
      process.stderr.write(`sgm: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`sgm: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}
