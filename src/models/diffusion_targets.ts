// Config target sgm.models.diffusion.DiffusionEngine: the reference's constructor params, nested
// configs instantiated through the context (errors name their config path), the network wrapped
// by `network_wrapper` (default OpenAIWrapper), `ckpt_path` loaded like init_from_ckpt.
import { ConfigError, paramPath, type InstantiateContext, type ParamSpec, type Registry, type TargetDef } from '../config/index.js';
import { IdentityWrapper, OpenAIWrapper, OPENAIUNETWRAPPER, type DiffusionModel } from '../modules/diffusionmodules/wrappers.js';
import { GeneralConditioner } from '../modules/encoders/modules.js';
import { DiffusionEngine, type DiffusionEngineParts, type EmaLike, type FirstStage, type WrappedNetwork } from './diffusion.js';
import { loadEngineCheckpoint, printLoadReport } from './load.js';
import { LitEma } from '../modules/ema.js';

const DM = 'sgm.modules.diffusionmodules';

/** network_wrapper names (get_obj_from_str in the reference) -> wrapper constructors. */
const WRAPPERS: Record<string, (m: DiffusionModel, compile: boolean) => WrappedNetwork> = {
  [OPENAIUNETWRAPPER]: (m, c) => new OpenAIWrapper({ diffusion_model: m, compile_model: c }) as unknown as WrappedNetwork,
  [`${DM}.wrappers.IdentityWrapper`]: (m, c) => new IdentityWrapper({ diffusion_model: m, compile_model: c }) as unknown as WrappedNetwork,
};


const cfg = (doc: string, required = false): ParamSpec => (required ? { type: 'config', required: true, doc } : { type: 'config', default: null, nullable: true, doc });

export const DIFFUSION_ENGINE_PARAMS: Record<string, ParamSpec> = {
  network_config: cfg('the diffusion network (UNetModel, VideoUNet, ...)', true),
  denoiser_config: cfg('the denoiser (Denoiser / DiscreteDenoiser with its scaling)', true),
  first_stage_config: cfg('the autoencoder (AutoencoderKL, AutoencodingEngine, IdentityFirstStage)', true),
  conditioner_config: cfg('the GeneralConditioner (default: no embedders)'),
  sampler_config: cfg('the sampler used by log_images / sample'),
  optimizer_config: { type: 'dict', default: null, nullable: true, doc: 'optimizer target + params (default torch.optim.AdamW)' },
  scheduler_config: { type: 'dict', default: null, nullable: true, doc: 'learning-rate schedule (LambdaLR lambda) config' },
  loss_fn_config: cfg('the training loss (StandardDiffusionLoss)'),
  network_wrapper: { type: 'string', default: null, nullable: true, doc: `wrapper class around the network (default ${OPENAIUNETWRAPPER})` },
  ckpt_path: { type: 'string', default: null, nullable: true, doc: 'a .safetensors checkpoint loaded after construction (non-strict, like init_from_ckpt)' },
  use_ema: { type: 'bool', default: false, doc: 'keep an exponential moving average of the network weights' },
  ema_decay_rate: { type: 'number', default: 0.9999 },
  scale_factor: { type: 'number', default: 1.0, doc: 'latent scale: z = scale_factor * encode(x)' },
  disable_first_stage_autocast: { type: 'bool', default: false, doc: 'float32 first stage under autocast (this port computes in float32 anyway)' },
  input_key: { type: 'string', default: 'jpg', doc: 'batch key of the images' },
  log_keys: { type: 'list', default: null, nullable: true, doc: 'conditioner input keys shown by log_images' },
  no_cond_log: { type: 'bool', default: false },
  compile_model: { type: 'bool', default: false, doc: 'torch.compile in the reference; every forward is one compiled graph here anyway' },
  en_and_decode_n_samples_a_time: { type: 'int', default: null, nullable: true, doc: 'first-stage chunk size (default: the whole batch)' },
};

export function createDiffusionEngine(p: Record<string, unknown>, ctx: InstantiateContext): DiffusionEngine {
  const build = <U>(name: string): U => ctx.instantiate<U>(p[name], paramPath(ctx, name));
  const network = build<DiffusionModel>('network_config');
  const wrapperName = (p['network_wrapper'] as string | null) ?? OPENAIUNETWRAPPER;
  const wrap = WRAPPERS[wrapperName];
  if (!wrap) {
    throw new ConfigError(`${paramPath(ctx, 'network_wrapper')}: unknown network wrapper '${wrapperName}'; known: ${Object.keys(WRAPPERS).join(', ')}`, { path: paramPath(ctx, 'network_wrapper') });
  }
  const model = wrap(network, p['compile_model'] as boolean);
  const denoiser = build<DiffusionEngineParts['denoiser']>('denoiser_config');
  const sampler = p['sampler_config'] === null ? null : build<NonNullable<DiffusionEngineParts['sampler']>>('sampler_config');
  // UNCONDITIONAL_CONFIG: a conditioner without embedders.
  const conditioner = p['conditioner_config'] === null ? new GeneralConditioner([]) : build<GeneralConditioner>('conditioner_config');
  const first_stage_model = build<FirstStage>('first_stage_config');
  const loss_fn = p['loss_fn_config'] === null ? null : build<NonNullable<DiffusionEngineParts['loss_fn']>>('loss_fn_config');
  const use_ema = p['use_ema'] as boolean;
  let model_ema: EmaLike | null = null;
  if (use_ema) {
    model_ema = new LitEma(model, p['ema_decay_rate'] as number) as unknown as EmaLike;
  }
  const engine = new DiffusionEngine(
    { model, denoiser, conditioner, first_stage_model, sampler, loss_fn, model_ema },
    {
      optimizer_config: p['optimizer_config'] as Record<string, unknown> | null,
      scheduler_config: p['scheduler_config'] as Record<string, unknown> | null,
      use_ema,
      ema_decay_rate: p['ema_decay_rate'] as number,
      scale_factor: p['scale_factor'] as number,
      disable_first_stage_autocast: p['disable_first_stage_autocast'] as boolean,
      input_key: p['input_key'] as string,
      log_keys: p['log_keys'] as string[] | null,
      no_cond_log: p['no_cond_log'] as boolean,
      compile_model: p['compile_model'] as boolean,
      en_and_decode_n_samples_a_time: p['en_and_decode_n_samples_a_time'] as number | null,
    },
  );
  const ckpt = p['ckpt_path'] as string | null;
  if (ckpt !== null) printLoadReport(ckpt, loadEngineCheckpoint(engine, ckpt));
  return engine;
}

export const DIFFUSION_TARGETS: readonly TargetDef[] = [
  { target: 'sgm.models.diffusion.DiffusionEngine', params: DIFFUSION_ENGINE_PARAMS, create: createDiffusionEngine },
];

export function registerDiffusionTargets(reg: Registry): void {
  for (const def of DIFFUSION_TARGETS) {
    if (reg.has(def.target)) reg.replace(def);
    else reg.register(def);
  }
}
