// Tiny datasets and model overrides for the training tests: MNIST-format IDX files and CIFAR-10
// binary batches written from a seeded pattern, and overrides that shrink the toy configs.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** An IDX file: magic (0, 0, 0x08 = uint8, ndim), big-endian uint32 dims, then the bytes. */
export function idxBytes(dims: number[], data: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(data)]);
}

/** Deterministic pseudo-random bytes (a linear congruential generator). */
function bytes(n: number, seed: number, mod = 256): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s >>> 24) % mod;
  }
  return out;
}

/** Writes train/t10k IDX files of `n` 28x28 images (and labels 0..9) into `dir`. */
export function writeTinyMnist(dir: string, n = 32): string {
  mkdirSync(dir, { recursive: true });
  for (const [pre, seed] of [['train', 1], ['t10k', 2]] as const) {
    writeFileSync(join(dir, `${pre}-images-idx3-ubyte`), idxBytes([n, 28, 28], bytes(n * 28 * 28, seed)));
    writeFileSync(join(dir, `${pre}-labels-idx1-ubyte`), idxBytes([n], bytes(n, seed + 10, 10)));
  }
  return dir;
}

/** Writes the six CIFAR-10 binary batch files with `n` records each into `dir`. */
export function writeTinyCifar(dir: string, n = 8): string {
  mkdirSync(dir, { recursive: true });
  const files = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'];
  files.forEach((f, k) => {
    const rec = 1 + 3 * 32 * 32;
    const buf = Buffer.from(bytes(n * rec, 100 + k));
    for (let i = 0; i < n; i++) buf[i * rec] = (i + k) % 10;
    writeFileSync(join(dir, f), buf);
  });
  return dir;
}

/** Overrides that make a toy config's UNet tiny (GroupNorm32 needs multiples of 32 channels). */
export const TINY_UNET = [
  'model.params.network_config.params.model_channels=32',
  'model.params.network_config.params.num_res_blocks=1',
  'model.params.network_config.params.channel_mult=[1,2]',
  'model.params.network_config.params.num_head_channels=32',
];

/** For the class-conditional configs: a small label embedding. */
export const TINY_COND = ['model.params.network_config.params.adm_in_channels=16', 'model.params.conditioner_config.params.emb_models.0.params.embed_dim=16'];
