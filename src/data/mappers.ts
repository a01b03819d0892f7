// Per-sample transforms the reference's txt2img / imagenet configs use (sdata.mappers and
// torchvision.transforms), as functions that build a Mapper:
//
//   TorchVisionImageTransforms(key, [Resize(size, interpolation), ToTensor()])
//     -> imageTransforms('jpg', [resizeImage(256, 3), toTensorImage()])
//   Rescaler()                                  -> rescaler()
//   AddOriginalImageSizeAsTupleAndCropToSquare  -> addOriginalImageSizeAsTupleAndCropToSquare()
//
// Images before ToTensor are DecodedImage (H x W x 3 uint8 RGB); after it ArrayData float32
// C x H x W in [0, 1].
import sharp from 'sharp';
import { Generator } from '../tensor/random.js';
import { UNIT_LUT, hwcToChw } from './normalize.js';
import { isArrayData, type ArrayData, type Sample } from './types.js';
import { isDecodedImage, type DecodedImage, type Mapper } from './webdataset.js';

/** An image-to-image step inside imageTransforms. */
export type ImageTransform = (img: DecodedImage | ArrayData) => DecodedImage | ArrayData | Promise<DecodedImage | ArrayData>;

function sampleName(s: Sample): string {
  return s.__key__ !== undefined ? `sample ${String(s.__key__)}` : 'sample';
}

/** sdata.mappers.TorchVisionImageTransforms: applies the transforms in order to sample[key]. */
export function imageTransforms(key: string, transforms: readonly ImageTransform[]): Mapper {
  return async (s) => {
    let v = s[key];
    if (!isDecodedImage(v) && !isArrayData(v)) throw new TypeError(`imageTransforms: ${sampleName(s)} has no image under '${key}' (keys: ${Object.keys(s).join(', ')})`);
    for (const t of transforms) v = await t(v as DecodedImage | ArrayData);
    return { ...s, [key]: v };
  };
}

/** torchvision.transforms.ToTensor on an 8-bit RGB image: float32 C x H x W, p / 255. */
export function toTensorImage(): ImageTransform {
  return (img) => {
    if (!isDecodedImage(img)) throw new TypeError('ToTensor: expected a decoded 8-bit image (is ToTensor applied twice?)');
    return { data: hwcToChw(img.data, img.height, img.width, 3, UNIT_LUT), shape: [3, img.height, img.width] };
  };
}

/** PIL / torchvision interpolation codes and the sharp kernels used for them. */
const KERNELS: Record<number, keyof sharp.KernelEnum> = { 0: 'nearest', 1: 'lanczos3', 2: 'linear', 3: 'cubic' };

/**
 * The output size of torchvision's Resize(size) for an int size: the shorter side becomes `size`,
 * the longer `floor(size * long / short)`; [height, width].
 */
export function resizeOutputSize(height: number, width: number, size: number): [number, number] {
  if (height <= width) return [size, Math.floor((size * width) / height)];
  return [Math.floor((size * height) / width), size];
}

/**
 * torchvision.transforms.Resize(size, interpolation) on a decoded image (before ToTensor); an int
 * size scales the shorter side, [h, w] sets both. Resampling is libvips' (sharp), which is close
 * to but not bit-identical with PIL's.
 */
export function resizeImage(size: number | readonly [number, number], interpolation = 2): ImageTransform {
  const kernel = KERNELS[interpolation];
  if (kernel === undefined) throw new RangeError(`Resize: interpolation ${interpolation} is not supported (0 nearest, 1 lanczos, 2 bilinear, 3 bicubic)`);
  return async (img) => {
    if (!isDecodedImage(img)) throw new TypeError('Resize: expected a decoded 8-bit image (put Resize before ToTensor)');
    const [h, w] = typeof size === 'number' ? resizeOutputSize(img.height, img.width, size) : [size[0], size[1]];
    if (h === img.height && w === img.width) return img;
    const data = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
      .resize(w, h, { kernel, fit: 'fill' })
      .raw()
      .toBuffer();
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: w, height: h, channels: 3 };
  };
}

/** Crops C x H x W (or a decoded H x W x 3 image) to [top, top + height) x [left, left + width). */
export function cropImage<I extends DecodedImage | ArrayData>(img: I, top: number, left: number, height: number, width: number): I {
  if (isDecodedImage(img)) {
    if (top < 0 || left < 0 || top + height > img.height || left + width > img.width) throw new RangeError(`crop: box outside the ${img.height}x${img.width} image`);
    const out = new Uint8Array(height * width * 3);
    for (let y = 0; y < height; y++) out.set(img.data.subarray(((top + y) * img.width + left) * 3, ((top + y) * img.width + left + width) * 3), y * width * 3);
    return { data: out, width, height, channels: 3 } as I;
  }
  const a = img as ArrayData;
  const [c, h, w] = a.shape.slice(-3) as [number, number, number];
  if (a.shape.length !== 3) throw new RangeError(`crop: expected C x H x W, got [${a.shape.join(', ')}]`);
  if (top < 0 || left < 0 || top + height > h || left + width > w) throw new RangeError(`crop: box outside the ${h}x${w} image`);
  const ctor = a.data.constructor as new (n: number) => typeof a.data;
  const out = new ctor(c * height * width);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < height; y++) {
      const src = (ch * h + top + y) * w + left;
      (out as Float32Array).set((a.data as Float32Array).subarray(src, src + width), (ch * height + y) * width);
    }
  }
  return { data: out, shape: [c, height, width] } as I;
}

