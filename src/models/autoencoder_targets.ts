// Config targets of the autoencoders: sgm.models.autoencoder.*, the Encoder/Decoder blocks of
// sgm.modules.diffusionmodules.model, the regularizers and the temporal decoder of
// sgm.modules.autoencoding.temporal_ae. Placeholders registered by src/registry.ts are replaced;
// the other names (building blocks the fixtures build directly) are registered.
import { atPath, placeholder, type InstantiateContext, type ParamSpec, type Registry, type TargetDef } from '../config/index.js';
import {
  AttnBlock,
  Decoder,
  Downsample,
  Encoder,
  LinAttnBlock,
  MemoryEfficientAttnBlock,
  Normalize,
  ResnetBlock,
  Upsample,
  type DecoderParams,
  type EncoderParams,
} from '../modules/diffusionmodules/model.js';
import { DiagonalGaussianRegularizer, IdentityRegularizer } from '../modules/autoencoding/regularizers/index.js';
import { AE3DConv, VideoDecoder, VideoResBlock, type VideoDecoderParams } from '../modules/autoencoding/temporal_ae.js';
import {
  AutoencoderKL,
  AutoencoderKLModeOnly,
  AutoencodingEngine,
  AutoencodingEngineLegacy,
  IdentityFirstStage,
  type AutoencoderKLParams,
  type AutoencodingEngineLegacyParams,
  type AutoencodingEngineParams,
} from './autoencoder.js';

const MODEL = 'sgm.modules.diffusionmodules.model';
const AE = 'sgm.models.autoencoder';
const REG = 'sgm.modules.autoencoding.regularizers';
const TAE = 'sgm.modules.autoencoding.temporal_ae';

const int = (dflt?: number | null, doc?: string): ParamSpec =>
  dflt === undefined ? { type: 'int', required: true, doc } : { type: 'int', default: dflt, doc };
const num = (dflt?: number | null, doc?: string): ParamSpec =>
  dflt === undefined ? { type: 'number', required: true, doc } : { type: 'number', default: dflt, doc };
const bool = (dflt: boolean, doc?: string): ParamSpec => ({ type: 'bool', default: dflt, doc });
const str = (dflt?: string | null, doc?: string): ParamSpec =>
  dflt === undefined ? { type: 'string', required: true, doc } : { type: 'string', default: dflt, doc };
const list = (doc: string, dflt?: unknown[] | null): ParamSpec =>
  dflt === undefined ? { type: 'list', required: true, doc } : { type: 'list', default: dflt, doc };
const intOrList = (dflt: number | number[] | null, doc: string): ParamSpec => ({ type: ['int', 'list'], default: dflt, doc });
const config = (doc: string, required = true): ParamSpec => (required ? { type: 'config', required: true, doc } : { type: 'config', nullable: true, doc });

/** nested config builder with the config path of the param (`model.params.first_stage_config.params.encoder_config`). */
function nested(ctx: InstantiateContext) {
  return <U>(cfg: unknown, path: string): U => ctx.instantiate<U>(cfg, path);
}

/** The params of Encoder / Decoder (model.py); both take **kwargs (one ddconfig serves both). */
const CODER_PARAMS: Record<string, ParamSpec> = {
  ch: int(undefined, 'base channel count'),
  out_ch: int(undefined, 'output channels (Decoder)'),
  ch_mult: list('channel multiplier per resolution level', [1, 2, 4, 8]),
  num_res_blocks: int(undefined, 'ResnetBlocks per level'),
  attn_resolutions: list('resolutions with attention after each ResnetBlock'),
  dropout: num(0.0),
  resamp_with_conv: bool(true),
  in_channels: int(undefined, 'image channels'),
  resolution: int(undefined, 'image resolution (sets where attn_resolutions apply)'),
  z_channels: int(undefined, 'latent channels'),
  double_z: bool(true, 'Encoder: 2*z_channels outputs (mean and logvar)'),
  use_linear_attn: bool(false),
  attn_type: str('vanilla', 'vanilla | vanilla-xformers | linear | none'),
};

const DECODER_PARAMS: Record<string, ParamSpec> = {
  ...CODER_PARAMS,
  give_pre_end: bool(false, 'return the features before norm_out / conv_out'),
  tanh_out: bool(false),
};

const ABSTRACT_AE_PARAMS: Record<string, ParamSpec> = {
  ema_decay: num(null, 'EMA of the weights (training only; not supported)'),
  monitor: str(null),
  input_key: str('jpg'),
};

