// Parity: every case in fixtures/tokenizer, dispatched on its kind, every prompt of every case.
//   tokenizer:          open_clip.tokenize and the HF CLIPTokenizer call of FrozenCLIPEmbedder; every
//                       intermediate the case records (cleaning, pre-tokens, BPE tokens, ids, the
//                       77-token rows, attention masks), with both vocabulary layouts, plus the
//                       batched int64 rows of NAME.io.safetensors;
//   tokenizer_optional: prompts that a real ftfy changes: the ftfy-less harness rows, and the
//                       real-ftfy open_clip and HF columns reproduced by our ftfy subset.
// The vocabulary is read from $SGM_VOCAB_DIR, else ../shared/vocab beside the repository.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { ClipTokenizer, fixText, whitespaceClean } from '../../src/tokenizers/index.js';
import { loadIo, parityArea, type ParityCase } from '../helpers/fixtures.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function vocabDir(): string {
  const env = process.env.SGM_VOCAB_DIR;
  return env ? resolve(env) : resolve(repoRoot, '..', 'shared', 'vocab');
}

interface Tokenizers {
  gz: ClipTokenizer;
  hf: ClipTokenizer;
}
let loaded: Tokenizers | null = null;

/** Both layouts; fails with the folder it looked in when the vocabulary is absent. */
function tokenizers(): Tokenizers {
  if (loaded) return loaded;
  const dir = vocabDir();
  const gz = join(dir, 'bpe_simple_vocab_16e6.txt.gz');
  const vj = join(dir, 'clip', 'vocab.json');
  const mt = join(dir, 'clip', 'merges.txt');
  for (const f of [gz, vj, mt]) {
    if (!existsSync(f)) {
      assert.fail(`CLIP vocabulary file ${f} is absent: put the vocabulary at ../shared/vocab beside the repository or set SGM_VOCAB_DIR`);
    }
  }
  loaded = { gz: ClipTokenizer.fromOpenClipGz(gz), hf: ClipTokenizer.fromHfFiles(vj, mt) };
  return loaded;
}

const rowOf = (data: BigInt64Array, i: number, width: number): number[] => Array.from(data.subarray(i * width, (i + 1) * width), Number);

function label(c: Record<string, any>, i: number): string {
  const p = JSON.stringify(c.prompt);
  return `${c.id ?? i} ${p.length > 48 ? p.slice(0, 45) + '..."' : p}`;
}

/** The open_clip column as the ftfy-less harness produced it, with one tokenizer. */
function checkOpenClipStub(tok: ClipTokenizer, prompt: string, oc: Record<string, any>, ctx: number, layout: string): void {
  const s = tok.openClipSteps(prompt, { ftfy: false });
  const at = `open_clip (${layout} layout)`;
  if ('basic_clean' in oc) assert.equal(s.basicClean, oc.basic_clean, `${at} basic_clean`);
  if ('whitespace_clean_lower' in oc) assert.equal(s.whitespaceCleanLower, oc.whitespace_clean_lower, `${at} whitespace_clean_lower`);
  if ('pretokens' in oc) assert.deepEqual(s.pretokens, oc.pretokens, `${at} pretokens`);
  if ('bpe_tokens' in oc) assert.deepEqual(s.bpeTokens, oc.bpe_tokens, `${at} bpe_tokens`);
  if ('ids' in oc) assert.deepEqual(s.ids, oc.ids, `${at} ids`);
  if ('n_ids' in oc) assert.equal(s.ids.length, oc.n_ids, `${at} n_ids`);
  if ('truncated' in oc) assert.equal(s.ids.length > ctx - 2, oc.truncated, `${at} truncated`);
  assert.deepEqual(tok.encode(prompt, { ftfy: false }), s.ids, `${at} encode() == steps ids`);
  assert.deepEqual(rowOf(tok.openClipTokenize(prompt, ctx, { ftfy: false }).data, 0, ctx), oc.tokenize_77, `${at} tokenize_${ctx}`);
}

/** The HF column (ftfy installed), with one tokenizer. */
function checkHf(tok: ClipTokenizer, c: Record<string, any>, ctx: number, layout: string): void {
  const hf = c.hf as Record<string, any>;
  const s = tok.hfSteps(c.prompt);
  const at = `hf (${layout} layout)`;
  if ('fix_text_result' in hf) {
    if (c.ftfy_fix_text_changes_prompt === true && hf.fix_text_result === c.prompt) {
      // The harness stubs ftfy: for prompts that real ftfy changes without changing the ids (line
      // breaks), the recorded fix_text_result is the stub's identity. Ours must clean to the same text.
      assert.notEqual(s.fixTextResult, c.prompt, `${at} fix_text: the case says real ftfy changes this prompt`);
      assert.equal(whitespaceClean(s.fixTextResult), whitespaceClean(hf.fix_text_result), `${at} fix_text (after whitespace_clean)`);
    } else {
      assert.equal(s.fixTextResult, hf.fix_text_result, `${at} fix_text_result`);
    }
  }
  if ('chunks' in hf) assert.deepEqual(s.chunks, hf.chunks, `${at} chunks`);
  if ('cleaned_chunks' in hf) assert.deepEqual(s.cleanedChunks, hf.cleaned_chunks, `${at} cleaned_chunks`);
  if ('pretokens' in hf) assert.deepEqual(s.pretokens, hf.pretokens, `${at} pretokens`);
  if ('bpe_tokens' in hf) assert.deepEqual(s.bpeTokens, hf.bpe_tokens, `${at} bpe_tokens`);
  if ('ids' in hf) assert.deepEqual(s.ids, hf.ids, `${at} ids`);
  if ('n_ids' in hf) assert.equal(s.ids.length, hf.n_ids, `${at} n_ids`);
  if ('truncated' in hf) assert.equal(s.ids.length > ctx - 2, hf.truncated, `${at} truncated`);
  const enc = tok.hfTokenize(c.prompt, { maxLength: ctx, padding: 'max_length', truncation: true });
  assert.deepEqual(enc.shape, [1, ctx], `${at} shape`);
  assert.deepEqual(rowOf(enc.inputIds, 0, ctx), hf.input_ids_77, `${at} input_ids_${ctx}`);
  assert.deepEqual(rowOf(enc.attentionMask, 0, ctx), hf.attention_mask_77, `${at} attention_mask_${ctx}`);
  if ('input_ids_77_if_fix_text_were_identity' in hf) {
    const stub = tok.hfTokenize(c.prompt, { maxLength: ctx, ftfy: false });
    assert.deepEqual(rowOf(stub.inputIds, 0, ctx), hf.input_ids_77_if_fix_text_were_identity, `${at} input_ids_${ctx} with fix_text as identity`);
  }
}

