// sgm.data.mnist.MNISTLoader: MNIST-format data (MNIST, Fashion-MNIST) from a folder, samples
// {jpg: float32 (1, 28, 28) in [-1, 1], cls: label}, as the reference's MNISTDataDictWrapper over
// torchvision's MNIST with ToTensor and x * 2 - 1.
import { existsSync } from 'node:fs';
import { ImageClassDataset, type ImageClassSample } from './dataset.js';
import { MapDataModule, type DataModuleOptions } from './datamodule.js';
import { DatasetNotFoundError } from './errors.js';
import { hasMnistSplit, readMnistSplit, type MnistSplit } from './idx.js';

/** Where Debian's dataset-fashion-mnist package installs the files. */
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/**
 * The MNIST data folder: `dataDir` if given, else $SGM_MNIST_DIR, else the Debian package's
 * folder if it exists; otherwise an error that says how to get the data.
 */
export function resolveMnistDir(dataDir?: string | null): string {
  if (dataDir) {
    if (!existsSync(dataDir)) throw new DatasetNotFoundError(`MNIST data_dir ${dataDir} does not exist`);
    return dataDir;
  }
  const env = process.env.SGM_MNIST_DIR;
  if (env) {
    if (!existsSync(env)) throw new DatasetNotFoundError(`SGM_MNIST_DIR=${env} does not exist`);
    return env;
  }
  if (existsSync(DEBIAN_FASHION_MNIST_DIR)) return DEBIAN_FASHION_MNIST_DIR;
  throw new DatasetNotFoundError(
    'no MNIST data: install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist, files in ' +
      `${DEBIAN_FASHION_MNIST_DIR}), or set data_dir (or the SGM_MNIST_DIR environment variable) to a folder with ` +
      'train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz), t10k-labels-idx1-ubyte(.gz)',
  );
}

/** One split of an MNIST-format folder as a dataset of {jpg, cls} samples. */
export async function loadMnistDataset(dir: string, split: MnistSplit, options: { limit?: number | null } = {}): Promise<ImageClassDataset> {
  const a = await readMnistSplit(dir, split, options.limit == null ? {} : { limit: options.limit });
  return new ImageClassDataset(a.images, a.labels, [1, a.rows, a.cols]);
}

export interface MNISTLoaderOptions extends DataModuleOptions {
  /** Folder with the MNIST-format files (default: $SGM_MNIST_DIR, else the Debian package's). */
  data_dir?: string | null;
}

export class MNISTLoader extends MapDataModule<ImageClassSample> {
  readonly dataDir: string;

  constructor(options: MNISTLoaderOptions) {
    super(options);
    this.dataDir = resolveMnistDir(options.data_dir);
    // Fail at construction (config time) when a split is missing, not at the first batch.
    for (const split of ['train', 'test'] as const) {
      if (!hasMnistSplit(this.dataDir, split)) {
        const pre = split === 'train' ? 'train' : 't10k';
        throw new DatasetNotFoundError(
          `MNIST-format ${split} split not found in ${this.dataDir}: expected ${pre}-images-idx3-ubyte(.gz) and ${pre}-labels-idx1-ubyte(.gz). ` +
            'Install the Debian package dataset-fashion-mnist or set data_dir (or SGM_MNIST_DIR) to a folder with the MNIST files.',
        );
      }
    }
  }

  protected override async load(): Promise<{ train: ImageClassDataset; test: ImageClassDataset }> {
    const [train, test] = await Promise.all([
      loadMnistDataset(this.dataDir, 'train', { limit: this.limit }),
      loadMnistDataset(this.dataDir, 'test', { limit: this.limit }),
    ]);
    return { train, test };
  }
}
