// data/: datasets (MNIST IDX, CIFAR-10 binary, WebDataset tar shards), transforms, batching.
export * from './errors.js';
export * from './types.js';
export * from './normalize.js';
export * from './idx.js';
export * from './dataset.js';
export * from './loader.js';
export * from './datamodule.js';
export * from './mnist.js';
export * from './cifar10.js';
export * from './tar.js';
export * from './webdataset.js';
export * from './mappers.js';
export * from './stable.js';
export { DATA_TARGETS, DATA_TARGET_NAMES, registerDataTargets } from './targets.js';
