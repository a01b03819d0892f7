// High-level sampling: SamplingPipeline (api.py), the helpers (do_sample, do_img2img, turbo),
// model presets and image output.
export * from './api.js';
export * from './helpers.js';
export * from './presets.js';
export * from './output.js';
