// instantiateFromConfig: the reference's sgm.util.instantiate_from_config, with the checks Python
// does when it calls `Class(**params)` made before the call and reported by config path.
//
//   - `__is_first_stage__` and `__is_unconditional__` give null, as in sgm/util.py;
//   - otherwise the config is a mapping with `target`; other keys (`is_trainable`, `input_key`,
//     `ucg_rate` in `emb_models` entries) are left to whoever reads the config;
//   - `params` defaults to {}; nested `*_config` params stay plain config data: the class
//     instantiates them itself through `ctx.instantiate`.
import { ConfigError, NotImplementedTargetError, closestMatch, showPath } from './errors.js';
import { registry as defaultRegistry } from './registry.js';
import type { InstantiateContext, ParamSpec, ParamType, Registry, TargetDef } from './registry.js';
import { MISSING, cloneConfig, isMapping, joinPath, typeName } from './yaml.js';
import type { ConfigValue } from './yaml.js';

export interface InstantiateOptions {
  registry?: Registry;
  /** Config path of `config`, for messages (`model`, `model.params.denoiser_config`). */
  path?: string;
}

const SPECIAL = new Set(['__is_first_stage__', '__is_unconditional__']);

function typesOf(spec: ParamSpec): ParamType[] {
  return Array.isArray(spec.type) ? spec.type : [spec.type];
}

function matchesType(type: ParamType, v: unknown): boolean {
  switch (type) {
    case 'number':
      return typeof v === 'number';
    case 'int':
      return typeof v === 'number' && Number.isInteger(v);
    case 'string':
      return typeof v === 'string';
    case 'bool':
      return typeof v === 'boolean';
    case 'list':
      return Array.isArray(v);
    case 'dict':
      return isMapping(v);
    case 'config':
      return (isMapping(v) && typeof v['target'] === 'string') || (typeof v === 'string' && SPECIAL.has(v));
    case 'any':
      return true;
  }
}

function acceptsNull(spec: ParamSpec): boolean {
  return spec.nullable === true || spec.default === null || typesOf(spec).includes('any');
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (isMapping(v)) return typeof v['target'] === 'string' ? `{target: ${v['target']}, ...}` : '{...}';
  if (Array.isArray(v)) return `[${v.length} item${v.length === 1 ? '' : 's'}]`;
  return String(v);
}

function copyValue(v: unknown): unknown {
  return isMapping(v) || Array.isArray(v) ? cloneConfig(v as ConfigValue) : v;
}

/**
 * Checks params against a target's ParamSpecs and fills in defaults; returns the params to pass
 * to `create`. `paramsPath` is the config path of the params mapping (`model.params`).
 */
