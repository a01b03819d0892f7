// The data targets of the reference's configs: sgm.data.mnist.MNISTLoader,
// sgm.data.cifar10.CIFAR10Loader, sgm.data.dataset.StableDataModuleFromConfig and the sdata /
// torchvision transforms its datapipelines name.
import { ConfigError, atPath, opt, paramPath, req, type InstantiateContext, type ParamSpec, type Registry, type TargetDef } from '../config/index.js';
import { CIFAR10Loader } from './cifar10.js';
import { MNISTLoader } from './mnist.js';
import {
  addOriginalImageSizeAsTupleAndCropToSquare,
  imageTransforms,
  rescaler,
  resizeImage,
  toTensorImage,
  type ImageTransform,
} from './mappers.js';
import { StableDataModuleFromConfig } from './stable.js';
import type { Mapper } from './webdataset.js';

const COMMON: Record<string, ParamSpec> = {
  batch_size: req('int'),
  num_workers: opt('int', 0, 'accepted; loading is asynchronous in-process instead of worker processes'),
  shuffle: opt('bool', true),
  seed: opt('int', null, 'shuffling seed (default 23, main.py\'s default --seed)'),
  limit: opt('int', null, 'use only the first N examples of each split'),
};

function nonNull<T>(p: Record<string, unknown>, k: string): T | undefined {
  return p[k] === null || p[k] === undefined ? undefined : (p[k] as T);
}

function listOf<X>(ctx: InstantiateContext, p: Record<string, unknown>, name: string): X[] {
  const v = p[name];
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v)) throw new ConfigError(`${paramPath(ctx, name)}: expected a list of configs`, { path: paramPath(ctx, name) });
  return v.map((c, i) => ctx.instantiate<X>(c, `${paramPath(ctx, name)}.${i}`));
}

/** The params the map-style loaders share (COMMON plus data_dir), as constructor options. */
function loaderOptions(p: Record<string, unknown>) {
  return {
    batch_size: p.batch_size as number,
    num_workers: p.num_workers as number,
    shuffle: p.shuffle as boolean,
    seed: nonNull<number>(p, 'seed'),
    limit: nonNull<number>(p, 'limit'),
    data_dir: nonNull<string>(p, 'data_dir'),
  };
}

export const DATA_TARGETS: readonly TargetDef[] = [
  {
    target: 'sgm.data.mnist.MNISTLoader',
    params: {
      ...COMMON,
      prefetch_factor: opt('int', 2, 'batches prepared ahead'),
      data_dir: opt('string', null, 'MNIST-format folder (default $SGM_MNIST_DIR, else /usr/share/datasets/fashion-mnist from Debian\'s dataset-fashion-mnist)'),
    },
    create: (p, ctx) =>
      atPath(ctx, 'sgm.data.mnist.MNISTLoader', () =>
        new MNISTLoader({ ...loaderOptions(p), prefetch_factor: p.prefetch_factor as number }),
      ),
  },
  {
    target: 'sgm.data.cifar10.CIFAR10Loader',
    params: {
      ...COMMON,
      data_dir: opt('string', null, 'folder with the CIFAR-10 binary batches (default $SGM_CIFAR10_DIR)'),
    },
    create: (p, ctx) =>
      atPath(ctx, 'sgm.data.cifar10.CIFAR10Loader', () =>
        new CIFAR10Loader(loaderOptions(p)),
      ),
  },
  {
    target: 'sgm.data.dataset.StableDataModuleFromConfig',
    params: {
      train: req('dict', '{datapipeline: {urls, pipeline_config, decoders, postprocessors}, loader: {batch_size, num_workers}}'),
      validation: opt('dict', null),
      test: opt('dict', null),
      skip_val_loader: opt('bool', false),
      dummy: opt('bool', false, 'not supported'),
    },
    create: (p, ctx) => {
      if (p.dummy === true) throw new ConfigError(`${paramPath(ctx, 'dummy')}: the dummy dataset is not supported; point train.datapipeline.urls at tar shards`, { path: paramPath(ctx, 'dummy') });
      return atPath(ctx, 'sgm.data.dataset.StableDataModuleFromConfig', () => new StableDataModuleFromConfig(p, ctx));
    },
  },
  {
    target: 'sdata.mappers.TorchVisionImageTransforms',
    params: { transforms: req('list'), key: opt('string', 'jpg') },
    acceptsExtra: true,
    create: (p, ctx) => imageTransforms(p.key as string, listOf<ImageTransform>(ctx, p, 'transforms')) as Mapper,
  },
  {
    target: 'sdata.mappers.Rescaler',
    params: { key: opt('string', 'jpg'), isfloat: opt('bool', true), strict: opt('bool', true) },
    acceptsExtra: true,
    create: (p) => rescaler({ key: p.key as string, isfloat: p.isfloat as boolean, strict: p.strict as boolean }),
  },
  {
    target: 'sdata.mappers.AddOriginalImageSizeAsTupleAndCropToSquare',
    params: {
      h_key: opt('string', 'original_height'),
      w_key: opt('string', 'original_width'),
      image_key: opt('string', 'jpg'),
      use_data_key: opt('bool', true),
      data_key: opt('string', 'json'),
    },
    acceptsExtra: true,
    create: (p) =>
      addOriginalImageSizeAsTupleAndCropToSquare({
        h_key: p.h_key as string,
        w_key: p.w_key as string,
        image_key: p.image_key as string,
        use_data_key: p.use_data_key as boolean,
        data_key: p.data_key as string,
      }),
  },
  {
    target: 'torchvision.transforms.Resize',
    params: { size: req(['int', 'list']), interpolation: opt('int', 2, '0 nearest, 1 lanczos, 2 bilinear, 3 bicubic'), max_size: opt('int', null), antialias: opt('any', null) },
    create: (p, ctx) =>
      atPath(ctx, 'torchvision.transforms.Resize', () => {
        if (p.max_size !== null) throw new RangeError('max_size is not supported');
        const s = p.size as number | number[];
        return resizeImage(typeof s === 'number' ? s : s.length === 1 ? s[0]! : [s[0]!, s[1]!], p.interpolation as number);
      }),
  },
  {
    target: 'torchvision.transforms.ToTensor',
    params: {},
    create: () => toTensorImage(),
  },
];

export const DATA_TARGET_NAMES: readonly string[] = DATA_TARGETS.map((d) => d.target);

/** Registers (or replaces the placeholders of) the data targets. */
export function registerDataTargets(reg: Registry): void {
  for (const def of DATA_TARGETS) {
    if (reg.has(def.target)) reg.replace(def);
    else reg.register(def);
  }
}
