// Config targets of the UNet and its building blocks: openaimodel (UNetModel, ResBlock, Upsample,
// Downsample), util (normalization, GroupNorm32, AlphaBlender), attention (GEGLU, FeedForward,
// CrossAttention, MemoryEfficientCrossAttention, BasicTransformerBlock, SpatialTransformer) and the
// network wrappers, with the reference's constructor params; plus the module-level functions the
// parity fixtures call by dotted name (UNET_FUNCTIONS).
import { ConfigError, atPath, ints, oneOf, opt, paramPath, req, type InstantiateContext, type ParamSpec, type Registry, type TargetDef } from '../../config/index.js';
import * as T from '../../tensor/index.js';
import {
  BasicTransformerBlock,
  CrossAttention,
  FeedForward,
  GEGLU,
  MemoryEfficientCrossAttention,
  SpatialTransformer,
} from '../attention.js';
import { Downsample, ResBlock, Timestep, UNetModel, Upsample, type UNetModelParams } from './openaimodel.js';
import { AlphaBlender, GroupNorm32, normalization, timestep_embedding, type MergeStrategy } from './util.js';
import { ATTN_MODES, UNET_COMMON_PARAMS } from './unet_params.js';
import { IdentityWrapper, OpenAIWrapper, type DiffusionModel } from './wrappers.js';

const DM = 'sgm.modules.diffusionmodules';
const ATTN = 'sgm.modules.attention';

export const UNET_PARAMS: Record<string, ParamSpec> = {
  ...UNET_COMMON_PARAMS,
  context_dim: opt(['int', 'list'], null),
  disable_self_attentions: opt('list', null),
  num_attention_blocks: opt('list', null),
  disable_middle_self_attn: opt('bool', false),
  disable_middle_transformer: opt('bool', false),
  use_linear_in_transformer: opt('bool', false),
  spatial_transformer_attn_type: opt('string', 'softmax', 'softmax or softmax-xformers (the same attention here)'),
  adm_in_channels: opt('int', null),
};

function createUNet(p: Record<string, unknown>, ctx: InstantiateContext): UNetModel {
  for (const name of ['attention_resolutions', 'channel_mult', 'num_res_blocks', 'transformer_depth', 'num_attention_blocks']) ints(ctx, p, name);
  ints(ctx, p, 'context_dim', true);
  oneOf(ctx, p, 'spatial_transformer_attn_type', ATTN_MODES);
  if (typeof p['num_classes'] === 'string') oneOf(ctx, p, 'num_classes', ['sequential', 'continuous', 'timestep']);
  const dsa = p['disable_self_attentions'];
  if (Array.isArray(dsa) && dsa.some((v) => typeof v !== 'boolean')) {
    throw new ConfigError(`${paramPath(ctx, 'disable_self_attentions')}: expected a list of booleans`, { path: paramPath(ctx, 'disable_self_attentions') });
  }
  return atPath(ctx, 'UNetModel', () => new UNetModel(p as unknown as UNetModelParams));
}

function wrapperCreate<W>(make: (m: DiffusionModel, compile: boolean) => W) {
  return (p: Record<string, unknown>, ctx: InstantiateContext): W => {
    let model = p['diffusion_model'];
    if (model !== null && typeof model === 'object' && typeof (model as { target?: unknown }).target === 'string') {
      model = ctx.instantiate(model, paramPath(ctx, 'diffusion_model'));
    }
    if (!model || typeof (model as { forward?: unknown }).forward !== 'function') {
      throw new ConfigError(`${paramPath(ctx, 'diffusion_model')}: expected a network (a module or a config with target)`, { path: paramPath(ctx, 'diffusion_model') });
    }
    return make(model as DiffusionModel, p['compile_model'] as boolean);
  };
}

