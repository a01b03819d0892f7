// Sampled images -> PNG files, as the reference's perform_save_locally does it
// (sgm/inference/helpers.py, scripts/demo/streamlit_helpers.py):
//   samples = embed_watermark(samples)                     # whole batch, float [0, 1]
//   for sample in samples:
//       Image.fromarray((255.0 * sample_hwc).astype(np.uint8)).save(f"{base_count:09}.png")
// with base_count = len(os.listdir(save_path)). Differences, on purpose: names that already exist are
// skipped instead of overwritten, files are written atomically, PNGs carry text metadata (including
// whether the watermark was applied), and an optional grid image is written.
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AtomicWriteError, writeFileAtomic } from '../io/atomic.js';
import { encodePng } from '../io/png.js';
import { VERSION } from '../version.js';
import { embedWatermarkRgbChw } from '../watermark/dwtdct.js';

/** The `watermark` text value of watermarked files. */
export const WATERMARK_DESCRIPTION = 'dwtDct 0xB3EC907BB19E (invisible-watermark, 48 bits)';
/** dwtDct needs at least this many pixels (H * W), i.e. the area of 256x256. */
export const MIN_WATERMARK_PIXELS = 256 * 256;

/** Bad sample shapes, an image too small for the watermark, a failed write. */
export class OutputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutputError';
  }
}

