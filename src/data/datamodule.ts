// What the reference's LightningDataModules share: batch_size / num_workers / prefetch_factor /
// shuffle, a train dataset and a test dataset (the test split also serves validation), and the
// three dataloaders.
import { Generator } from '../tensor/random.js';
import { DataLoader } from './loader.js';
import type { MapDataset, Sample } from './types.js';

/** main.py's default --seed: the shuffling seed when none is given. */
export const DEFAULT_DATA_SEED = 23;

export interface DataModuleOptions {
  batch_size: number;
  /** Accepted for the reference's configs; loading is asynchronous in this process instead. */
  num_workers?: number;
  /** Batches prepared ahead (torch: per worker; here: in total). Default 2. */
  prefetch_factor?: number;
  shuffle?: boolean;
  /** Shuffling seed (default 23, main.py's default --seed). */
  seed?: number | bigint;
  /** Use only the first N examples of each split (tests, smoke runs). */
  limit?: number | null;
}

export abstract class MapDataModule<S extends Sample = Sample> {
  readonly batchSize: number;
  readonly numWorkers: number;
  readonly prefetchFactor: number;
  readonly shuffle: boolean;
  readonly seed: number | bigint;
  readonly limit: number | null;
  protected train: MapDataset<S> | null = null;
  protected test: MapDataset<S> | null = null;
  private setupPromise: Promise<void> | null = null;

  constructor(options: DataModuleOptions) {
    const { batch_size } = options;
    if (!Number.isInteger(batch_size) || batch_size <= 0) throw new RangeError(`batch_size must be a positive integer, got ${batch_size}`);
    const limit = options.limit ?? null;
    if (limit !== null && (!Number.isInteger(limit) || limit < 0)) throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
    this.batchSize = batch_size;
    this.numWorkers = options.num_workers ?? 0;
    this.prefetchFactor = options.prefetch_factor ?? 2;
    this.shuffle = options.shuffle ?? true;
    this.seed = options.seed ?? DEFAULT_DATA_SEED;
    this.limit = limit;
  }

  /** Reads both splits (once; later calls return the same promise). */
  setup(): Promise<void> {
    this.setupPromise ??= this.load().then(({ train, test }) => {
      this.train = train;
      this.test = test;
    });
    return this.setupPromise;
  }

  protected abstract load(): Promise<{ train: MapDataset<S>; test: MapDataset<S> }>;

  get trainDataset(): MapDataset<S> {
    return this.need(this.train);
  }

  get testDataset(): MapDataset<S> {
    return this.need(this.test);
  }

  private need(d: MapDataset<S> | null): MapDataset<S> {
    if (d === null) throw new Error(`${this.constructor.name}: call 'await setup()' before using the datasets or dataloaders`);
    return d;
  }

  private loader(d: MapDataset<S>, generator?: Generator): DataLoader<S> {
    return new DataLoader(d, {
      batchSize: this.batchSize,
      shuffle: this.shuffle,
      prefetch: this.prefetchFactor,
      generator: generator ?? new Generator(this.seed),
    });
  }

  /** The training batches (shuffled unless shuffle is false); pass a generator to share one. */
  trainDataloader(generator?: Generator): DataLoader<S> {
    return this.loader(this.trainDataset, generator);
  }

  /** Validation uses the test split, as the reference does. */
  valDataloader(generator?: Generator): DataLoader<S> {
    return this.loader(this.testDataset, generator);
  }

  testDataloader(generator?: Generator): DataLoader<S> {
    return this.loader(this.testDataset, generator);
  }

  // The reference's (Lightning's) method names.
  train_dataloader(): DataLoader<S> {
    return this.trainDataloader();
  }

  val_dataloader(): DataLoader<S> {
    return this.valDataloader();
  }

  test_dataloader(): DataLoader<S> {
    return this.testDataloader();
  }
}