export const UNET_TARGETS: readonly TargetDef[] = [
  { target: `${DM}.openaimodel.UNetModel`, params: UNET_PARAMS, create: createUNet },
  {
    target: `${DM}.openaimodel.ResBlock`,
    params: {
      channels: req('int'),
      emb_channels: req('int'),
      dropout: req('number'),
      out_channels: opt('int', null),
      use_conv: opt('bool', false),
      use_scale_shift_norm: opt('bool', false),
      dims: opt('int', 2),
      use_checkpoint: opt('bool', false),
      up: opt('bool', false),
      down: opt('bool', false),
      kernel_size: opt(['int', 'list'], 3),
      exchange_temb_dims: opt('bool', false),
      skip_t_emb: opt('bool', false),
    },
    create: (p, ctx) => {
      ints(ctx, p, 'kernel_size');
      return atPath(ctx, 'ResBlock', () => new ResBlock(p as never));
    },
  },
  {
    target: `${DM}.openaimodel.Upsample`,
    params: {
      channels: req('int'),
      use_conv: req('bool'),
      dims: opt('int', 2),
      out_channels: opt('int', null),
      padding: opt('int', 1),
      third_up: opt('bool', false),
      kernel_size: opt('int', 3),
      scale_factor: opt('int', 2),
    },
    create: (p, ctx) => atPath(ctx, 'Upsample', () => new Upsample(p as never)),
  },
  {
    target: `${DM}.openaimodel.Downsample`,
    params: {
      channels: req('int'),
      use_conv: req('bool'),
      dims: opt('int', 2),
      out_channels: opt('int', null),
      padding: opt('int', 1),
      third_down: opt('bool', false),
    },
    create: (p, ctx) => atPath(ctx, 'Downsample', () => new Downsample(p as never)),
  },
  { target: `${DM}.openaimodel.Timestep`, params: { dim: req('int') }, create: (p) => new Timestep(p['dim'] as number) },
  { target: `${DM}.util.normalization`, params: { channels: req('int') }, create: (p, ctx) => atPath(ctx, 'normalization', () => normalization(p['channels'] as number)) },
  {
    target: `${DM}.util.GroupNorm32`,
    params: { num_groups: req('int'), num_channels: req('int'), eps: opt('number', 1e-5), affine: opt('bool', true) },
    create: (p, ctx) =>
      atPath(ctx, 'GroupNorm32', () => new GroupNorm32(p['num_groups'] as number, p['num_channels'] as number, { eps: p['eps'] as number, affine: p['affine'] as boolean })),
  },
  {
    target: `${DM}.util.AlphaBlender`,
    params: { alpha: req('number'), merge_strategy: opt('string', 'learned_with_images'), rearrange_pattern: opt('string', 'b t -> (b t) 1 1') },
    create: (p, ctx) => {
      oneOf(ctx, p, 'merge_strategy', AlphaBlender.strategies);
      return atPath(
        ctx,
        'AlphaBlender',
        () => new AlphaBlender({ alpha: p['alpha'] as number, merge_strategy: p['merge_strategy'] as MergeStrategy, rearrange_pattern: p['rearrange_pattern'] as string }),
      );
    },
  },
  { target: `${ATTN}.GEGLU`, params: { dim_in: req('int'), dim_out: req('int') }, create: (p) => new GEGLU(p['dim_in'] as number, p['dim_out'] as number) },
  {
    target: `${ATTN}.FeedForward`,
    params: { dim: req('int'), dim_out: opt('int', null), mult: opt('number', 4), glu: opt('bool', false), dropout: opt('number', 0.0) },
    create: (p, ctx) => atPath(ctx, 'FeedForward', () => new FeedForward(p as never)),
  },
  ...[
    ['CrossAttention', CrossAttention, { backend: opt('any', null, 'SDPBackend: accepted, no effect') }],
    ['MemoryEfficientCrossAttention', MemoryEfficientCrossAttention, {}],
  ].map(([name, Cls, extra]): TargetDef => ({
    target: `${ATTN}.${name as string}`,
    params: { query_dim: req('int'), context_dim: opt('int', null), heads: opt('int', 8), dim_head: opt('int', 64), dropout: opt('number', 0.0), ...(extra as Record<string, ParamSpec>) },
    // MemoryEfficientCrossAttention takes **kwargs in the reference.
    acceptsExtra: name === 'MemoryEfficientCrossAttention',
    create: (p, ctx) => atPath(ctx, name as string, () => new (Cls as typeof CrossAttention)(p as never)),
  })),
  {
    target: `${ATTN}.BasicTransformerBlock`,
    params: {
      dim: req('int'),
      n_heads: req('int'),
      d_head: req('int'),
      dropout: opt('number', 0.0),
      context_dim: opt('int', null),
      gated_ff: opt('bool', true),
      checkpoint: opt('bool', true),
      disable_self_attn: opt('bool', false),
      attn_mode: opt('string', 'softmax'),
      sdp_backend: opt('any', null),
    },
    create: (p, ctx) => {
      oneOf(ctx, p, 'attn_mode', ATTN_MODES);
      return atPath(ctx, 'BasicTransformerBlock', () => new BasicTransformerBlock(p as never));
    },
  },
  {
    target: `${ATTN}.SpatialTransformer`,
    params: {
      in_channels: req('int'),
      n_heads: req('int'),
      d_head: req('int'),
      depth: opt('int', 1),
      dropout: opt('number', 0.0),
      context_dim: opt(['int', 'list'], null),
      disable_self_attn: opt('bool', false),
      use_linear: opt('bool', false),
      attn_type: opt('string', 'softmax'),
      use_checkpoint: opt('bool', true),
      sdp_backend: opt('any', null),
    },
    create: (p, ctx) => {
      oneOf(ctx, p, 'attn_type', ATTN_MODES);
      ints(ctx, p, 'context_dim', true);
      return atPath(ctx, 'SpatialTransformer', () => new SpatialTransformer(p as never));
    },
  },
  {
    target: `${DM}.wrappers.IdentityWrapper`,
    params: { diffusion_model: req(['config', 'any'], 'the network (a module, or its config)'), compile_model: opt('bool', false) },
    create: wrapperCreate((m, c) => new IdentityWrapper({ diffusion_model: m, compile_model: c })),
  },
  {
    target: `${DM}.wrappers.OpenAIWrapper`,
    params: { diffusion_model: req(['config', 'any'], 'the network (a module, or its config)'), compile_model: opt('bool', false) },
    create: wrapperCreate((m, c) => new OpenAIWrapper({ diffusion_model: m, compile_model: c })),
  },
];

/** A module-level function of the reference: its Python parameter names in order, and the implementation. */
export interface FunctionDef {
  args: readonly string[];
  fn: (...args: any[]) => unknown;
}

/** The module-level functions of this part, by dotted name (fixture `call` steps with `function`). */
export const UNET_FUNCTIONS: Readonly<Record<string, FunctionDef>> = {
  [`${DM}.util.timestep_embedding`]: {
    args: ['timesteps', 'dim', 'max_period', 'repeat_only'],
    fn: (timesteps: T.Tensor, dim: number, max_period?: number, repeat_only?: boolean) => timestep_embedding(timesteps, dim, max_period ?? 10000, repeat_only ?? false),
  },
};

/** Registers the targets above, replacing their placeholders (safe to call twice). */
export function registerUNetTargets(registry: Registry): void {
  for (const def of UNET_TARGETS) {
    if (registry.has(def.target) && !registry.isPlaceholder(def.target)) continue;
    if (registry.has(def.target)) registry.replace(def);
    else registry.register(def);
  }
}