/** torchvision.transforms.CenterCrop(size): the crop's top/left are round((H - size) / 2), round((W - size) / 2). */
export function centerCrop(size: number | readonly [number, number]): ImageTransform {
  const [ch, cw] = typeof size === 'number' ? [size, size] : [size[0], size[1]];
  return (img) => {
    const [h, w] = isDecodedImage(img) ? [img.height, img.width] : [img.shape[1]!, img.shape[2]!];
    if (ch > h || cw > w) throw new RangeError(`CenterCrop: ${ch}x${cw} is larger than the ${h}x${w} image (padding is not implemented)`);
    // torchvision: int(round((h - ch) / 2.0)) with Python's round-half-even
    const r = (x: number): number => {
      const f = Math.floor(x);
      const d = x - f;
      return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
    };
    return cropImage(img, r((h - ch) / 2), r((w - cw) / 2), ch, cw);
  };
}

export interface RescalerOptions {
  key?: string;
  /** The value is in [0, 1] (x * 2 - 1); false: in [0, 255] (x / 127.5 - 1). Default true. */
  isfloat?: boolean;
  /** A sample without the key is an error (default true); false passes it through. */
  strict?: boolean;
}

/** sdata.mappers.Rescaler: [0, 1] (or [0, 255]) to [-1, 1], in float32. */
export function rescaler(options: RescalerOptions = {}): Mapper {
  const key = options.key ?? 'jpg';
  const isfloat = options.isfloat ?? true;
  return (s) => {
    const v = s[key];
    if (v === undefined) {
      if (options.strict === false) return s;
      throw new TypeError(`Rescaler: ${sampleName(s)} has no '${key}' (keys: ${Object.keys(s).join(', ')})`);
    }
    if (!isArrayData(v) || !(v.data instanceof Float32Array)) throw new TypeError(`Rescaler: '${key}' of ${sampleName(s)} is not a float32 array (apply ToTensor first)`);
    const out = new Float32Array(v.data.length);
    if (isfloat) for (let i = 0; i < out.length; i++) out[i] = v.data[i]! * 2 - 1;
    else for (let i = 0; i < out.length; i++) out[i] = Math.fround(v.data[i]! / 127.5) - 1;
    return { ...s, [key]: { data: out, shape: [...v.shape] } };
  };
}

export interface CropToSquareOptions {
  h_key?: string;
  w_key?: string;
  image_key?: string;
  /** Read h_key / w_key from sample[data_key] (the json) rather than the sample (default true). */
  use_data_key?: boolean;
  data_key?: string;
  /** Random crop offsets (the reference's behaviour, default) or the centered crop. */
  crop?: 'random' | 'center';
  /** The random crop's generator (default: a new one seeded 0). */
  generator?: Generator;
}

/**
 * sdata.mappers.AddOriginalImageSizeAsTupleAndCropToSquare: records the original [h, w] (from the
 * sample's json by default) as `original_size_as_tuple`, crops the image (C x H x W, already
 * resized so that the short side has the target size) to a square, and records the crop's
 * [top, left] as `crop_coords_top_left`. The random offsets come from `generator`
 * (random() % (delta + 1)) instead of numpy's global RandomState.
 */
export function addOriginalImageSizeAsTupleAndCropToSquare(options: CropToSquareOptions = {}): Mapper {
  const hKey = options.h_key ?? 'original_height';
  const wKey = options.w_key ?? 'original_width';
  const imageKey = options.image_key ?? 'jpg';
  const useDataKey = options.use_data_key ?? true;
  const dataKey = options.data_key ?? 'json';
  const gen = options.generator ?? new Generator(0);
  return (s) => {
    const src = useDataKey ? s[dataKey] : s;
    if (typeof src !== 'object' || src === null) throw new TypeError(`AddOriginalImageSizeAsTupleAndCropToSquare: ${sampleName(s)} has no '${dataKey}' metadata`);
    const meta = src as Record<string, unknown>;
    const h = Number(meta[hKey]);
    const w = Number(meta[wKey]);
    if (!Number.isFinite(h) || !Number.isFinite(w)) {
      throw new TypeError(`AddOriginalImageSizeAsTupleAndCropToSquare: ${sampleName(s)} lacks numeric '${hKey}' / '${wKey}'${useDataKey ? ` in '${dataKey}'` : ''}`);
    }
    const img = s[imageKey];
    if (!isArrayData(img) || img.shape.length !== 3 || (img.shape[0] !== 1 && img.shape[0] !== 3)) {
      throw new TypeError(`AddOriginalImageSizeAsTupleAndCropToSquare: '${imageKey}' of ${sampleName(s)} must be a C x H x W array with C 1 or 3 (apply ToTensor first)`);
    }
    const [, ih, iw] = img.shape as [number, number, number];
    const size = Math.min(ih, iw);
    const dh = ih - size;
    const dw = iw - size;
    const random = options.crop !== 'center';
    const top = random ? gen.random() % (dh + 1) : Math.floor(dh / 2);
    const left = random ? gen.random() % (dw + 1) : Math.floor(dw / 2);
    return {
      ...s,
      original_size_as_tuple: { data: BigInt64Array.from([BigInt(Math.trunc(h)), BigInt(Math.trunc(w))]), shape: [2] },
      [imageKey]: cropImage(img, top, left, size, size),
      crop_coords_top_left: { data: BigInt64Array.from([BigInt(top), BigInt(left)]), shape: [2] },
    };
  };
}
