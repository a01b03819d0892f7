// Loading an engine from a config + ONE single-file checkpoint (sgm.util.load_model_from_config),
// with the key layouts of the released files (io/checkpoint_layouts.ts) and a report that tells
// apart what matters (missing weights, misshaped tensors) from what the released files carry
// but sgm never uses (schedule buffers, logit_scale, position_ids, ...).
import { existsSync } from 'node:fs';
import type { StateEntry, StateSource } from '../nn/module.js';
import type * as nn from '../nn/index.js';
import { SafetensorsFile } from '../io/safetensors.js';
import { stateSourceFromSafetensors } from '../io/checkpoint.js';
import { COMPUTED_BUFFERS, LAYOUT_KEY_MAPS, classifyUnusedKey, type KeyMapRule } from '../io/checkpoint_layouts.js';
import { fmtShape } from '../tensor/index.js';
import type { Shape } from '../tensor/index.js';
import { withInitMode } from '../nn/init.js';
import { ConfigError, instantiateFromConfig } from '../config/index.js';
import { DiffusionEngine } from './diffusion.js';

export interface CheckpointLoadReport {
  /** The checkpoint file. */
  path: string;
  /** Tensors loaded. */
  loaded: number;
  /** Layout rules applied (checkpoint prefix -> engine prefix). */
  mapped: KeyMapRule[];
  /** Engine keys the file does not have (weights left at their initial values). */
  missing: string[];
  /** Buffers the engine computes itself and the file did not carry (denoiser.sigmas). */
  computed: string[];
  /** File keys the engine has no place for. */
  unexpected: string[];
  /** File keys known to be unused by sgm (with the reason). */
  ignored: Array<{ key: string; why: string }>;
  /** Shape mismatches (always an error). */
  mismatched: Array<{ key: string; expected: Shape; found: Shape; reason?: string }>;
  /** Storage dtypes of the file's tensors, with counts. */
  dtypes: Record<string, number>;
}

export class CheckpointError extends Error {
  constructor(
    message: string,
    readonly report?: CheckpointLoadReport,
  ) {
    super(message);
    this.name = 'CheckpointError';
  }
}

export interface LoadCheckpointOptions {
  /**
   * Load even when engine weights are missing from the file (the reference's strict=False; the
   * missing weights keep their initial values). Default false: missing weights are an error.
   */
  allowMissing?: boolean;
  /** Extra key rules applied before the built-in layout table. */
  keyMap?: Record<string, string>;
}

function listKeys(keys: string[], max = 12): string {
  return keys.length > max ? `${keys.slice(0, max).join(', ')}, ... (${keys.length} in all)` : keys.join(', ');
}

/** Groups keys by their first two/three components, for readable messages about thousands of keys. */
export function summarizeKeys(keys: string[]): string {
  const groups = new Map<string, number>();
  for (const k of keys) {
    const parts = k.split('.');
    const head = parts.slice(0, parts[0] === 'conditioner' ? 3 : 2).join('.');
    groups.set(head, (groups.get(head) ?? 0) + 1);
  }
  return [...groups.entries()].map(([h, n]) => `${h}.* (${n})`).join(', ');
}

/**
 * A state source over the file under engine names: each file key is renamed by the first matching
 * rule whose target exists in the engine (`cond_stage_model.model.` -> `conditioner.embedders.0.model.`).
 */
function mappedSource(file: SafetensorsFile, engineKeys: Set<string>, rules: KeyMapRule[]): { source: StateSource; applied: KeyMapRule[]; fileKeyOf: Map<string, string> } {
  const base = stateSourceFromSafetensors(file);
  const fileKeyOf = new Map<string, string>();
  const applied = new Set<KeyMapRule>();
  for (const k of file.keys()) {
    let name = k;
    if (!engineKeys.has(k)) {
      for (const r of rules) {
        if (k.startsWith(r.from)) {
          const cand = r.to + k.slice(r.from.length);
          if (engineKeys.has(cand)) {
            name = cand;
            applied.add(r);
            break;
          }
        }
      }
    }
    if (!fileKeyOf.has(name)) fileKeyOf.set(name, k);
  }
  const source: StateSource = {
    keys: () => fileKeyOf.keys(),
    get: (key: string): StateEntry | undefined => {
      const fk = fileKeyOf.get(key);
      return fk === undefined ? undefined : base.get(fk);
    },
  };
  return { source, applied: [...applied], fileKeyOf };
}

/**
 * Points the engine's parameters at the checkpoint's tensors (no copy: ORT reads the file when a
 * session is made). float16 / bfloat16 / float32 files all load (computation is float32).
 * Misshaped tensors are always an error; missing weights are an error unless `allowMissing`.
 */
