// The target registry: the reference's dotted class names (`target:` in its YAML configs) mapped to
// factories of our classes. A placeholder stands for a class that exists in the reference but is
// not implemented here (yet); instantiating it is a NotImplementedTargetError that says why.
import { ConfigError, NotImplementedTargetError, editDistance } from './errors.js';

export type ParamType = 'number' | 'int' | 'string' | 'bool' | 'list' | 'dict' | 'config' | 'any';

export interface ParamSpec {
  /** Accepted type(s). `number` accepts ints too; `config` is a mapping with `target`. */
  type: ParamType | ParamType[];
  /** A required param (a Python argument without a default). */
  required?: boolean;
  /** Filled in when the param is absent (copied for each instantiation). */
  default?: unknown;
  doc?: string;
  /** null is accepted (also implied by `default: null`). */
  nullable?: boolean;
}

export interface InstantiateContext {
  /**
   * Config path of the node being instantiated (`model.params.denoiser_config`); its params are at
   * `${path}.params`, so a nested config param `scaling_config` is instantiated with
   * `ctx.instantiate(params.scaling_config, `${ctx.path}.params.scaling_config`)`.
   */
  path: string;
  registry: Registry;
  /** instantiateFromConfig with this registry; `path` names the nested config in errors. */
  instantiate<U>(cfg: unknown, path: string): U;
}

export interface TargetDef<T = unknown> {
  /** The reference's dotted name, e.g. `sgm.modules.diffusionmodules.denoiser.DiscreteDenoiser`. */
  target: string;
  /** Accepted params (the reference's snake_case names); absent: params are not checked. */
  params?: Record<string, ParamSpec>;
  /** The Python class takes **kwargs: params not listed are passed through. */
  acceptsExtra?: boolean;
  /** Builds the object from validated params (defaults filled in). */
  create(params: Record<string, unknown>, ctx: InstantiateContext): T;
  /** Set on a placeholder: why it is not implemented, or which issue implements it. */
  notImplemented?: string;
}

const TARGET_RE = /^[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)+$/;

function lastComponent(name: string): string {
  const i = name.lastIndexOf('.');
  return i < 0 ? name : name.slice(i + 1);
}

/** A placeholder definition: instantiating it throws NotImplementedTargetError(reason). */
export function placeholder(target: string, notImplemented: string): TargetDef<never> {
  return {
    target,
    notImplemented,
    acceptsExtra: true,
    create(_params, ctx) {
      throw new NotImplementedTargetError(target, notImplemented, ctx.path);
    },
  };
}

export class Registry {
  private readonly defs = new Map<string, TargetDef>();

  /** Registers a target; registering a name twice is an error (see `replace`). */
  register(def: TargetDef): void {
    if (!TARGET_RE.test(def.target)) {
      throw new ConfigError(`cannot register target '${def.target}': a target is a dotted name such as 'package.module.Class'`);
    }
    const existing = this.defs.get(def.target);
    if (existing) {
      const hint = existing.notImplemented !== undefined ? ' as a placeholder; use registry.replace() to implement it' : '';
      throw new ConfigError(`target '${def.target}' is already registered${hint}`);
    }
    this.defs.set(def.target, def);
  }

  /** Replaces a placeholder with a definition (an implemented target cannot be replaced). */
  replace(def: TargetDef): void {
    const existing = this.defs.get(def.target);
    if (!existing) throw new ConfigError(`cannot replace target '${def.target}': it is not registered; use registry.register()`);
    if (existing.notImplemented === undefined) {
      throw new ConfigError(`cannot replace target '${def.target}': it is already implemented (only placeholders can be replaced)`);
    }
    this.defs.set(def.target, def);
  }

  get(target: string): TargetDef | undefined {
    return this.defs.get(target);
  }

  has(target: string): boolean {
    return this.defs.has(target);
  }

  /** All registered target names, sorted. */
  names(): string[] {
    return [...this.defs.keys()].sort();
  }

  /** True when the target is registered as a placeholder. */
  isPlaceholder(target: string): boolean {
    const def = this.defs.get(target);
    return def !== undefined && def.notImplemented !== undefined;
  }

  /**
   * The `n` registered names closest to `target`: case-insensitive edit distance on the whole
   * dotted name and on its last component (the class name), the smaller of the two.
   */
  closest(target: string, n = 5): string[] {
    const t = target.toLowerCase();
    const tLast = lastComponent(t);
    const scored = this.names().map((name) => {
      const l = name.toLowerCase();
      const full = editDistance(t, l);
      const last = editDistance(tLast, lastComponent(l));
      return { name, score: Math.min(full, last), full };
    });
    scored.sort((a, b) => a.score - b.score || a.full - b.full || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return scored.slice(0, n).map((s) => s.name);
  }
}

/** The default registry (src/registry.ts fills it with the project's targets and placeholders). */
export const registry = new Registry();
