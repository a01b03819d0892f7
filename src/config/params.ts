// Helpers the config targets share: the ParamSpec builders, the param checks that name the config
// path, and the wrapper that turns constructor errors into ConfigErrors.
import { ConfigError } from './errors.js';
import type { InstantiateContext, ParamSpec } from './registry.js';

export const req = (type: ParamSpec['type'], doc?: string): ParamSpec => ({ type, required: true, doc });
export const opt = (type: ParamSpec['type'], dflt: unknown, doc?: string): ParamSpec => ({ type, default: dflt, doc });

export function paramPath(ctx: InstantiateContext, name: string): string {
  return ctx.path === '' ? `params.${name}` : `${ctx.path}.params.${name}`;
}

/** A list param whose entries must all be integers (or, with `orNull`, null). */
export function ints(ctx: InstantiateContext, p: Record<string, unknown>, name: string, orNull = false): void {
  const v = p[name];
  if (!Array.isArray(v)) return;
  const bad = v.findIndex((x) => !((typeof x === 'number' && Number.isInteger(x)) || (orNull && x === null)));
  if (bad >= 0) {
    const at = `${paramPath(ctx, name)}.${bad}`;
    throw new ConfigError(`${at}: expected an integer in list '${name}', found ${JSON.stringify(v[bad])}`, { path: at });
  }
}

export function oneOf(ctx: InstantiateContext, p: Record<string, unknown>, name: string, allowed: readonly unknown[]): void {
  if (!allowed.includes(p[name])) {
    throw new ConfigError(`${paramPath(ctx, name)}: expected one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, found ${JSON.stringify(p[name])}`, {
      path: paramPath(ctx, name),
    });
  }
}

/** Constructor errors (a bad strength, an unsupported loss type) become ConfigErrors naming the config path. */
export function atPath<X>(ctx: InstantiateContext, target: string, make: () => X): X {
  try {
    return make();
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const where = ctx.path === '' ? '<root>' : ctx.path;
    throw new ConfigError(`${where}: cannot build ${target}: ${(e as Error).message}`, { path: ctx.path, cause: e });
  }
}