async function runTokenizerCase(c: ParityCase, t: TestContext): Promise<void> {
  const { gz, hf } = tokenizers();
  const ctx: number = c.spec.context_length ?? 77;
  const cases = c.spec.cases as Record<string, any>[];
  assert.ok(Array.isArray(cases) && cases.length > 0, `${c.name}: no prompts`);
  for (const [i, pc] of cases.entries()) {
    await t.test(label(pc, i), () => {
      for (const [tok, layout] of [[gz, 'open_clip gz'], [hf, 'HF json']] as const) {
        checkOpenClipStub(tok, pc.prompt, pc.open_clip, ctx, layout);
        // With the ftfy subset on (as open_clip runs with ftfy installed) the ids must not change
        // where the case says real ftfy leaves open_clip's ids alone.
        if (pc.ids_unchanged_by_real_ftfy === true || pc.ids_unchanged_by_real_ftfy === 'open_clip only') {
          assert.deepEqual(tok.encode(pc.prompt), pc.open_clip.ids, `open_clip (${layout} layout) ids with ftfy`);
        }
        checkHf(tok, pc, ctx, layout);
      }
    });
  }
  if (c.ioPath) {
    await t.test('batched rows (io.safetensors)', () => {
      const io = loadIo(c);
      const prompts = cases.map((pc) => pc.prompt as string);
      const oc = gz.openClipTokenize(prompts, ctx, { ftfy: false });
      const h = gz.hfTokenize(prompts, { maxLength: ctx });
      const want: [string, BigInt64Array, number[]][] = [
        ['out.open_clip_tokens', oc.data, [prompts.length, ctx]],
        ['out.hf_input_ids', h.inputIds, [prompts.length, ctx]],
        ['out.hf_attention_mask', h.attentionMask, [prompts.length, ctx]],
      ];
      for (const [key, got, shape] of want) {
        const ref = io.get(key);
        assert.ok(ref, `${c.name}.io.safetensors has no ${key}`);
        assert.equal(ref.dtype, 'I64', `${key} dtype`);
        assert.deepEqual(ref.shape, shape, `${key} shape`);
        const r = ref.data as BigInt64Array;
        for (let k = 0; k < r.length; k++) {
          if (r[k] !== got[k]) assert.fail(`${key}[${Math.floor(k / ctx)}, ${k % ctx}] = ${got[k]}, expected ${r[k]}`);
        }
      }
    });
  }
}

async function runOptionalCase(c: ParityCase, t: TestContext): Promise<void> {
  const { gz, hf } = tokenizers();
  const ctx: number = c.spec.context_length ?? 77;
  const cases = c.spec.cases as Record<string, any>[];
  assert.ok(Array.isArray(cases) && cases.length > 0, `${c.name}: no prompts`);
  for (const [i, pc] of cases.entries()) {
    await t.test(label(pc, i), () => {
      for (const [tok, layout] of [[gz, 'open_clip gz'], [hf, 'HF json']] as const) {
        checkOpenClipStub(tok, pc.prompt, pc.open_clip, ctx, layout);
        const real = pc.open_clip.with_real_ftfy as Record<string, any> | undefined;
        if (real) {
          const s = tok.openClipSteps(pc.prompt);
          const at = `open_clip with ftfy (${layout} layout)`;
          if ('whitespace_clean_lower' in real) assert.equal(s.whitespaceCleanLower, real.whitespace_clean_lower, `${at} whitespace_clean_lower`);
          if ('ids' in real) assert.deepEqual(s.ids, real.ids, `${at} ids`);
          if ('tokenize_77' in real) assert.deepEqual(rowOf(tok.openClipTokenize(pc.prompt, ctx).data, 0, ctx), real.tokenize_77, `${at} tokenize_${ctx}`);
        }
        checkHf(tok, pc, ctx, layout);
      }
      assert.equal(fixText(pc.prompt) !== pc.prompt, pc.ftfy_fix_text_changes_prompt === true, 'fix_text changes the prompt');
    });
  }
}

parityArea('tokenizer', { tokenizer: runTokenizerCase, tokenizer_optional: runOptionalCase });
