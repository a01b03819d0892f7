// torchvision's ToTensor on 8-bit images followed by the reference's `x * 2.0 - 1.0`, in float32
// exactly as torch computes it: fl32(fl32(p / 255) * 2 - 1). (This equals Normalize((0.5,),
// (0.5,)), i.e. (p / 255 - 0.5) / 0.5, bit for bit: scaling by 2 commutes with rounding.)

/** p / 255 in float32 for p = 0..255 (ToTensor). */
export const UNIT_LUT: Float32Array = (() => {
  const t = new Float32Array(256);
  for (let p = 0; p < 256; p++) t[p] = p / 255;
  return t;
})();

/** fl32(fl32(p / 255) * 2 - 1) for p = 0..255 (ToTensor, then x * 2 - 1). */
export const SIGNED_LUT: Float32Array = (() => {
  const t = new Float32Array(256);
  for (let p = 0; p < 256; p++) t[p] = UNIT_LUT[p]! * 2 - 1;
  return t;
})();

/** Maps uint8 pixels through a 256-entry table into `out` (a new Float32Array by default). */
export function mapPixels(src: Uint8Array, lut: Float32Array, out: Float32Array = new Float32Array(src.length), offset = 0): Float32Array {
  for (let i = 0; i < src.length; i++) out[offset + i] = lut[src[i]!]!;
  return out;
}

/** Interleaved H x W x C uint8 to planar C x H x W float32 through `lut`. */
export function hwcToChw(src: Uint8Array, height: number, width: number, channels: number, lut: Float32Array): Float32Array {
  const plane = height * width;
  if (src.length !== plane * channels) throw new RangeError(`hwcToChw: ${src.length} bytes, expected ${height}x${width}x${channels}`);
  const out = new Float32Array(src.length);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < channels; c++) out[c * plane + i] = lut[src[i * channels + c]!]!;
  }
  return out;
}
