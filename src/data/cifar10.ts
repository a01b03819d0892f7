// sgm.data.cifar10.CIFAR10Loader: the CIFAR-10 binary version (data_batch_1.bin .. data_batch_5.bin,
// test_batch.bin; records of 1 label byte + 3072 bytes, the R, G and B planes of 32 x 32, row-major),
// samples {jpg: float32 (3, 32, 32) in [-1, 1], cls: label}, as the reference's CIFAR10DataDictWrapper
// over torchvision's CIFAR10 with ToTensor and x * 2 - 1.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImageClassDataset, type ImageClassSample } from './dataset.js';
import { MapDataModule, type DataModuleOptions } from './datamodule.js';
import { DataFileError, DatasetNotFoundError } from './errors.js';

export const CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32;
export const CIFAR10_TRAIN_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'] as const;
export const CIFAR10_TEST_FILES = ['test_batch.bin'] as const;

const HOW_TO_GET =
  'Download the CIFAR-10 binary version (cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html), ' +
  'extract it, and set data_dir (or SGM_CIFAR10_DIR) to the cifar-10-batches-bin folder or its parent.';

/** The folder holding the .bin files: `dir` itself or `dir/cifar-10-batches-bin`. */
export function resolveCifar10Dir(dataDir?: string | null): string {
  const dir = dataDir || process.env.SGM_CIFAR10_DIR;
  if (!dir) throw new DatasetNotFoundError(`no CIFAR-10 data: data_dir is not set and SGM_CIFAR10_DIR is empty. ${HOW_TO_GET}`);
  for (const d of [dir, join(dir, 'cifar-10-batches-bin')]) {
    if ([...CIFAR10_TRAIN_FILES, ...CIFAR10_TEST_FILES].every((f) => existsSync(join(d, f)))) return d;
  }
  const missing = [...CIFAR10_TRAIN_FILES, ...CIFAR10_TEST_FILES].filter((f) => !existsSync(join(dir, f)));
  throw new DatasetNotFoundError(`CIFAR-10 binary files not found in ${dir} (nor in ${join(dir, 'cifar-10-batches-bin')}): missing ${missing.join(', ')}. ${HOW_TO_GET}`);
}

/** Parses one CIFAR-10 binary batch file's bytes into planar pixels and labels. */
export function parseCifar10Batch(buf: Uint8Array, path: string): { pixels: Uint8Array; labels: Uint8Array } {
  if (buf.length === 0) throw new DataFileError(path, 'empty CIFAR-10 batch file');
  if (buf.length % CIFAR10_RECORD_BYTES !== 0) {
    const whole = Math.floor(buf.length / CIFAR10_RECORD_BYTES);
    throw new DataFileError(
      path,
      `truncated or not a CIFAR-10 binary batch: ${buf.length} bytes is not a whole number of ${CIFAR10_RECORD_BYTES}-byte records ` +
        `(${whole} records and ${buf.length % CIFAR10_RECORD_BYTES} bytes left over)`,
    );
  }
  const n = buf.length / CIFAR10_RECORD_BYTES;
  const labels = new Uint8Array(n);
  const pixels = new Uint8Array(n * (CIFAR10_RECORD_BYTES - 1));
  for (let i = 0; i < n; i++) {
    const o = i * CIFAR10_RECORD_BYTES;
    const label = buf[o]!;
    if (label > 9) throw new DataFileError(path, `record ${i}: label ${label} is not a CIFAR-10 class 0..9 (is this the binary version?)`);
    labels[i] = label;
    pixels.set(buf.subarray(o + 1, o + CIFAR10_RECORD_BYTES), i * (CIFAR10_RECORD_BYTES - 1));
  }
  return { pixels, labels };
}

/** Reads and concatenates CIFAR-10 batch files (first `limit` records overall). */
export async function loadCifar10Dataset(dir: string, files: readonly string[], options: { limit?: number | null } = {}): Promise<ImageClassDataset> {
  const parts: { pixels: Uint8Array; labels: Uint8Array }[] = [];
  let count = 0;
  const limit = options.limit ?? Infinity;
  for (const f of files) {
    if (count >= limit) break;
    const path = join(dir, f);
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (e) {
      throw new DataFileError(path, `cannot read CIFAR-10 batch: ${(e as Error).message}. ${HOW_TO_GET}`, { cause: e });
    }
    const part = parseCifar10Batch(buf, path);
    parts.push(part);
    count += part.labels.length;
  }
  count = Math.min(count, limit);
  const plane = CIFAR10_RECORD_BYTES - 1;
  const pixels = new Uint8Array(count * plane);
  const labels = new Uint8Array(count);
  let at = 0;
  for (const p of parts) {
    const take = Math.min(p.labels.length, count - at);
    labels.set(p.labels.subarray(0, take), at);
    pixels.set(p.pixels.subarray(0, take * plane), at * plane);
    at += take;
  }
  return new ImageClassDataset(pixels, labels, [3, 32, 32]);
}

export interface CIFAR10LoaderOptions extends DataModuleOptions {
  /** Folder with the binary batches (or its parent); default $SGM_CIFAR10_DIR. */
  data_dir?: string | null;
}

export class CIFAR10Loader extends MapDataModule<ImageClassSample> {
  readonly dataDir: string;

  constructor(options: CIFAR10LoaderOptions) {
    super(options);
    this.dataDir = resolveCifar10Dir(options.data_dir);
  }

  protected override async load(): Promise<{ train: ImageClassDataset; test: ImageClassDataset }> {
    const [train, test] = await Promise.all([
      loadCifar10Dataset(this.dataDir, CIFAR10_TRAIN_FILES, { limit: this.limit }),
      loadCifar10Dataset(this.dataDir, CIFAR10_TEST_FILES, { limit: this.limit }),
    ]);
    return { train, test };
  }
}
