// sgm/models/autoencoder.py for inference: AbstractAutoencoder, AutoencodingEngine (encoder ->
// regularizer, decoder; SVD's first stage), AutoencodingEngineLegacy / AutoencoderKL /
// AutoencoderKLModeOnly (the SD/SDXL first stages: quant_conv and post_quant_conv around the
// Gaussian regularizer), IdentityFirstStage. Training pieces (optimizers, losses, EMA, logging)
// are not here: `loss_config` is built (torch.nn.Identity in the inference configs) and not used.
//
// Nested `*_config` params are built with instantiateFromConfig (the default registry: import
// src/registry.ts, or pass `instantiate`), or may be given as modules already built.
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/index.js';
import * as nn from '../nn/index.js';
import { instantiateFromConfig } from '../config/index.js';
import { Decoder, Encoder, type DecoderKwargs, type EncoderParams } from '../modules/diffusionmodules/model.js';
import {
  DiagonalGaussianRegularizer,
  type AbstractRegularizer,
  type RegLog,
  type RegularizerOptions,
} from '../modules/autoencoding/regularizers/index.js';

/** Builds a nested `*_config` (`path` names it in errors). */
export type Instantiate = <U>(cfg: unknown, path: string) => U;

const defaultInstantiate: Instantiate = <U>(cfg: unknown, path: string): U => instantiateFromConfig<U>(cfg, { path });

/** A `*_config` param: a config mapping with `target`, or a module built already. */
export type ConfigOrModule = Record<string, unknown> | nn.Module;

export interface AbstractAutoencoderParams {
  /** EMA of the weights (LitEma): a training feature, not supported here. */
  ema_decay?: number | null;
  monitor?: string | null;
  input_key?: string;
}

/** The base of the autoencoders: `encode`, `decode`, `get_input`. */
export abstract class AbstractAutoencoder extends nn.Module {
  readonly input_key: string;
  readonly use_ema: boolean;
  readonly monitor: string | undefined;

  constructor(params: AbstractAutoencoderParams = {}) {
    super();
    this.input_key = params.input_key ?? 'jpg';
    this.use_ema = params.ema_decay !== undefined && params.ema_decay !== null;
    if (this.use_ema) {
      throw new Error(
        `${new.target.name}: ema_decay (LitEma weights kept beside the model, model_ema.* keys) is a training feature that is not supported; ` +
          'remove ema_decay from the config for inference',
      );
    }
    if (params.monitor !== undefined && params.monitor !== null) this.monitor = params.monitor;
  }

  abstract get_input(batch: unknown): unknown;
  abstract encode(x: unknown, ...args: unknown[]): unknown;
  abstract decode(z: unknown, ...args: unknown[]): unknown;
}

function rejectCheckpointParams(cls: string, params: { ckpt_path?: unknown; ckpt_engine?: unknown }): void {
  if ((params.ckpt_path ?? null) !== null || (params.ckpt_engine ?? null) !== null) {
    throw new Error(
      `${cls}: ckpt_path / ckpt_engine are not supported (the reference's sgm.modules.checkpoint.CheckpointEngine does not exist at ` +
        'this version); build the model, then load the weights with loadStateDict',
    );
  }
}

export interface AutoencodingEngineParams extends AbstractAutoencoderParams {
  encoder_config: ConfigOrModule;
  decoder_config: ConfigOrModule;
  /** Training loss; torch.nn.Identity when absent. Built, never called here. */
  loss_config?: ConfigOrModule | null;
  regularizer_config: ConfigOrModule;
  optimizer_config?: Record<string, unknown> | null;
  lr_g_factor?: number;
  trainable_ae_params?: string[][] | null;
  ae_optimizer_args?: Array<Record<string, unknown>> | null;
  trainable_disc_params?: string[][] | null;
  disc_optimizer_args?: Array<Record<string, unknown>> | null;
  disc_start_iter?: number;
  diff_boost_factor?: number;
  ckpt_engine?: unknown;
  ckpt_path?: string | null;
  additional_decode_keys?: string[] | null;
}

