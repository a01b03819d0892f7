import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as T from '../../src/tensor/index.js';
import * as nn from '../../src/nn/index.js';
import { SafetensorsFile, writeSafetensors } from '../../src/io/safetensors.js';
import { saveStateDict, stateSourceFromSafetensors } from '../../src/io/checkpoint.js';
import { assertClose } from '../helpers/close.js';
import { lcg, randomArray } from '../helpers/gradcheck.js';

// A structure shaped like openaimodel's ResBlock, to check PyTorch's key naming.
class Block extends nn.Module {
  in_layers: nn.Sequential;
  emb_layers: nn.Sequential;
  out_layers: nn.Sequential;
  skip_connection: nn.Module;
  constructor(c: number, out: number) {
    super();
    this.in_layers = new nn.Sequential(new nn.GroupNorm(2, c), new nn.SiLU(), new nn.Conv2d(c, out, 3, { padding: 1 }));
    this.emb_layers = new nn.Sequential(new nn.SiLU(), new nn.Linear(8, out));
    this.out_layers = new nn.Sequential(new nn.GroupNorm(2, out), new nn.SiLU(), new nn.Dropout(0), new nn.Conv2d(out, out, 3, { padding: 1 }));
    this.skip_connection = c === out ? new nn.Identity() : new nn.Conv2d(c, out, 1);
  }
}

class Net extends nn.Module {
  input_blocks: nn.ModuleList;
  attn: nn.MultiheadAttention;
  extra: nn.Linear[];
  scale: nn.Buffer;
  constructor() {
    super();
    this.input_blocks = new nn.ModuleList([new Block(4, 4), new Block(4, 6)]);
    this.attn = new nn.MultiheadAttention(6, 2);
    this.extra = [new nn.Linear(2, 3, { bias: false })];
    this.scale = new nn.Buffer([1], 'float32', { kind: 'host', dtype: 'float32', data: new Float32Array([0.5]) });
  }
}

test('state dict keys follow PyTorch naming', () => {
  const keys = [...new Net().stateDict().keys()];
  const block = (i: number, skip: boolean) => [
    `input_blocks.${i}.in_layers.0.weight`,
    `input_blocks.${i}.in_layers.0.bias`,
    `input_blocks.${i}.in_layers.2.weight`,
    `input_blocks.${i}.in_layers.2.bias`,
    `input_blocks.${i}.emb_layers.1.weight`,
    `input_blocks.${i}.emb_layers.1.bias`,
    `input_blocks.${i}.out_layers.0.weight`,
    `input_blocks.${i}.out_layers.0.bias`,
    `input_blocks.${i}.out_layers.3.weight`,
    `input_blocks.${i}.out_layers.3.bias`,
    ...(skip ? [`input_blocks.${i}.skip_connection.weight`, `input_blocks.${i}.skip_connection.bias`] : []),
  ];
  const expected = [
    'scale',
    ...block(0, false),
    ...block(1, true),
    'attn.in_proj_weight',
    'attn.in_proj_bias',
    'attn.out_proj.weight',
    'attn.out_proj.bias',
    'extra.0.weight',
  ];
  assert.deepEqual([...keys].sort(), [...expected].sort());
  const net = new Net();
  const sd = net.stateDict();
  assert.deepEqual(sd.get('input_blocks.1.skip_connection.weight')!.shape, [6, 4, 1, 1]);
  assert.deepEqual(sd.get('attn.in_proj_weight')!.shape, [18, 6]);
});

test('default init reproduces PyTorch (torch.manual_seed(0); nn.Linear(3, 2))', async () => {
  T.manualSeed(0);
  const lin = new nn.Linear(3, 2);
  // Values PyTorch 1.13 prints for this snippet.
  assertClose(await lin.weight.data() as Float32Array, [-0.0043, 0.3097, -0.4752, -0.4249, -0.2224, 0.1548], { atol: 5e-5, rtol: 0 }, 'weight');
  assertClose(await lin.bias!.data() as Float32Array, [-0.0114, 0.4578], { atol: 5e-5, rtol: 0 }, 'bias');
  // Distribution: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  const big = new nn.Conv2d(16, 32, 3);
  const w = (await big.weight.data()) as Float32Array;
  const bound = 1 / Math.sqrt(16 * 9);
  let m = 0;
  let v = 0;
  for (const x of w) {
    assert.ok(Math.abs(x) <= bound);
    m += x;
    v += x * x;
  }
  m /= w.length;
  v /= w.length;
  assert.ok(Math.abs(m) < 0.05 * bound);
  assert.ok(Math.abs(v - (bound * bound) / 3) < 0.05 * (bound * bound) / 3);
});