function checkBatch(what: string, samples: Float32Array, n: number, c: number, h: number, w: number): void {
  for (const [k, v] of [['n', n], ['c', c], ['h', h], ['w', w]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new OutputError(`${what}: ${k} must be a positive integer, got ${v}`);
  }
  if (c !== 3) throw new OutputError(`${what}: expected 3 (RGB) channels, got ${c}`);
  if (samples.length !== n * c * h * w) {
    throw new OutputError(`${what}: expected ${n * c * h * w} values for ${n}x${c}x${h}x${w}, got ${samples.length}`);
  }
}

/**
 * Sample `index` of an NCHW float batch in [0, 1] as H x W x 3 uint8, the reference's
 * `(255.0 * x).astype(np.uint8)`: a float32 product, then truncation toward zero (0.99999 -> 254,
 * 1.0 -> 255). Values outside [0, 1] (never produced by do_sample's clamp) saturate and NaN becomes 0
 * instead of numpy's platform-dependent wrap-around.
 */
export function toUint8Hwc(samples: Float32Array, n: number, c: number, h: number, w: number, index: number): Uint8Array {
  checkBatch('toUint8Hwc', samples, n, c, h, w);
  if (!Number.isInteger(index) || index < 0 || index >= n) throw new OutputError(`toUint8Hwc: index ${index} is outside 0..${n - 1}`);
  const hw = h * w;
  const base = index * 3 * hw;
  const out = new Uint8Array(3 * hw);
  for (let ch = 0; ch < 3; ch++) {
    const src = base + ch * hw;
    for (let p = 0; p < hw; p++) {
      // float32 * float32 is exact in float64, so fround gives numpy's float32 product
      const v = Math.trunc(Math.fround(255 * samples[src + p]!));
      out[3 * p + ch] = v > 255 ? 255 : v > 0 ? v : 0; // NaN > 0 is false -> 0
    }
  }
  return out;
}

/** Whether dwtDct can watermark an H x W image (the reference refuses fewer than 256x256 pixels). */
export function canWatermark(h: number, w: number): boolean {
  return h * w >= MIN_WATERMARK_PIXELS;
}

/**
 * The reference's `embed_watermark(samples)` on an NCHW float batch in [0, 1]: each image gets the
 * 48-bit dwtDct watermark; returns a new NCHW float32 batch in [0, 1]. Throws for images with fewer
 * than 256x256 pixels, which dwtDct cannot carry.
 */
export function watermarkSamples(samples: Float32Array, n: number, h: number, w: number): Float32Array {
  checkBatch('watermarkSamples', samples, n, 3, h, w);
  if (!canWatermark(h, w)) {
    throw new OutputError(
      `cannot watermark ${w}x${h} images: the dwtDct watermark needs at least 256x256 = ${MIN_WATERMARK_PIXELS} pixels (H*W), got ${h * w}; ` +
        `sample at 256x256 or larger, or save without the watermark (watermark: false / 'auto')`,
    );
  }
  const size = 3 * h * w;
  const out = new Float32Array(n * size);
  for (let i = 0; i < n; i++) out.set(embedWatermarkRgbChw(samples.subarray(i * size, (i + 1) * size), h, w), i * size);
  return out;
}

/**
 * The pixels of the PNG files perform_save_locally writes, N x H x W x 3 uint8 (the fixtures'
 * `saved_png`): watermarked first when `watermark`, then `toUint8Hwc` per sample.
 */
export function savedPngPixels(samples: Float32Array, n: number, h: number, w: number, watermark: boolean): Uint8Array {
  const x = watermark ? watermarkSamples(samples, n, h, w) : samples;
  checkBatch('savedPngPixels', x, n, 3, h, w);
  const size = 3 * h * w;
  const out = new Uint8Array(n * size);
  for (let i = 0; i < n; i++) out.set(toUint8Hwc(x, n, 3, h, w, i), i * size);
  return out;
}

export interface GridOptions {
  /** images per row (default ceil(sqrt(count))) */
  nrow?: number;
  /** pixels between and around images (default 2, torchvision's make_grid) */
  padding?: number;
  /** value of the padding pixels (default 0) */
  padValue?: number;
}

/**
 * torchvision's make_grid on uint8 H x W x 3 images: `min(nrow, count)` columns,
 * `ceil(count / columns)` rows, image k at row floor(k / columns), column k % columns, placed at
 * y = padding + row * (h + padding), x = padding + col * (w + padding); everything else `padValue`.
 */
export function makeGrid(images: readonly Uint8Array[], h: number, w: number, options: GridOptions = {}): { data: Uint8Array; width: number; height: number } {
  const count = images.length;
  if (count === 0) throw new OutputError('makeGrid: no images');
  const padding = options.padding ?? 2;
  const padValue = options.padValue ?? 0;
  const nrow = options.nrow ?? Math.ceil(Math.sqrt(count));
  if (!Number.isInteger(nrow) || nrow < 1) throw new OutputError(`makeGrid: nrow must be a positive integer, got ${nrow}`);
  if (!Number.isInteger(padding) || padding < 0) throw new OutputError(`makeGrid: padding must be a non-negative integer, got ${padding}`);
  const cols = Math.min(nrow, count);
  const rows = Math.ceil(count / cols);
  const width = cols * (w + padding) + padding;
  const height = rows * (h + padding) + padding;
  const data = new Uint8Array(width * height * 3).fill(padValue);
  images.forEach((img, k) => {
    if (img.length !== h * w * 3) throw new OutputError(`makeGrid: image ${k} has ${img.length} bytes, expected ${h * w * 3} for ${w}x${h}x3`);
    const y0 = padding + Math.floor(k / cols) * (h + padding);
    const x0 = padding + (k % cols) * (w + padding);
    for (let y = 0; y < h; y++) data.set(img.subarray(y * w * 3, (y + 1) * w * 3), ((y0 + y) * width + x0) * 3);
  });
  return { data, width, height };
}

export interface SaveSamplesOptions {
  /** batch size */
  n: number;
  h: number;
  w: number;
  /** folder for the files; created if missing */
  outDir: string;
  /**
   * true (default): embed the reference's invisible watermark, and throw for images under 256x256
   * pixels. 'auto': the same, but images too small are saved without it after a warning. false: none.
   */
  watermark?: boolean | 'auto';
  /**
   * PNG text metadata: one record for every file, or a function of the sample index. Keys must be
   * valid PNG keywords. `watermark` and `software` are always set by saveSamples and override the
   * caller's.
   */
  metadata?: Record<string, string> | ((index: number) => Record<string, string>);
  /** also write a grid of the batch (true: default layout) */
  grid?: boolean | GridOptions;
  /** caller metadata of the grid (default: `metadata` when it is a record, nothing when a function) */
  gridMetadata?: Record<string, string>;
  /** file name prefix (default ''): files are `{prefix}{count:09}.png` and `{prefix}grid-{count:09}.png` */
  prefix?: string;
  /** where the 'auto' warning goes (default console.warn, i.e. stderr) */
  onWarning?: (message: string) => void;
}

export interface SavedSamples {
  /** the sample files, in batch order */
  files: string[];
  /** the grid file, when one was requested */
  grid: string | null;
}

const pad9 = (k: number) => String(k).padStart(9, '0');

/** Writes `bytes` under the first free name `name(k)`, k = start, start + 1, ...; returns [path, k]. */
async function writeUnique(outDir: string, name: (k: number) => string, start: number, bytes: Uint8Array): Promise<[string, number]> {
  for (let k = start; ; k++) {
    const path = join(outDir, name(k));
    try {
      await writeFileAtomic(path, bytes, { exclusive: true });
      return [path, k];
    } catch (e) {
      if (e instanceof AtomicWriteError && e.code === 'EEXIST') continue; // taken (maybe by a concurrent run)
      throw e;
    }
  }
}

/**
 * Saves an NCHW float batch in [0, 1] (do_sample's output) as PNG files, like perform_save_locally:
 * `{count:09}.png` where count starts at the number of entries already in `outDir`, but never
 * replacing an existing file (taken names are skipped). Each file is written atomically.
 */
export async function saveSamples(samples: Float32Array, options: SaveSamplesOptions): Promise<SavedSamples> {
  const { n, h, w, outDir } = options;
  checkBatch('saveSamples', samples, n, 3, h, w);
  const prefix = options.prefix ?? '';
  if (/[/\\]/.test(prefix)) throw new OutputError(`saveSamples: prefix ${JSON.stringify(prefix)} must not contain path separators`);
  let watermark = options.watermark ?? true;
  if (watermark === 'auto') {
    watermark = canWatermark(h, w);
    if (!watermark) {
      (options.onWarning ?? ((m: string) => console.warn(m)))(
        `warning: ${w}x${h} images are too small for the invisible watermark (needs at least 256x256 pixels); saving them without it`,
      );
    }
  }
  const pixels = savedPngPixels(samples, n, h, w, watermark);
  const auto = { watermark: watermark ? WATERMARK_DESCRIPTION : 'none', software: `sgm-ts ${VERSION}` };
  const meta = options.metadata;
  const metaFor = (i: number): Record<string, string> => ({ ...(typeof meta === 'function' ? meta(i) : meta ?? {}), ...auto });

  try {
    await mkdir(outDir, { recursive: true });
  } catch (e) {
    throw new OutputError(`cannot create the output folder ${outDir}: ${(e as Error).message}`);
  }
  let count = (await readdir(outDir)).length;
  const size = 3 * h * w;
  const images: Uint8Array[] = [];
  const files: string[] = [];
  let first = -1;
  for (let i = 0; i < n; i++) {
    const img = pixels.subarray(i * size, (i + 1) * size);
    images.push(img);
    const png = await encodePng(img, w, h, metaFor(i));
    const [path, k] = await writeUnique(outDir, (c) => `${prefix}${pad9(c)}.png`, count, png);
    if (first < 0) first = k;
    files.push(path);
    count = k + 1;
  }

  let grid: string | null = null;
  if (options.grid) {
    const g = makeGrid(images, h, w, options.grid === true ? {} : options.grid);
    const gm = options.gridMetadata ?? (typeof meta === 'function' ? {} : meta ?? {});
    const text = {
      ...gm,
      // the grid as a whole does not decode; each tile is a watermarked sample
      watermark: watermark ? `each tile: ${WATERMARK_DESCRIPTION}` : 'none',
      software: auto.software,
    };
    const png = await encodePng(g.data, g.width, g.height, text);
    [grid] = await writeUnique(outDir, (c) => `${prefix}grid-${pad9(c)}.png`, first, png);
  }
  return { files, grid };
}