const ENGINE_TRAINING_PARAMS: Record<string, ParamSpec> = {
  optimizer_config: { type: 'dict', default: null, doc: 'training only' },
  lr_g_factor: num(1.0, 'training only'),
  trainable_ae_params: list('training only', null),
  ae_optimizer_args: list('training only', null),
  trainable_disc_params: list('training only', null),
  disc_optimizer_args: list('training only', null),
  disc_start_iter: int(0, 'training only'),
  diff_boost_factor: num(3.0, 'training only'),
  ckpt_engine: { type: 'any', default: null, doc: 'not supported: load weights with loadStateDict' },
  ckpt_path: str(null, 'not supported: load weights with loadStateDict'),
  additional_decode_keys: list('training only', null),
};

const LEGACY_PARAMS: Record<string, ParamSpec> = {
  ...ABSTRACT_AE_PARAMS,
  ...ENGINE_TRAINING_PARAMS,
  embed_dim: int(undefined, 'latent channels after quant_conv'),
  ddconfig: { type: 'dict', required: true, doc: 'Encoder and Decoder params' },
  max_batch_size: int(null, 'encode/decode at most this many samples at a time'),
  loss_config: config('training loss (torch.nn.Identity for inference)', false),
};

const KL_PARAMS: Record<string, ParamSpec> = {
  ...LEGACY_PARAMS,
  lossconfig: config('training loss (deprecated name of loss_config)', false),
};

