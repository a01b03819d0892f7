// Image file reading (sharp): uint8 RGB pixels, plus the BGR order OpenCV (cv2.imread) uses.
import sharp from 'sharp';

/** A file that cannot be read or decoded as an image; the message names the file. */
export class ImageReadError extends Error {
  readonly path: string;
  constructor(path: string, reason: string) {
    super(`cannot read image ${path}: ${reason}`);
    this.name = 'ImageReadError';
    this.path = path;
  }
}

export interface RgbImage {
  /** H x W x 3 interleaved uint8 RGB, row-major */
  data: Uint8Array;
  width: number;
  height: number;
}

/**
 * Decodes an image file to 8-bit sRGB RGB (alpha removed). Lossless formats (PNG) give the same
 * pixels as cv2.imread; JPEG decoding may differ slightly from OpenCV's libjpeg.
 */
export async function readImageRgb(path: string): Promise<RgbImage> {
  let res: { data: Buffer; info: sharp.OutputInfo };
  try {
    res = await sharp(path, { failOn: 'error' })
      .removeAlpha()
      .toColorspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new ImageReadError(path, (e as Error).message ?? String(e));
  }
  const { data, info } = res;
  if (info.channels !== 3) throw new ImageReadError(path, `expected 3 channels after conversion, got ${info.channels}`);
  if (data.length !== info.width * info.height * 3) throw new ImageReadError(path, 'unexpected decoded size');
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

/** Swaps R and B of interleaved 3-channel pixels (RGB <-> BGR); returns a new array. */
export function rgbToBgr(rgb: Uint8Array): Uint8Array {
  if (rgb.length % 3 !== 0) throw new RangeError(`rgbToBgr: length ${rgb.length} is not a multiple of 3`);
  const out = new Uint8Array(rgb.length);
  for (let i = 0; i < rgb.length; i += 3) {
    out[i] = rgb[i + 2]!;
    out[i + 1] = rgb[i + 1]!;
    out[i + 2] = rgb[i]!;
  }
  return out;
}
