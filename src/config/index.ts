// config/: the reference's YAML configs, unchanged. Load (OmegaConf/PyYAML scalar rules), merge
// left to right, apply `key.path=value` overrides, resolve interpolations, instantiate targets.
import { applyOverrides, mergeConfigs } from './merge.js';
import { resolveInterpolations } from './interpolate.js';
import { loadConfigFile } from './yaml.js';
import type { ConfigMap } from './yaml.js';

export * from './errors.js';
export * from './yaml.js';
export * from './merge.js';
export * from './interpolate.js';
export * from './registry.js';
export * from './instantiate.js';
export * from './params.js';

export interface LoadConfigsOptions {
  /** `key.path=value` overrides applied after merging (main.py's unknown command-line args). */
  overrides?: readonly string[];
  /** Resolve interpolations (default true). */
  resolve?: boolean;
}

/**
 * main.py's config handling: load each file, merge them left to right, apply the overrides, and
 * resolve interpolations.
 */
export function loadConfigs(files: readonly string[], options: LoadConfigsOptions = {}): ConfigMap {
  const merged = mergeConfigs(...files.map((f) => loadConfigFile(f)));
  const withOverrides = applyOverrides(merged, options.overrides ?? []);
  return options.resolve === false ? withOverrides : resolveInterpolations(withOverrides);
}