export const AUTOENCODER_TARGETS: readonly TargetDef[] = [
  // model.py building blocks
  {
    target: `${MODEL}.Normalize`,
    params: { in_channels: int(), num_groups: int(32) },
    create: (p, ctx) => atPath(ctx, `${MODEL}.Normalize`, () => Normalize(p.in_channels as number, p.num_groups as number)),
  },
  {
    target: `${MODEL}.Upsample`,
    params: { in_channels: int(), with_conv: { type: 'bool', required: true } },
    create: (p) => new Upsample({ in_channels: p.in_channels as number, with_conv: p.with_conv as boolean }),
  },
  {
    target: `${MODEL}.Downsample`,
    params: { in_channels: int(), with_conv: { type: 'bool', required: true } },
    create: (p) => new Downsample({ in_channels: p.in_channels as number, with_conv: p.with_conv as boolean }),
  },
  {
    target: `${MODEL}.ResnetBlock`,
    params: { in_channels: int(), out_channels: int(null), conv_shortcut: bool(false), dropout: num(), temb_channels: int(512) },
    create: (p, ctx) =>
      atPath(ctx, `${MODEL}.ResnetBlock`, () =>
        new ResnetBlock({
          in_channels: p.in_channels as number,
          out_channels: p.out_channels as number | null,
          conv_shortcut: p.conv_shortcut as boolean,
          dropout: p.dropout as number,
          temb_channels: p.temb_channels as number,
        }),
      ),
  },
  { target: `${MODEL}.AttnBlock`, params: { in_channels: int() }, create: (p) => new AttnBlock({ in_channels: p.in_channels as number }) },
  {
    target: `${MODEL}.MemoryEfficientAttnBlock`,
    params: { in_channels: int() },
    create: (p) => new MemoryEfficientAttnBlock({ in_channels: p.in_channels as number }),
  },
  { target: `${MODEL}.LinAttnBlock`, params: { in_channels: int() }, create: (p) => new LinAttnBlock({ in_channels: p.in_channels as number }) },
  {
    target: `${MODEL}.Encoder`,
    params: CODER_PARAMS,
    acceptsExtra: true,
    create: (p, ctx) => atPath(ctx, `${MODEL}.Encoder`, () => new Encoder(p as EncoderParams)),
  },
  {
    target: `${MODEL}.Decoder`,
    params: DECODER_PARAMS,
    acceptsExtra: true,
    create: (p, ctx) => atPath(ctx, `${MODEL}.Decoder`, () => new Decoder(p as DecoderParams)),
  },
  // regularizers
  {
    target: `${REG}.DiagonalGaussianRegularizer`,
    params: { sample: bool(true, 'sample from the posterior (false: its mean)') },
    create: (p) => new DiagonalGaussianRegularizer({ sample: p.sample as boolean }),
  },
  { target: `${REG}.base.IdentityRegularizer`, params: {}, create: () => new IdentityRegularizer() },
  // autoencoders
  {
    target: `${AE}.AutoencodingEngine`,
    params: {
      ...ABSTRACT_AE_PARAMS,
      ...ENGINE_TRAINING_PARAMS,
      encoder_config: config('the encoder'),
      decoder_config: config('the decoder'),
      loss_config: config('training loss (torch.nn.Identity for inference)'),
      regularizer_config: config('between encoder and decoder (DiagonalGaussianRegularizer)'),
    },
    create: (p, ctx) =>
      atPath(ctx, `${AE}.AutoencodingEngine`, () => new AutoencodingEngine(p as unknown as AutoencodingEngineParams, nested(ctx), ctx.path)),
  },
  {
    target: `${AE}.AutoencodingEngineLegacy`,
    params: { ...LEGACY_PARAMS, regularizer_config: config('between quant_conv and post_quant_conv') },
    create: (p, ctx) =>
      atPath(ctx, `${AE}.AutoencodingEngineLegacy`, () =>
        new AutoencodingEngineLegacy(p as unknown as AutoencodingEngineLegacyParams, nested(ctx), ctx.path),
      ),
  },
  {
    target: `${AE}.AutoencoderKL`,
    params: KL_PARAMS,
    create: (p, ctx) => atPath(ctx, `${AE}.AutoencoderKL`, () => new AutoencoderKL(p as unknown as AutoencoderKLParams, nested(ctx), ctx.path)),
  },
  {
    target: `${AE}.AutoencoderKLModeOnly`,
    params: KL_PARAMS,
    create: (p, ctx) =>
      atPath(ctx, `${AE}.AutoencoderKLModeOnly`, () => new AutoencoderKLModeOnly(p as unknown as AutoencoderKLParams, nested(ctx), ctx.path)),
  },
  {
    target: `${AE}.IdentityFirstStage`,
    params: ABSTRACT_AE_PARAMS,
    create: (p, ctx) => atPath(ctx, `${AE}.IdentityFirstStage`, () => new IdentityFirstStage(p)),
  },
  // temporal_ae (SVD)
  {
    target: `${TAE}.VideoResBlock`,
    params: {
      out_channels: int(),
      in_channels: int(),
      conv_shortcut: bool(false),
      dropout: num(0.0),
      temb_channels: int(512),
      video_kernel_size: { ...intOrList(3, 'time_stack kernel (null: [3, 1, 1])'), nullable: true },
      alpha: num(0.0),
      merge_strategy: str('learned', 'learned | fixed'),
    },
    create: (p, ctx) => atPath(ctx, `${TAE}.VideoResBlock`, () => new VideoResBlock(p as never)),
  },
  {
    target: `${TAE}.AE3DConv`,
    params: {
      in_channels: int(),
      out_channels: int(),
      video_kernel_size: intOrList(3, 'time_mix_conv kernel'),
      kernel_size: { type: ['int', 'list'], required: true, doc: 'the Conv2d kernel' },
      stride: intOrList(1, ''),
      padding: intOrList(0, ''),
      dilation: intOrList(1, ''),
      groups: int(1),
      bias: bool(true),
    },
    create: (p, ctx) => atPath(ctx, `${TAE}.AE3DConv`, () => new AE3DConv(p as never)),
  },
  {
    target: `${TAE}.VideoDecoder`,
    params: {
      ...DECODER_PARAMS,
      video_kernel_size: intOrList(3, 'temporal kernel of the VideoResBlocks and AE3DConv'),
      alpha: num(0.0),
      merge_strategy: str('learned', 'learned | fixed'),
      time_mode: str('conv-only', 'conv-only (the only mode the reference can build)'),
    },
    acceptsExtra: true,
    create: (p, ctx) => atPath(ctx, `${TAE}.VideoDecoder`, () => new VideoDecoder(p as VideoDecoderParams)),
  },
];

/** Reference classes of this area that are not implemented yet, with the reason. */
export const AUTOENCODER_PLACEHOLDERS: readonly TargetDef[] = [
  placeholder(`${TAE}.VideoBlock`, 'needs sgm.modules.video_attention.VideoTransformerBlock, which arrives with the VideoUNet (the video issue)'),
  placeholder(`${TAE}.MemoryEfficientVideoBlock`, 'needs sgm.modules.video_attention.VideoTransformerBlock, which arrives with the VideoUNet (the video issue)'),
];

/** Registers the autoencoder targets, replacing their placeholders. Safe to call twice. */
export function registerAutoencoderTargets(registry: Registry): void {
  for (const def of AUTOENCODER_PLACEHOLDERS) if (!registry.has(def.target)) registry.register(def);
  for (const def of AUTOENCODER_TARGETS) {
    if (registry.has(def.target) && !registry.isPlaceholder(def.target)) continue; // already implemented
    if (registry.has(def.target)) registry.replace(def);
    else registry.register(def);
  }
}
