// sgm.data.dataset.StableDataModuleFromConfig: sdata-style datapipelines over WebDataset tar shards.
//   train: {datapipeline: {urls, pipeline_config: {shardshuffle, sample_shuffle}, decoders: [pil],
//           postprocessors: [mapper configs]}, loader: {batch_size, num_workers}}
import { ConfigError, type InstantiateContext } from '../config/index.js';
import type { Batch } from './types.js';
import { WebDataset, batchIterable, type Mapper } from './webdataset.js';

export interface PipelineSpec {
  urls: string[];
  shardShuffle: number;
  sampleShuffle: number;
  mappers: Mapper[];
  batchSize: number;
  numWorkers: number;
}

function dict(v: unknown): Record<string, unknown> | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

function parsePipeline(cfg: unknown, path: string, ctx: InstantiateContext): PipelineSpec {
  const c = dict(cfg);
  const dp = dict(c?.datapipeline);
  const loader = dict(c?.loader);
  if (dp === null || loader === null) throw new ConfigError(`${path}: requires the fields 'datapipeline' and 'loader'`, { path });
  const urlsRaw = dp.urls;
  const urls = typeof urlsRaw === 'string' ? [urlsRaw] : Array.isArray(urlsRaw) ? urlsRaw.map(String) : null;
  if (urls === null || urls.length === 0) throw new ConfigError(`${path}.datapipeline.urls: expected a list of tar shards or folders`, { path: `${path}.datapipeline.urls` });
  const pc = dict(dp.pipeline_config) ?? {};
  const decoders = dp.decoders;
  if (decoders !== undefined && decoders !== null && !(Array.isArray(decoders) && decoders.every((d) => d === 'pil'))) {
    throw new ConfigError(`${path}.datapipeline.decoders: only 'pil' (decode images to RGB) is supported`, { path: `${path}.datapipeline.decoders` });
  }
  const post = Array.isArray(dp.postprocessors) ? dp.postprocessors : [];
  const mappers = post.map((m, i) => ctx.instantiate<Mapper>(m, `${path}.datapipeline.postprocessors.${i}`));
  const batchSize = loader.batch_size;
  if (typeof batchSize !== 'number' || !Number.isInteger(batchSize) || batchSize <= 0) {
    throw new ConfigError(`${path}.loader.batch_size: expected a positive integer`, { path: `${path}.loader.batch_size` });
  }
  return {
    urls,
    shardShuffle: Number(pc.shardshuffle ?? 0),
    sampleShuffle: Number(pc.sample_shuffle ?? 0),
    mappers,
    batchSize,
    numWorkers: Number(loader.num_workers ?? 0),
  };
}

export class StableDataModuleFromConfig {
  readonly train: PipelineSpec;
  readonly validation: PipelineSpec | null;
  readonly test: PipelineSpec | null;
  seed = 23;

  constructor(params: Record<string, unknown>, ctx: InstantiateContext) {
    const at = (k: string): string => (ctx.path === '' ? `params.${k}` : `${ctx.path}.params.${k}`);
    this.train = parsePipeline(params.train, at('train'), ctx);
    this.validation = params.skip_val_loader === true ? null : params.validation ? parsePipeline(params.validation, at('validation'), ctx) : this.train;
    this.test = params.test ? parsePipeline(params.test, at('test'), ctx) : null;
  }

  private batches(spec: PipelineSpec, seed: number): AsyncIterable<Batch> {
    const ds = new WebDataset({ urls: spec.urls, shardShuffle: spec.shardShuffle, sampleShuffle: spec.sampleShuffle, mappers: spec.mappers, seed });
    return { [Symbol.asyncIterator]: () => batchIterable(ds, { batchSize: spec.batchSize, prefetch: 2 }) };
  }

  /** One pass over the training shards, batched. */
  trainDataloader(): AsyncIterable<Batch> {
    return this.batches(this.train, this.seed);
  }

  valDataloader(): AsyncIterable<Batch> {
    if (this.validation === null) throw new Error('StableDataModuleFromConfig: skip_val_loader is set: no validation loader');
    return this.batches(this.validation, this.seed + 1);
  }

  testDataloader(): AsyncIterable<Batch> {
    if (this.test === null) throw new Error('StableDataModuleFromConfig: no test pipeline configured');
    return this.batches(this.test, this.seed + 2);
  }
}
