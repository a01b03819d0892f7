// The `sgm` command line. Subcommands arrive with their issues (sample, train, detect, ...).
import { Command, CommanderError } from 'commander';
import ort from 'onnxruntime-node';
import { SafetensorsError, SafetensorsFile } from '../io/safetensors.js';
import { VERSION } from '../version.js';

function program(out: (s: string) => void): Command {
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
  return cmd;
}

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[], out: (s: string) => void = (s) => void process.stdout.write(s)): Promise<number> {
  try {
    await program(out).parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof SafetensorsError) {
      process.stderr.write(`sgm: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`sgm: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}