export function validateParams(def: TargetDef, params: Record<string, unknown>, paramsPath: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  const at = (name: string): string => joinPath(paramsPath, name);
  for (const [name, value] of Object.entries(params)) {
    if (value === MISSING) {
      problems.push(`${at(name)}: missing mandatory value (???); set it in a config or with an override ${at(name)}=VALUE`);
    }
  }
  if (def.params === undefined) {
    if (problems.length > 0) throw new ConfigError(problems.join('\n'), { path: paramsPath });
    for (const [name, value] of Object.entries(params)) out[name] = copyValue(value);
    return out;
  }
  const specs = def.params;
  const accepted = Object.keys(specs);
  const acceptedList = accepted.length > 0 ? accepted.join(', ') : '(no params)';
  for (const [name, value] of Object.entries(params)) {
    const spec = Object.prototype.hasOwnProperty.call(specs, name) ? specs[name] : undefined;
    if (spec === undefined) {
      if (def.acceptsExtra) {
        out[name] = copyValue(value);
        continue;
      }
      const close = closestMatch(name, accepted);
      const dym = close !== undefined ? ` did you mean '${close}'?` : '';
      problems.push(`${showPath(paramsPath)}: unknown param '${name}' for ${def.target};${dym} ${def.target} accepts: ${acceptedList}`);
      continue;
    }
    if (value === MISSING) continue;
    const types = typesOf(spec);
    const ok = value === null ? acceptsNull(spec) : types.some((t) => matchesType(t, value));
    if (!ok) {
      const expected = types.join(' | ') + (acceptsNull(spec) ? ' | null' : '');
      let hint = '';
      if (typeof value === 'string' && value.includes('${')) hint = ' (an unresolved interpolation: resolve the config with resolveInterpolations before instantiating)';
      problems.push(`${at(name)}: expected ${expected} for param '${name}' of ${def.target}, found ${typeName(value)} ${show(value)}${hint}`);
      continue;
    }
    out[name] = copyValue(value);
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (Object.prototype.hasOwnProperty.call(params, name)) continue;
    if (spec.required) {
      problems.push(`${showPath(paramsPath)}: missing required param '${name}' for ${def.target} (${typesOf(spec).join(' | ')}${spec.doc ? `: ${spec.doc}` : ''})`);
    } else if (spec.default !== undefined) {
      out[name] = copyValue(spec.default);
    }
  }
  if (problems.length === 1) throw new ConfigError(problems[0]!, { path: paramsPath });
  if (problems.length > 1) {
    throw new ConfigError(`${problems.length} problems with the params of ${def.target} at ${showPath(paramsPath)}:\n  ${problems.join('\n  ')}`, {
      path: paramsPath,
    });
  }
  return out;
}

/**
 * Builds the object a config describes (sgm.util.instantiate_from_config): looks `target` up in
 * the registry, checks `params`, and calls the target's `create`.
 */
export function instantiateFromConfig<T>(config: unknown, opts: InstantiateOptions = {}): T {
  const reg = opts.registry ?? defaultRegistry;
  const path = opts.path ?? '';
  const where = showPath(path);
  if (typeof config === 'string' && SPECIAL.has(config)) return null as T;
  if (!isMapping(config)) {
    throw new ConfigError(
      `${where}: expected a mapping with key \`target\` to instantiate, found ${typeName(config)} ${show(config)}`,
      { path },
    );
  }
  if (!Object.prototype.hasOwnProperty.call(config, 'target')) {
    const keys = Object.keys(config);
    throw new ConfigError(
      `${where}: expected key \`target\` to instantiate (found keys: ${keys.length > 0 ? keys.join(', ') : 'none'})`,
      { path },
    );
  }
  const target = config['target'];
  if (typeof target !== 'string') {
    throw new ConfigError(`${joinPath(path, 'target')}: expected a dotted class name (string), found ${typeName(target)} ${show(target)}`, {
      path: joinPath(path, 'target'),
    });
  }
  const def = reg.get(target);
  if (!def) {
    const close = reg.closest(target, 5);
    const list = close.length > 0 ? `; closest registered targets: ${close.join(', ')}` : '; no targets are registered (import src/registry.ts)';
    throw new ConfigError(`${joinPath(path, 'target')}: unknown target '${target}'${list}`, { path: joinPath(path, 'target') });
  }
  if (def.notImplemented !== undefined) throw new NotImplementedTargetError(target, def.notImplemented, path === '' ? undefined : path);
  const paramsPath = joinPath(path, 'params');
  const rawParams = Object.prototype.hasOwnProperty.call(config, 'params') ? config['params'] : {};
  if (!isMapping(rawParams)) {
    throw new ConfigError(
      `${paramsPath}: params must be a mapping of keyword arguments, found ${typeName(rawParams)} ${show(rawParams)}${rawParams === null ? " (an empty 'params:'; write 'params: {}' or remove it)" : ''}`,
      { path: paramsPath },
    );
  }
  const params = validateParams(def, rawParams, paramsPath);
  const ctx: InstantiateContext = {
    path,
    registry: reg,
    instantiate<U>(cfg: unknown, childPath: string): U {
      return instantiateFromConfig<U>(cfg, { registry: reg, path: childPath });
    },
  };
  return def.create(params, ctx) as T;
}