/** Options of encode beyond the reference's arguments: the noise of a sampling regularizer. */
export type EncodeOptions = RegularizerOptions;

/**
 * encoder -> regularization (encode), decoder (decode); no quant convs. SVD's first stage:
 * Encoder + DiagonalGaussianRegularizer + temporal_ae.VideoDecoder (decode needs `{ timesteps }`).
 */
export class AutoencodingEngine extends AbstractAutoencoder {
  static readonly ARGS: Record<string, string[]> = {
    encode: ['x', 'return_reg_log', 'unregularized'],
    decode: ['z', '**kwargs'],
    forward: ['x', '**kwargs'],
  };
  encoder: nn.Module & { forward(x: Tensor): Tensor };
  decoder: nn.Module & { forward(z: Tensor, kwargs?: DecoderKwargs): Tensor };
  loss: nn.Module;
  regularization: AbstractRegularizer;
  readonly optimizer_config: Record<string, unknown>;
  readonly diff_boost_factor: number;
  readonly disc_start_iter: number;
  readonly lr_g_factor: number;
  readonly trainable_ae_params: string[][] | null;
  readonly ae_optimizer_args: Array<Record<string, unknown>>;
  readonly trainable_disc_params: string[][] | null;
  readonly disc_optimizer_args: Array<Record<string, unknown>>;
  readonly additional_decode_keys: Set<string>;

  /** `instantiate` builds the nested configs (default: instantiateFromConfig on the default registry). */
  constructor(params: AutoencodingEngineParams, instantiate: Instantiate = defaultInstantiate, path = '') {
    super(params);
    rejectCheckpointParams(new.target.name, params);
    const at = (name: string): string => (path ? `${path}.params.${name}` : `params.${name}`);
    const build = <U>(name: keyof AutoencodingEngineParams, v: unknown): U => {
      if (v instanceof nn.Module) return v as U;
      if (v === undefined || v === null) throw new TypeError(`${new.target.name}: missing required argument ${String(name)}`);
      return instantiate<U>(v, at(String(name)));
    };
    this.encoder = build('encoder_config', params.encoder_config);
    this.decoder = build('decoder_config', params.decoder_config);
    this.loss = build('loss_config', params.loss_config ?? { target: 'torch.nn.Identity' });
    this.regularization = build('regularizer_config', params.regularizer_config);
    this.optimizer_config = params.optimizer_config ?? { target: 'torch.optim.Adam' };
    this.diff_boost_factor = params.diff_boost_factor ?? 3.0;
    this.disc_start_iter = params.disc_start_iter ?? 0;
    this.lr_g_factor = params.lr_g_factor ?? 1.0;
    this.trainable_ae_params = params.trainable_ae_params ?? null;
    this.ae_optimizer_args = this.trainable_ae_params ? (params.ae_optimizer_args ?? this.trainable_ae_params.map(() => ({}))) : [{}];
    if (this.ae_optimizer_args.length !== (this.trainable_ae_params?.length ?? 1)) {
      throw new Error(`${new.target.name}: ae_optimizer_args must have one entry per trainable_ae_params group`);
    }
    this.trainable_disc_params = params.trainable_disc_params ?? null;
    this.disc_optimizer_args = this.trainable_disc_params ? (params.disc_optimizer_args ?? this.trainable_disc_params.map(() => ({}))) : [{}];
    if (this.disc_optimizer_args.length !== (this.trainable_disc_params?.length ?? 1)) {
      throw new Error(`${new.target.name}: disc_optimizer_args must have one entry per trainable_disc_params group`);
    }
    this.additional_decode_keys = new Set(params.additional_decode_keys ?? []);
  }

  /** batch[input_key]: images in [-1, 1], channels first. */
  get_input(batch: Record<string, unknown>): unknown {
    return batch[this.input_key];
  }

