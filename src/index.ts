// sgm-ts: the library entry point.
export { VERSION } from './version.js';
export * as tensor from './tensor/index.js';
export * as nn from './nn/index.js';
export * from './io/safetensors.js';
export * from './io/checkpoint.js';
export * as config from './config/index.js';
export { registry } from './registry.js';
export * as tokenizers from './tokenizers/index.js';
