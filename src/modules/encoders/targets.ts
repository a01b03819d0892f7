// Config targets of sgm.modules.encoders.modules (and sgm.modules.GeneralConditioner). Placeholders
// registered by src/registry.ts are replaced; other names are registered.
import { ConfigError, atPath, type InstantiateContext, type ParamSpec, type Registry, type TargetDef } from '../../config/index.js';
import {
  AbstractEmbModel,
  ClassEmbedder,
  ConcatTimestepEmbedderND,
  FrozenCLIPEmbedder,
  FrozenOpenCLIPEmbedder,
  FrozenOpenCLIPEmbedder2,
  FrozenOpenCLIPImageEmbedder,
  FrozenOpenCLIPImagePredictionEmbedder,
  GeneralConditioner,
  IdentityEncoder,
  VideoPredictionEmbedderWithEncoder,
  type EmbedderSettings,
  type SigmaSamplerLike,
  type VideoEncoderLike,
} from './modules.js';

const ENC = 'sgm.modules.encoders.modules';

const int = (dflt?: number | null, doc?: string): ParamSpec =>
  dflt === undefined ? { type: 'int', required: true, doc } : dflt === null ? { type: 'int', default: null, nullable: true, doc } : { type: 'int', default: dflt, doc };
const num = (dflt: number, doc?: string): ParamSpec => ({ type: 'number', default: dflt, doc });
const config = (doc: string, required = true): ParamSpec => (required ? { type: 'config', required: true, doc } : { type: 'config', nullable: true, doc });
const bool = (dflt: boolean, doc?: string): ParamSpec => ({ type: 'bool', default: dflt, doc });
const str = (dflt?: string | null, doc?: string): ParamSpec =>
  dflt === undefined ? { type: 'string', required: true, doc } : dflt === null ? { type: 'string', default: null, nullable: true, doc } : { type: 'string', default: dflt, doc };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function conditionerDef(target: string): TargetDef {
  return {
    target,
    params: { emb_models: { type: 'list', required: true, doc: 'embedder configs (target, params, input_key(s), is_trainable, ucg_rate, legacy_ucg_value)' } },
    create: (p, ctx) =>
      atPath(ctx, target, () => {
        const list = p.emb_models as unknown[];
        const items = list.map((cfg, n) => {
          const path = `${ctx.path === '' ? '' : `${ctx.path}.`}params.emb_models.${n}`;
          if (!isRecord(cfg)) throw new ConfigError(`${path}: expected an embedder config mapping`, { path });
          const embedder = ctx.instantiate<unknown>(cfg, path);
          if (!(embedder instanceof AbstractEmbModel)) {
            throw new ConfigError(`${path}: embedder model ${String(cfg.target)} has to inherit from AbstractEmbModel`, { path });
          }
          if (!('input_key' in cfg) && !('input_keys' in cfg)) {
            throw new ConfigError(`${path}: need either 'input_key' or 'input_keys' for embedder ${embedder.constructor.name}`, { path });
          }
          const settings: EmbedderSettings = {
            is_trainable: (cfg.is_trainable as boolean | undefined) ?? false,
            ucg_rate: (cfg.ucg_rate as number | undefined) ?? 0,
            legacy_ucg_value: cfg.legacy_ucg_value ?? null,
          };
          if ('input_key' in cfg) settings.input_key = cfg.input_key as string;
          else settings.input_keys = cfg.input_keys as string[];
          return { embedder, settings };
        });
        return new GeneralConditioner(items);
      }),
  };
}