test('loadStateDict names every missing, unexpected and misshaped key', () => {
  const net = new Net();
  const src = new Map<string, nn.StateEntry>();
  for (const [k, v] of new Net().stateDict()) src.set(k, { dtype: v.dtype, shape: v.shape, storage: v.storage });
  src.delete('attn.in_proj_bias');
  src.set('attn.bogus', { dtype: 'float32', shape: [1], storage: { kind: 'host', dtype: 'float32', data: new Float32Array(1) } });
  src.set('extra.0.weight', { dtype: 'float32', shape: [2, 3], storage: { kind: 'host', dtype: 'float32', data: new Float32Array(6) } });
  assert.throws(
    () => net.loadStateDict(src, { where: 'test.safetensors' }),
    (e: Error) =>
      e instanceof nn.StateDictError &&
      /test\.safetensors/.test(e.message) &&
      /missing keys \(1\): attn\.in_proj_bias/.test(e.message) &&
      /unexpected keys \(1\): attn\.bogus/.test(e.message) &&
      /extra\.0\.weight expected \[3, 2\] found \[2, 3\]/.test(e.message),
  );
  const report = net.loadStateDict(src, { strict: false });
  assert.deepEqual(report.missing, ['attn.in_proj_bias']);
  assert.deepEqual(report.unexpected, ['attn.bogus']);
  assert.equal(report.mismatched.length, 1);
});