  get_last_layer(): nn.Parameter {
    const d = this.decoder as unknown as { get_last_layer?: () => nn.Parameter };
    if (!d.get_last_layer) throw new Error(`${this.decoder.constructor.name} has no get_last_layer`);
    return d.get_last_layer();
  }

  /**
   * z = encoder(x); unregularized: [z, {}]; else the regularizer's [z, log], returned whole with
   * return_reg_log. `opts` picks the sampling noise (default: the default generator, as torch.randn).
   */
  encode(x: Tensor, return_reg_log?: false, unregularized?: false, opts?: EncodeOptions): Tensor;
  encode(x: Tensor, return_reg_log: boolean, unregularized: true, opts?: EncodeOptions): [Tensor, RegLog];
  encode(x: Tensor, return_reg_log: true, unregularized?: boolean, opts?: EncodeOptions): [Tensor, RegLog];
  encode(x: Tensor, return_reg_log?: boolean, unregularized?: boolean, opts?: EncodeOptions): Tensor | [Tensor, RegLog];
  encode(x: Tensor, return_reg_log = false, unregularized = false, opts: EncodeOptions = {}): Tensor | [Tensor, RegLog] {
    const z = this.encoder.forward(x);
    if (unregularized) return [z, {}];
    const [zr, reg_log] = this.regularization.forward(z, opts);
    return return_reg_log ? [zr, reg_log] : zr;
  }

  /** decoder(z, **kwargs): `{ timesteps }` for a VideoDecoder. */
  decode(z: Tensor, kwargs: DecoderKwargs = {}): Tensor {
    return this.decoder.forward(z, kwargs);
  }

  /** [z, decode(z), reg_log]. */
  forward(x: Tensor, additional_decode_kwargs: DecoderKwargs = {}, opts: EncodeOptions = {}): [Tensor, Tensor, RegLog] {
    const [z, reg_log] = this.encode(x, true, false, opts);
    const dec = this.decode(z, additional_decode_kwargs);
    return [z, dec, reg_log];
  }
}

/** ddconfig of the legacy autoencoders: Encoder and Decoder params in one mapping. */
export type DDConfig = EncoderParams & { give_pre_end?: boolean; tanh_out?: boolean };

export interface AutoencodingEngineLegacyParams extends Omit<AutoencodingEngineParams, 'encoder_config' | 'decoder_config' | 'regularizer_config'> {
  embed_dim: number;
  ddconfig: DDConfig;
  /** Encode/decode at most this many samples at a time. */
  max_batch_size?: number | null;
  regularizer_config: ConfigOrModule;
  /** Deprecated spelling of loss_config (AutoencoderKL). */
  lossconfig?: ConfigOrModule | null;
}

/**
 * Encoder and Decoder built from one `ddconfig`, with a 1x1 quant_conv after the encoder
 * (2*z_channels -> 2*embed_dim with double_z) and a 1x1 post_quant_conv before the decoder.
 */
export class AutoencodingEngineLegacy extends AutoencodingEngine {
  static override readonly ARGS: Record<string, string[]> = {
    encode: ['x', 'return_reg_log'],
    decode: ['z', '**kwargs'],
    forward: ['x', '**kwargs'],
  };
  readonly max_batch_size: number | null;
  quant_conv: nn.Conv2d;
  post_quant_conv: nn.Conv2d;
  readonly embed_dim: number;

