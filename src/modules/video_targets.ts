// Config targets of Stable Video Diffusion's network: video_attention (VideoTransformerBlock,
// SpatialVideoTransformer), video_model (VideoResBlock, VideoUNet) and the temporal autoencoder's
// attention blocks (temporal_ae.VideoBlock, MemoryEfficientVideoBlock), with the reference's
// constructor params. Their placeholders (src/registry.ts, models/autoencoder_targets.ts) are replaced.
import { ConfigError, atPath, ints, oneOf, opt, paramPath, req, type ParamSpec, type Registry, type TargetDef } from '../config/index.js';
import { ATTN_MODES, UNET_COMMON_PARAMS } from './diffusionmodules/unet_params.js';
import { AlphaBlender } from './diffusionmodules/util.js';
import { VideoResBlock, VideoUNet, type VideoUNetParams } from './diffusionmodules/video_model.js';
import { MemoryEfficientVideoBlock, VideoBlock } from './autoencoding/temporal_ae.js';
import { SpatialVideoTransformer, VideoTransformerBlock } from './video_attention.js';

const DM = 'sgm.modules.diffusionmodules';
const VA = 'sgm.modules.video_attention';
const TAE = 'sgm.modules.autoencoding.temporal_ae';

const TEMPORAL_AE_STRATEGIES: readonly string[] = ['learned', 'fixed'];

export const VIDEO_TRANSFORMER_BLOCK_PARAMS: Record<string, ParamSpec> = {
  dim: req('int'),
  n_heads: req('int'),
  d_head: req('int'),
  dropout: opt('number', 0.0),
  context_dim: opt('int', null, 'width of the temporal cross-attention context (null: attn2 is self-attention)'),
  gated_ff: opt('bool', true),
  checkpoint: opt('bool', true, 'gradient checkpointing: accepted, no effect on values'),
  timesteps: opt('int', null, 'frames per video, fixed at construction (null: given to forward)'),
  ff_in: opt('bool', false),
  inner_dim: opt('int', null, 'attention width n_heads * d_head (given: ff_in is built)'),
  attn_mode: opt('string', 'softmax', 'softmax (CrossAttention) or softmax-xformers (MemoryEfficientCrossAttention): the same attention'),
  disable_self_attn: opt('bool', false),
  disable_temporal_crossattention: opt('bool', false),
  switch_temporal_ca_to_sa: opt('bool', false),
};

export const SPATIAL_VIDEO_TRANSFORMER_PARAMS: Record<string, ParamSpec> = {
  in_channels: req('int'),
  n_heads: req('int'),
  d_head: req('int'),
  depth: opt('int', 1),
  dropout: opt('number', 0.0),
  use_linear: opt('bool', false),
  context_dim: opt('int', null),
  use_spatial_context: opt('bool', false, 'temporal cross-attention to the first frame\'s context of each video'),
  timesteps: opt('int', null),
  merge_strategy: opt('string', 'fixed', 'fixed | learned | learned_with_images'),
  merge_factor: opt('number', 0.5),
  time_context_dim: opt('int', null),
  ff_in: opt('bool', false, 'accepted; the temporal blocks always have ff_in (the reference passes inner_dim)'),
  checkpoint: opt('bool', false, 'gradient checkpointing: accepted, no effect on values'),
  time_depth: opt('int', 1, 'stored only, as in the reference'),
  attn_mode: opt('string', 'softmax'),
  disable_self_attn: opt('bool', false),
  disable_temporal_crossattention: opt('bool', false),
  max_time_embed_period: opt('int', 10000),
};

export const VIDEO_RESBLOCK_PARAMS: Record<string, ParamSpec> = {
  channels: req('int'),
  emb_channels: req('int'),
  dropout: req('number'),
  video_kernel_size: opt(['int', 'list'], 3, 'kernel of time_stack\'s 3-D convs'),
  merge_strategy: opt('string', 'fixed', 'fixed | learned | learned_with_images'),
  merge_factor: opt('number', 0.5),
  out_channels: opt('int', null),
  use_conv: opt('bool', false),
  use_scale_shift_norm: opt('bool', false),
  dims: opt('int', 2),
  use_checkpoint: opt('bool', false, 'gradient checkpointing: accepted, no effect on values'),
  up: opt('bool', false),
  down: opt('bool', false),
};