export const ENCODER_TARGETS: readonly TargetDef[] = [
  conditionerDef('sgm.modules.GeneralConditioner'),
  conditionerDef(`${ENC}.GeneralConditioner`),
  { target: `${ENC}.IdentityEncoder`, params: {}, acceptsExtra: true, create: () => new IdentityEncoder() },
  {
    target: `${ENC}.ClassEmbedder`,
    params: { embed_dim: int(undefined, 'embedding width'), n_classes: int(1000, 'number of classes (the last is the unconditional one)'), add_sequence_dim: bool(false) },
    create: (p, ctx) => atPath(ctx, `${ENC}.ClassEmbedder`, () => new ClassEmbedder(p.embed_dim as number, p.n_classes as number, p.add_sequence_dim as boolean)),
  },
  {
    target: `${ENC}.ConcatTimestepEmbedderND`,
    params: { outdim: int(undefined, 'timestep embedding width per input column') },
    create: (p, ctx) => atPath(ctx, `${ENC}.ConcatTimestepEmbedderND`, () => new ConcatTimestepEmbedderND(p.outdim as number)),
  },
  {
    target: `${ENC}.FrozenCLIPEmbedder`,
    params: {
      version: str('openai/clip-vit-large-patch14', 'CLIPTextConfig by name (registerHFTextConfig adds more)'),
      device: str('cuda'),
      max_length: int(77),
      freeze: bool(true),
      layer: str('last', 'last | pooled | hidden'),
      layer_idx: int(null, "hidden_states index for layer 'hidden'"),
      always_return_pooled: bool(false),
    },
    create: (p, ctx) =>
      atPath(ctx, `${ENC}.FrozenCLIPEmbedder`, () =>
        new FrozenCLIPEmbedder(p.version as string, p.device as string, p.max_length as number, p.freeze as boolean, p.layer as 'last', p.layer_idx as number | null, p.always_return_pooled as boolean),
      ),
  },
  {
    target: `${ENC}.FrozenOpenCLIPEmbedder`,
    params: { arch: str('ViT-H-14', 'open_clip model config name'), version: { type: 'string', default: 'laion2b_s32b_b79k', nullable: true, doc: 'pretrained tag (weights come from the checkpoint)' }, device: str('cuda'), max_length: int(77), freeze: bool(true), layer: str('last', 'last | penultimate') },
    create: (p, ctx) =>
      atPath(ctx, `${ENC}.FrozenOpenCLIPEmbedder`, () =>
        new FrozenOpenCLIPEmbedder(p.arch as string, p.version as string | null, p.device as string, p.max_length as number, p.freeze as boolean, p.layer as 'last'),
      ),
  },
  {
    target: `${ENC}.FrozenOpenCLIPEmbedder2`,
    params: {
      arch: str('ViT-H-14', 'open_clip model config name'),
      version: { type: 'string', default: 'laion2b_s32b_b79k', nullable: true, doc: 'pretrained tag (weights come from the checkpoint)' },
      device: str('cuda'),
      max_length: int(77),
      freeze: bool(true),
      layer: str('last', 'last | penultimate'),
      always_return_pooled: bool(false),
      legacy: bool(true),
    },
    create: (p, ctx) =>
      atPath(ctx, `${ENC}.FrozenOpenCLIPEmbedder2`, () =>
        new FrozenOpenCLIPEmbedder2(
          p.arch as string,
          p.version as string | null,
          p.device as string,
          p.max_length as number,
          p.freeze as boolean,
          p.layer as 'last',
          p.always_return_pooled as boolean,
          p.legacy as boolean,
        ),
      ),
  },
  {
    target: `${ENC}.FrozenOpenCLIPImageEmbedder`,
    params: {
      arch: str('ViT-H-14', 'open_clip model config name'),
      version: { type: 'string', default: 'laion2b_s32b_b79k', nullable: true, doc: 'pretrained tag (weights come from the checkpoint)' },
      device: str('cuda'),
      max_length: int(77),
      freeze: bool(true),
      antialias: bool(true),
      ucg_rate: num(0.0),
      unsqueeze_dim: bool(false),
      repeat_to_max_len: bool(false),
      num_image_crops: int(0),
      output_tokens: bool(false),
      init_device: { type: 'string', default: null, nullable: true },
    },
    create: (p, ctx) =>
      atPath(ctx, `${ENC}.FrozenOpenCLIPImageEmbedder`, () =>
        new FrozenOpenCLIPImageEmbedder(
          p.arch as string,
          p.version as string | null,
          p.device as string,
          p.max_length as number,
          p.freeze as boolean,
          p.antialias as boolean,
          p.ucg_rate as number,
          p.unsqueeze_dim as boolean,
          p.repeat_to_max_len as boolean,
          p.num_image_crops as number,
          p.output_tokens as boolean,
        ),
      ),
  },
  {
    target: `${ENC}.FrozenOpenCLIPImagePredictionEmbedder`,
    params: { open_clip_embedding_config: config('the FrozenOpenCLIPImageEmbedder config'), n_cond_frames: int(undefined), n_copies: int(undefined) },
    create: (p, ctx) =>
      atPath(ctx, `${ENC}.FrozenOpenCLIPImagePredictionEmbedder`, () => {
        const oc = ctx.instantiate<unknown>(p.open_clip_embedding_config, `${ctx.path === '' ? '' : `${ctx.path}.`}params.open_clip_embedding_config`);
        if (!(oc instanceof FrozenOpenCLIPImageEmbedder)) throw new Error('open_clip_embedding_config must build a FrozenOpenCLIPImageEmbedder');
        return new FrozenOpenCLIPImagePredictionEmbedder(oc, p.n_cond_frames as number, p.n_copies as number);
      }),
  },
  {
    target: `${ENC}.VideoPredictionEmbedderWithEncoder`,
    params: {
      n_cond_frames: int(undefined),
      n_copies: int(undefined),
      encoder_config: config('first-stage model whose encode gives the latents'),
      sigma_sampler_config: config('noise augmentation sigma sampler', false),
      sigma_cond_config: config('embedder of the sigmas', false),
      is_ae: bool(false),
      scale_factor: num(1.0),
      disable_encoder_autocast: bool(false),
      en_and_decode_n_samples_a_time: int(null),
    },
    create: (p, ctx) =>
      atPath(ctx, `${ENC}.VideoPredictionEmbedderWithEncoder`, () => {
        const at = (k: string) => `${ctx.path === '' ? '' : `${ctx.path}.`}params.${k}`;
        const encoder = ctx.instantiate<VideoEncoderLike>(p.encoder_config, at('encoder_config'));
        const sampler = p.sigma_sampler_config ? ctx.instantiate<SigmaSamplerLike>(p.sigma_sampler_config, at('sigma_sampler_config')) : null;
        const sigmaCond = p.sigma_cond_config ? ctx.instantiate<unknown>(p.sigma_cond_config, at('sigma_cond_config')) : null;
        if (sigmaCond !== null && !(sigmaCond instanceof ConcatTimestepEmbedderND)) throw new Error('sigma_cond_config must build a ConcatTimestepEmbedderND');
        return new VideoPredictionEmbedderWithEncoder(
          p.n_cond_frames as number,
          p.n_copies as number,
          encoder,
          sampler,
          sigmaCond,
          p.is_ae as boolean,
          p.scale_factor as number,
          p.disable_encoder_autocast as boolean,
          p.en_and_decode_n_samples_a_time as number | null,
        );
      }),
  },
];

/** Registers (or replaces the placeholders of) the encoder targets. */
export function registerEncoderTargets(reg: Registry): void {
  for (const def of ENCODER_TARGETS) {
    if (reg.has(def.target)) reg.replace(def);
    else reg.register(def);
  }
}
