// What the UNetModel and VideoUNet config targets share: the ParamSpec builders, the param checks
// that name the config path, and the constructor params both networks take.
import { ConfigError, type InstantiateContext, type ParamSpec } from '../../config/index.js';
import type { AttnMode } from '../attention.js';

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

/** Constructor errors become ConfigErrors naming the config path. */
export function atPath<X>(ctx: InstantiateContext, target: string, make: () => X): X {
  try {
    return make();
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const where = ctx.path === '' ? '<root>' : ctx.path;
    throw new ConfigError(`${where}: cannot build ${target}: ${(e as Error).message}`, { path: ctx.path, cause: e });
  }
}

export const ATTN_MODES: readonly AttnMode[] = ['softmax', 'softmax-xformers'];

/** The constructor params UNetModel and VideoUNet both take (VideoUNet narrows num_res_blocks). */
export const UNET_COMMON_PARAMS: Record<string, ParamSpec> = {
  in_channels: req('int'),
  model_channels: req('int'),
  out_channels: req('int'),
  num_res_blocks: req(['int', 'list'], 'per level, or one count for all levels'),
  attention_resolutions: req('list', 'downsampling factors with attention'),
  dropout: opt('number', 0.0),
  channel_mult: opt('list', [1, 2, 4, 8]),
  conv_resample: opt('bool', true),
  dims: opt('int', 2),
  num_classes: opt(['int', 'string'], null, 'an int (class labels), "sequential" (vector y), "continuous" or "timestep"'),
  use_checkpoint: opt('bool', false, 'gradient checkpointing: accepted, no effect on values'),
  num_heads: opt('int', -1),
  num_head_channels: opt('int', -1),
  num_heads_upsample: opt('int', -1),
  use_scale_shift_norm: opt('bool', false),
  resblock_updown: opt('bool', false),
  transformer_depth: opt(['int', 'list'], 1),
};
