// The key layouts of the single-file checkpoints (one table, used by models/load.ts).
//
// sgm-written files (sd_xl_base_1.0, sd_xl_refiner_1.0, sd_xl_turbo_1.0, sgm training runs) use the
// engine's own names: model.diffusion_model.* (UNet), first_stage_model.* (VAE),
// conditioner.embedders.N.* (text encoders in embedder order). The SD 2.x / SD-Turbo files were
// written by the ldm code: the text encoder lives under cond_stage_model.*, and the file also
// carries the DDPM schedule buffers, which sgm computes itself.

/** A rename of a checkpoint key prefix to the engine's prefix. */
export interface KeyMapRule {
  from: string;
  to: string;
  why: string;
}

/** Prefixes of the sgm single-file layout, by part of the engine. */
export const SGM_PREFIXES = {
  network: 'model.diffusion_model.',
  firstStage: 'first_stage_model.',
  conditioner: 'conditioner.embedders.',
  denoiser: 'denoiser.',
  ema: 'model_ema.',
} as const;

/**
 * Renames applied when the engine has no key of the file's name but has the renamed one (so an
 * sgm-format file is never touched). The ldm layouts put the (single) text encoder at
 * cond_stage_model; sgm has it as the first embedder.
 */
export const LAYOUT_KEY_MAPS: readonly KeyMapRule[] = [
  { from: 'cond_stage_model.model.', to: 'conditioner.embedders.0.model.', why: 'SD 2.x (ldm) layout: OpenCLIP text encoder' },
  { from: 'cond_stage_model.transformer.', to: 'conditioner.embedders.0.transformer.', why: 'SD 1.x (ldm) layout: CLIP text encoder' },
];

/** Buffers the engine computes from its config; a file may carry them (then they are loaded). */
export const COMPUTED_BUFFERS: ReadonlySet<string> = new Set(['sigmas']);

/** The 12 DDPM schedule buffers the ldm code saved with SD 1.x / 2.x; sgm never reads them. */
const LDM_SCHEDULE_BUFFERS = new Set([
  'betas',
  'alphas_cumprod',
  'alphas_cumprod_prev',
  'sqrt_alphas_cumprod',
  'sqrt_one_minus_alphas_cumprod',
  'log_one_minus_alphas_cumprod',
  'sqrt_recip_alphas_cumprod',
  'sqrt_recipm1_alphas_cumprod',
  'posterior_variance',
  'posterior_log_variance_clipped',
  'posterior_mean_coef1',
  'posterior_mean_coef2',
  'model_ema.decay',
  'model_ema.num_updates',
]);

/**
 * Why a file key the engine has no place for is harmless, or null when it is a real unexpected key.
 * `engineKeys` lets the rule see whether the engine keeps EMA weights.
 */
export function classifyUnusedKey(key: string, engineKeys: ReadonlySet<string>): string | null {
  if (LDM_SCHEDULE_BUFFERS.has(key)) return key.startsWith('model_ema.') ? 'EMA bookkeeping (this engine keeps no EMA)' : 'ldm DDPM schedule buffer (sgm computes its own sigmas)';
  if (key.endsWith('.position_ids')) return 'HF CLIP position_ids buffer (= arange; not a weight)';
  if (key.endsWith('.logit_scale')) return 'open_clip logit_scale (never used by sgm)';
  if (key.endsWith('.text_projection')) return 'open_clip text_projection (unused by an embedder without pooled output)';
  if (key.startsWith('model_ema.') && ![...engineKeys].some((k) => k.startsWith('model_ema.'))) return 'EMA weights (this engine keeps no EMA; the file\'s model.* weights are used)';
  return null;
}
