// Child process for the weight-cache test: runs a conv whose fp16 weights come from a checkpoint
// (so they are converted to fp32 for the graph) and prints the output and the cache's files.
import * as T from '../../src/tensor/index.js';
import * as nn from '../../src/nn/index.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { stateSourceFromSafetensors } from '../../src/io/checkpoint.js';

const [ckpt, cacheDir] = process.argv.slice(2) as [string, string];
T.setWeightCache(cacheDir);
const conv = nn.withInitMode('none', () => new nn.Conv2d(4, 8, 3, { padding: 1 }));
conv.loadStateDict(stateSourceFromSafetensors(SafetensorsFile.open(ckpt)));
const x = T.constant(Float32Array.from({ length: 2 * 4 * 6 * 6 }, (_, i) => Math.sin(i)), [2, 4, 6, 6], 'float32');
const f = await T.compile((a) => conv.forward(a), [{ shape: [2, 4, 6, 6] }]);
const y = (await (await f(x)).data()) as Float32Array;
process.stdout.write(JSON.stringify({ y: Array.from(y.slice(0, 16)) }) + '\n');
