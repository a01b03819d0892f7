// What the UNetModel and VideoUNet config targets share: the attention modes and the constructor
// params both networks take (the generic ParamSpec builders and param checks live in config/params.ts).
import { opt, req, type ParamSpec } from '../../config/index.js';
import type { AttnMode } from '../attention.js';

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