test('save and load through safetensors, including fp16 and bf16 checkpoints, without copying', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sgm-nn-'));
  try {
    T.manualSeed(1);
    const a = new nn.Conv2d(3, 4, 3, { padding: 1 });
    const x = T.tensor(randomArray(2 * 3 * 5 * 5, lcg(7)), [2, 3, 5, 5]);
    const ya = (await a.forward(x).data()) as Float32Array;
    const path = join(dir, 'conv.safetensors');
    saveStateDict(a.stateDict(), path, { format: 'pt' });

    const b = nn.withInitMode('none', () => new nn.Conv2d(3, 4, 3, { padding: 1 }));
    assert.throws(() => b.weight.storage, /weight has no value|never initialised or loaded/);
    const f = SafetensorsFile.open(path);
    b.loadStateDict(stateSourceFromSafetensors(f));
    assert.equal(b.weight.storage.kind, 'file');
    assertClose((await b.forward(x).data()) as Float32Array, ya, { atol: 0, rtol: 0 }, 'reloaded conv');
    // Compiled (weights as external-data initializers pointing into the file).
    const run = await T.compile((u) => b.forward(u), [{ shape: [2, 3, 5, 5] }]);
    assertClose((await (await run(x)).data()) as Float32Array, ya, { atol: 1e-6, rtol: 1e-6 }, 'compiled conv');
    f.close();

    // Half-precision checkpoints load into a float32 module (cast inside the graph).
    for (const [st, conv] of [['F16', T.f32ToF16], ['BF16', T.f32ToBf16]] as const) {
      const w = (await a.weight.data()) as Float32Array;
      const bias = (await a.bias!.data()) as Float32Array;
      const hp = join(dir, `conv-${st}.safetensors`);
      writeSafetensors(hp, {
        weight: { dtype: st, shape: [4, 3, 3, 3], data: conv(w) },
        bias: { dtype: st, shape: [4], data: conv(bias) },
      });
      const c = nn.withInitMode('none', () => new nn.Conv2d(3, 4, 3, { padding: 1 }));
      const hf = SafetensorsFile.open(hp);
      c.loadStateDict(stateSourceFromSafetensors(hf));
      const back = st === 'F16' ? T.f16ToF32 : T.bf16ToF32;
      const ref = nn.withInitMode('eager', () => new nn.Conv2d(3, 4, 3, { padding: 1 }));
      ref.weight.assign(back(conv(w)));
      ref.bias!.assign(back(conv(bias)));
      const yr = (await ref.forward(x).data()) as Float32Array;
      const yc = (await c.forward(x).data()) as Float32Array;
      assertClose(yc, yr, { atol: 1e-6, rtol: 1e-6 }, `${st} checkpoint`);
      const runC = await T.compile((u) => c.forward(u), [{ shape: [2, 3, 5, 5] }]);
      assertClose((await (await runC(x)).data()) as Float32Array, yr, { atol: 1e-6, rtol: 1e-6 }, `${st} compiled`);
      hf.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Linear, LayerNorm, Embedding, MultiheadAttention forward match independent computations', async () => {
  T.manualSeed(3);
  const lin = new nn.Linear(4, 3);
  const xs = randomArray(2 * 4, lcg(11));
  const y = (await lin.forward(T.tensor(xs, [2, 4])).data()) as Float32Array;
  const w = (lin.weight.storage as { data: Float32Array }).data;
  const b = (lin.bias!.storage as { data: Float32Array }).data;
  const ref: number[] = [];
  for (let i = 0; i < 2; i++) for (let o = 0; o < 3; o++) {
    let s = b[o]!;
    for (let k = 0; k < 4; k++) s += xs[i * 4 + k]! * w[o * 4 + k]!;
    ref.push(s);
  }
  assertClose(y, ref, { atol: 1e-6, rtol: 1e-5 }, 'linear');

  const emb = new nn.Embedding(5, 2);
  const ew = (emb.weight.storage as { data: Float32Array }).data;
  const got = await emb.forward(T.tensor([4, 0], [2], 'int64')).data();
  assert.deepEqual(Array.from(got as Float32Array), [ew[8], ew[9], ew[0], ew[1]]);

  // MultiheadAttention (L, N, E) against a direct loop.
  const E = 4;
  const H = 2;
  const L = 3;
  const mha = new nn.MultiheadAttention(E, H);
  mha.in_proj_bias!.assign(randomArray(3 * E, lcg(5)));
  const q = randomArray(L * 1 * E, lcg(9));
  const out = (await mha.forward(T.tensor(q, [L, 1, E]), T.tensor(q, [L, 1, E]), T.tensor(q, [L, 1, E])).data()) as Float32Array;
  const W = (mha.in_proj_weight.storage as { data: Float32Array }).data;
  const B = (mha.in_proj_bias!.storage as { data: Float32Array }).data;
  const Wo = (mha.out_proj.weight.storage as { data: Float32Array }).data;
  const proj = (which: number, l: number, j: number) => {
    let s = B[which * E + j]!;
    for (let k = 0; k < E; k++) s += q[l * E + k]! * W[(which * E + j) * E + k]!;
    return s;
  };
  const dh = E / H;
  const attnOut = new Float64Array(L * E);
  for (let h = 0; h < H; h++) for (let i = 0; i < L; i++) {
    const scores = [];
    for (let j = 0; j < L; j++) {
      let s = 0;
      for (let d = 0; d < dh; d++) s += proj(0, i, h * dh + d) * proj(1, j, h * dh + d);
      scores.push(s / Math.sqrt(dh));
    }
    const mx = Math.max(...scores);
    const ex = scores.map((s) => Math.exp(s - mx));
    const z = ex.reduce((p, c) => p + c, 0);
    for (let d = 0; d < dh; d++) {
      let s = 0;
      for (let j = 0; j < L; j++) s += (ex[j]! / z) * proj(2, j, h * dh + d);
      attnOut[i * E + h * dh + d] = s;
    }
  }
  const expected: number[] = [];
  for (let i = 0; i < L; i++) for (let o = 0; o < E; o++) {
    let s = 0; // out_proj bias is zero-initialised
    for (let k = 0; k < E; k++) s += attnOut[i * E + k]! * Wo[o * E + k]!;
    expected.push(s);
  }
  assertClose(out, expected, { atol: 1e-5, rtol: 1e-4 }, 'multihead attention');
});

test('train/eval and Dropout', () => {
  const net = new Net();
  assert.equal(net.training, true);
  net.eval();
  assert.ok(net.namedModules().every(([, m]) => !m.training));
  const d = new nn.Dropout(0.1);
  const x = T.ones([2]);
  assert.throws(() => d.forward(x), /not supported yet/);
  d.eval();
  assert.equal(d.forward(x), x);
});