  constructor(params: AutoencodingEngineLegacyParams, instantiate: Instantiate = defaultInstantiate, path = '') {
    const { embed_dim, ddconfig, max_batch_size, lossconfig, ...rest } = params;
    if (embed_dim === undefined || embed_dim === null) throw new TypeError(`${new.target.name}: missing required argument embed_dim`);
    if (!ddconfig || typeof ddconfig !== 'object') throw new TypeError(`${new.target.name}: missing required argument ddconfig`);
    rejectCheckpointParams(new.target.name, params);
    super(
      {
        ...rest,
        loss_config: rest.loss_config ?? lossconfig ?? null,
        encoder_config: new Encoder(ddconfig),
        decoder_config: new Decoder(ddconfig),
      },
      instantiate,
      path,
    );
    this.max_batch_size = max_batch_size ?? null;
    const double_z = ddconfig.double_z ?? true;
    const zc = ddconfig.z_channels;
    this.quant_conv = new nn.Conv2d((1 + (double_z ? 1 : 0)) * zc, (1 + (double_z ? 1 : 0)) * embed_dim, 1);
    this.post_quant_conv = new nn.Conv2d(embed_dim, zc, 1);
    this.embed_dim = embed_dim;
  }

  private batched(x: Tensor, fn: (xb: Tensor) => Tensor): Tensor {
    const bs = this.max_batch_size;
    if (bs === null || x.shape[0]! <= bs) return fn(x);
    const n = x.shape[0]!;
    const parts: Tensor[] = [];
    for (let i = 0; i < n; i += bs) parts.push(fn(T.slice(x, 0, i, Math.min(i + bs, n))));
    return T.concat(parts, 0);
  }

  /**
   * moments = quant_conv(encoder(x)), then the regularizer. `unregularized` (not in the reference's
   * legacy signature) returns [moments, {}].
   */
  override encode(x: Tensor, return_reg_log?: false, unregularized?: false, opts?: EncodeOptions): Tensor;
  override encode(x: Tensor, return_reg_log: boolean, unregularized: true, opts?: EncodeOptions): [Tensor, RegLog];
  override encode(x: Tensor, return_reg_log: true, unregularized?: boolean, opts?: EncodeOptions): [Tensor, RegLog];
  override encode(x: Tensor, return_reg_log?: boolean, unregularized?: boolean, opts?: EncodeOptions): Tensor | [Tensor, RegLog];
  override encode(x: Tensor, return_reg_log = false, unregularized = false, opts: EncodeOptions = {}): Tensor | [Tensor, RegLog] {
    const z = this.batched(x, (xb) => this.quant_conv.forward(this.encoder.forward(xb)));
    if (unregularized) return [z, {}];
    const [zr, reg_log] = this.regularization.forward(z, opts);
    return return_reg_log ? [zr, reg_log] : zr;
  }

  /** decoder(post_quant_conv(z), **decoder_kwargs). */
  override decode(z: Tensor, decoder_kwargs: DecoderKwargs = {}): Tensor {
    return this.batched(z, (zb) => this.decoder.forward(this.post_quant_conv.forward(zb), decoder_kwargs));
  }
}

export type AutoencoderKLParams = Omit<AutoencodingEngineLegacyParams, 'regularizer_config'>;

/** The KL autoencoder of SD 2.x / SDXL: DiagonalGaussianRegularizer (sampling). */
export class AutoencoderKL extends AutoencodingEngineLegacy {
  constructor(params: AutoencoderKLParams, instantiate: Instantiate = defaultInstantiate, path = '') {
    super({ ...params, regularizer_config: new DiagonalGaussianRegularizer({ sample: true }) }, instantiate, path);
  }
}

/** AutoencoderKL whose encode returns the posterior mean (DiagonalGaussianRegularizer(sample=False)). */
export class AutoencoderKLModeOnly extends AutoencodingEngineLegacy {
  constructor(params: AutoencoderKLParams, instantiate: Instantiate = defaultInstantiate, path = '') {
    super({ ...params, regularizer_config: new DiagonalGaussianRegularizer({ sample: false }) }, instantiate, path);
  }
}

/** No first stage: encode and decode return their input. */
export class IdentityFirstStage extends AbstractAutoencoder {
  constructor(params: AbstractAutoencoderParams = {}) {
    super(params);
  }

  get_input<X>(x: X): X {
    return x;
  }

  encode<X>(x: X, ..._args: unknown[]): X {
    return x;
  }

  decode<X>(x: X, ..._args: unknown[]): X {
    return x;
  }
}
