// In-memory image classification datasets (MNIST, CIFAR-10): uint8 planar pixels plus labels,
// served as the reference's dict samples {jpg: float32 C x H x W in [-1, 1], cls: label}.
import { SIGNED_LUT, mapPixels } from './normalize.js';
import type { ArrayData, MapDataset } from './types.js';

export interface ImageClassSample {
  [key: string]: unknown;
  /** float32 C x H x W, ToTensor then x * 2 - 1 (range [-1, 1]). */
  jpg: ArrayData<Float32Array>;
  /** The class label (collated to int64, as torch collates Python ints). */
  cls: number;
}

/** A map-style dataset over N planar uint8 images (N x C x H x W) and N labels. */
export class ImageClassDataset implements MapDataset<ImageClassSample> {
  readonly length: number;
  readonly shape: [number, number, number];
  private readonly plane: number;

  constructor(
    readonly pixels: Uint8Array,
    readonly labels: Uint8Array,
    shape: readonly [number, number, number],
  ) {
    this.shape = [shape[0], shape[1], shape[2]];
    this.plane = shape[0] * shape[1] * shape[2];
    if (pixels.length !== labels.length * this.plane) {
      throw new RangeError(`ImageClassDataset: ${pixels.length} pixel bytes for ${labels.length} images of shape [${shape.join(', ')}]`);
    }
    this.length = labels.length;
  }

  get(index: number): ImageClassSample {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) {
      throw new RangeError(`dataset index ${index} out of range [0, ${this.length})`);
    }
    const src = this.pixels.subarray(index * this.plane, (index + 1) * this.plane);
    return { jpg: { data: mapPixels(src, SIGNED_LUT), shape: [...this.shape] }, cls: this.labels[index]! };
  }

  /** The raw uint8 pixels of one image (C x H x W). */
  rawImage(index: number): Uint8Array {
    return this.pixels.subarray(index * this.plane, (index + 1) * this.plane);
  }
}