export function loadEngineCheckpoint(engine: nn.Module, path: string, opts: LoadCheckpointOptions = {}): CheckpointLoadReport {
  if (!existsSync(path)) throw new CheckpointError(`checkpoint not found: ${path}`);
  if (!path.endsWith('.safetensors')) {
    throw new CheckpointError(`${path}: only .safetensors checkpoints can be loaded (pickled .ckpt/.pt files can run code when read); convert it to safetensors first`);
  }
  const file = SafetensorsFile.open(path);
  const own = engine.stateDict();
  const engineKeys = new Set(own.keys());
  const rules: KeyMapRule[] = [...Object.entries(opts.keyMap ?? {}).map(([from, to]) => ({ from, to, why: 'user key map' })), ...LAYOUT_KEY_MAPS];
  const { source, applied, fileKeyOf } = mappedSource(file, engineKeys, rules);
  const r = engine.loadStateDict(source, { strict: false, where: path });
  const computed = r.missing.filter((k) => COMPUTED_BUFFERS.has(k.split('.').slice(-1)[0]!) && own.get(k)?.rawStorage.kind !== 'empty');
  const missing = r.missing.filter((k) => !computed.includes(k));
  const ignored: CheckpointLoadReport['ignored'] = [];
  const unexpected: string[] = [];
  for (const k of r.unexpected) {
    const why = classifyUnusedKey(fileKeyOf.get(k) ?? k, engineKeys);
    if (why) ignored.push({ key: fileKeyOf.get(k) ?? k, why });
    else unexpected.push(fileKeyOf.get(k) ?? k);
  }
  const dtypes: Record<string, number> = {};
  for (const t of file.tensors()) dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
  const report: CheckpointLoadReport = { path, loaded: r.loaded, mapped: applied, missing, computed, unexpected, ignored, mismatched: r.mismatched, dtypes };
  if (report.mismatched.length > 0) {
    throw new CheckpointError(
      `${path}: ${report.mismatched.length} tensor(s) have the wrong shape for this config: ${listKeys(report.mismatched.map((m) => `${m.key} expected ${fmtShape(m.expected)} found ${fmtShape(m.found)}${m.reason ? ` (${m.reason})` : ''}`), 6)}. ` +
        'The checkpoint belongs to another model: check --config / --preset.',
      report,
    );
  }
  if (report.missing.length > 0 && !opts.allowMissing) {
    throw new CheckpointError(
      `${path}: ${report.missing.length} weight(s) the config needs are not in the checkpoint: ${summarizeKeys(report.missing)} (first: ${listKeys(report.missing, 5)}). ` +
        'The checkpoint does not match the config (check --config / --preset), or pass allowMissing to keep initial values.',
      report,
    );
  }
  return report;
}

/** Prints the reference's one-line summary plus the lists that need attention (stderr). */
export function printLoadReport(path: string, r: CheckpointLoadReport, write: (s: string) => void = (s) => process.stderr.write(s)): void {
  write(`Restored from ${path} with ${r.missing.length} missing and ${r.unexpected.length} unexpected keys (${r.loaded} tensors loaded)\n`);
  if (r.mapped.length) write(`  key layout: ${r.mapped.map((m) => `${m.from}* -> ${m.to}*`).join(', ')}\n`);
  if (r.missing.length) write(`  Missing Keys: ${summarizeKeys(r.missing)}\n`);
  if (r.unexpected.length) write(`  Unexpected Keys: ${listKeys(r.unexpected)}\n`);
}

export interface LoadModelOptions extends LoadCheckpointOptions {
  /** Where the config came from (for messages). */
  configPath?: string;
  /** Print the load report (stderr), as the reference does. Default true. */
  verbose?: boolean;
}

/**
 * sgm.util.load_model_from_config: instantiate `config.model` (parameters are created lazily, so
 * nothing is drawn for weights the checkpoint provides), then load the checkpoint; eval mode.
 * `ckpt` null builds the engine with its initial (random) weights.
 */
export function loadModelFromConfig(config: Record<string, unknown>, ckpt: string | null, opts: LoadModelOptions = {}): { engine: DiffusionEngine; report: CheckpointLoadReport | null } {
  const modelCfg = config['model'];
  if (modelCfg === undefined || modelCfg === null || typeof modelCfg !== 'object') {
    throw new ConfigError(`${opts.configPath ?? 'config'}: has no 'model' section (expected model: {target: sgm.models.diffusion.DiffusionEngine, params: ...})`, { path: 'model' });
  }
  const engine = withInitMode('lazy', () => instantiateFromConfig<DiffusionEngine>(modelCfg, { path: 'model' }));
  if (!(engine instanceof DiffusionEngine)) {
    throw new ConfigError(`${opts.configPath ?? 'config'}: model.target must be sgm.models.diffusion.DiffusionEngine for sampling, got ${(modelCfg as Record<string, unknown>)['target']}`, { path: 'model.target' });
  }
  let report: CheckpointLoadReport | null = null;
  if (ckpt !== null) {
    report = loadEngineCheckpoint(engine, ckpt, opts);
    if (opts.verbose ?? true) printLoadReport(ckpt, report);
  }
  engine.eval();
  return { engine, report };
}
