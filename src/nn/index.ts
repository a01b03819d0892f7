// nn: modules with PyTorch's names, layers, initialisation, state dicts.
export * from './module.js';
export * from './layers.js';
export * from './init.js';
