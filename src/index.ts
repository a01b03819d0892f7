// sgm-ts: the library entry point.
export { VERSION } from './version.js';
export * as tensor from './tensor/index.js';
export * as nn from './nn/index.js';
export * from './io/safetensors.js';
export * from './io/checkpoint.js';
export * as config from './config/index.js';
export { registry } from './registry.js';
export * as tokenizers from './tokenizers/index.js';
// The sgm framework and its applications.
export { DiffusionEngine } from './models/diffusion.js';
export { loadModelFromConfig, loadEngineCheckpoint, CheckpointError, type CheckpointLoadReport } from './models/load.js';
export * as inference from './inference/index.js';
export * as training from './training/index.js';
export * as data from './data/index.js';
export * as watermark from './watermark/dwtdct.js';