export const VIDEO_UNET_PARAMS: Record<string, ParamSpec> = {
  ...UNET_COMMON_PARAMS,
  num_res_blocks: req('int', 'ResBlocks per level'),
  transformer_depth_middle: opt('int', null, 'default: the last entry of transformer_depth'),
  context_dim: opt('int', null, 'required (the reference asserts it is set)'),
  time_downup: opt('bool', false, 'down/upsample the frame axis too (dims 3)'),
  time_context_dim: opt('int', null),
  extra_ff_mix_layer: opt('bool', false),
  use_spatial_context: opt('bool', false),
  merge_strategy: opt('string', 'fixed', 'fixed | learned | learned_with_images'),
  merge_factor: opt('number', 0.5),
  spatial_transformer_attn_type: opt('string', 'softmax', 'softmax or softmax-xformers (the same attention here)'),
  video_kernel_size: opt(['int', 'list'], 3),
  use_linear_in_transformer: opt('bool', false),
  adm_in_channels: opt('int', null),
  disable_temporal_crossattention: opt('bool', false),
  max_ddpm_temb_period: opt('int', 10000),
};

const VIDEO_BLOCK_PARAMS: Record<string, ParamSpec> = {
  in_channels: req('int'),
  alpha: opt('number', 0.0),
  merge_strategy: opt('string', 'learned', 'learned | fixed'),
};

export const VIDEO_TARGETS: readonly TargetDef[] = [
  {
    target: `${VA}.VideoTransformerBlock`,
    params: VIDEO_TRANSFORMER_BLOCK_PARAMS,
    create: (p, ctx) => {
      oneOf(ctx, p, 'attn_mode', ATTN_MODES);
      return atPath(ctx, 'VideoTransformerBlock', () => new VideoTransformerBlock(p as never));
    },
  },
  {
    target: `${VA}.SpatialVideoTransformer`,
    params: SPATIAL_VIDEO_TRANSFORMER_PARAMS,
    create: (p, ctx) => {
      oneOf(ctx, p, 'attn_mode', ATTN_MODES);
      oneOf(ctx, p, 'merge_strategy', AlphaBlender.strategies);
      return atPath(ctx, 'SpatialVideoTransformer', () => new SpatialVideoTransformer(p as never));
    },
  },
  {
    target: `${DM}.video_model.VideoResBlock`,
    params: VIDEO_RESBLOCK_PARAMS,
    create: (p, ctx) => {
      ints(ctx, p, 'video_kernel_size');
      oneOf(ctx, p, 'merge_strategy', AlphaBlender.strategies);
      return atPath(ctx, 'VideoResBlock', () => new VideoResBlock(p as never));
    },
  },
  {
    target: `${DM}.video_model.VideoUNet`,
    params: VIDEO_UNET_PARAMS,
    create: (p, ctx) => {
      for (const name of ['attention_resolutions', 'channel_mult', 'transformer_depth', 'video_kernel_size']) ints(ctx, p, name);
      oneOf(ctx, p, 'spatial_transformer_attn_type', ATTN_MODES);
      oneOf(ctx, p, 'merge_strategy', AlphaBlender.strategies);
      if (typeof p['num_classes'] === 'string') oneOf(ctx, p, 'num_classes', ['sequential', 'continuous', 'timestep']);
      if (p['context_dim'] === null) {
        throw new ConfigError(`${paramPath(ctx, 'context_dim')}: VideoUNet needs context_dim (the width of the cross-attention context)`, {
          path: paramPath(ctx, 'context_dim'),
        });
      }
      return atPath(ctx, 'VideoUNet', () => new VideoUNet(p as unknown as VideoUNetParams));
    },
  },
  {
    target: `${TAE}.VideoBlock`,
    params: VIDEO_BLOCK_PARAMS,
    create: (p, ctx) => {
      oneOf(ctx, p, 'merge_strategy', TEMPORAL_AE_STRATEGIES);
      return atPath(ctx, `${TAE}.VideoBlock`, () => new VideoBlock(p as never));
    },
  },
  {
    target: `${TAE}.MemoryEfficientVideoBlock`,
    params: VIDEO_BLOCK_PARAMS,
    create: (p, ctx) => {
      oneOf(ctx, p, 'merge_strategy', TEMPORAL_AE_STRATEGIES);
      return atPath(ctx, `${TAE}.MemoryEfficientVideoBlock`, () => new MemoryEfficientVideoBlock(p as never));
    },
  },
];

/** Registers the targets above, replacing their placeholders (safe to call twice). */
export function registerVideoTargets(registry: Registry): void {
  for (const def of VIDEO_TARGETS) {
    if (registry.has(def.target) && !registry.isPlaceholder(def.target)) continue;
    if (registry.has(def.target)) registry.replace(def);
    else registry.register(def);
  }
}
