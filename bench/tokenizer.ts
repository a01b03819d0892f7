// CLIP BPE tokenizer: 10,000 typical prompts (SD-style: subject, style words, weights, artists,
// punctuation; 8-40 words), tokenised to (10000, 77) int64 rows both ways, with the BPE cache cold
// (cleared before each run) and warm. Baseline in the same run: the cleaning + pre-token regex alone
// (what any tokenizer must do), so the ratio is the BPE + row-building overhead.
//   npm run bench -- tokenizer            (vocabulary from $SGM_VOCAB_DIR or ../shared/vocab)
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClipTokenizer, pyLower, whitespaceClean, htmlUnescape } from '../src/tokenizers/index.js';
import { fmt, interleaved } from './util.js';

const N = Number(process.env.SGM_BENCH_PROMPTS ?? 10_000);
const REPS = Number(process.env.SGM_BENCH_REPS ?? 7);

const WORDS = (
  'a photo of an astronaut riding horse on mars cat dog portrait woman man old young castle forest ' +
  'mountain lake river sunset sunrise city street night rain snow fog cyberpunk steampunk fantasy ' +
  'landscape painting oil watercolor digital art concept illustration highly detailed intricate ' +
  'sharp focus 8k 4k uhd hdr cinematic lighting volumetric dramatic soft golden hour studio ' +
  'trending artstation deviantart unreal engine octane render by greg rutkowski alphonse mucha ' +
  'artgerm wlop makoto shinkai studio ghibli masterpiece best quality ultra realistic photorealistic ' +
  'bokeh depth field wide angle lens 35mm 85mm dslr canon nikon sony vibrant colors pastel muted ' +
  'neon glowing ethereal magical mysterious dark moody bright cheerful serene peaceful epic scale ' +
  'dragon knight wizard robot spaceship galaxy nebula stars planet ocean waves beach island tropical ' +
  "flowers garden cherry blossom japanese temple ancient ruins medieval victorian baroque gothic " +
  "minimalist abstract surreal impressionist expressionist cubism pop art anime manga comic it's " +
  "don't you're we'll smiling wearing red blue green yellow purple orange black white silver gold"
).split(' ');
const EXTRAS = [',', ', ', ' (masterpiece:1.2)', ' [blurry]', ' --no text', '!', ' & ', ' 2023', ' #1'];

function prompts(n: number): string[] {
  let s = 12345;
  const rnd = (k: number): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % k;
  };
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = 8 + rnd(33);
    let p = '';
    for (let j = 0; j < len; j++) {
      p += (j ? ' ' : '') + WORDS[rnd(WORDS.length)];
      if (rnd(5) === 0) p += EXTRAS[rnd(EXTRAS.length)];
    }
    out.push(rnd(3) === 0 ? p[0]!.toUpperCase() + p.slice(1) : p);
  }
  return out;
}

export async function run(): Promise<void> {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const dir = process.env.SGM_VOCAB_DIR ? resolve(process.env.SGM_VOCAB_DIR) : resolve(root, '..', 'shared', 'vocab');
  if (!existsSync(dir)) {
    console.log(`tokenizer: vocabulary folder ${dir} is absent (set SGM_VOCAB_DIR); skipped`);
    return;
  }
  let t0 = performance.now();
  const tok = ClipTokenizer.fromFiles(dir);
  const loadMs = performance.now() - t0;
  t0 = performance.now();
  ClipTokenizer.fromFiles(resolve(dir, 'clip'));
  const loadHfMs = performance.now() - t0;
  const texts = prompts(N);
  const pat = /'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\p{White_Space}\p{L}\p{N}]+/giu;
  let sink = 0;
  const r = await interleaved(
    {
      'baseline: clean + regex only': async () => {
        for (const t of texts) sink += (pyLower(whitespaceClean(htmlUnescape(htmlUnescape(t)))).match(pat) ?? []).length;
      },
      'openClipTokenize, cold cache': async () => {
        tok.clearCache();
        sink += tok.openClipTokenize(texts).data.length;
      },
      'openClipTokenize, warm cache': async () => {
        sink += tok.openClipTokenize(texts).data.length;
      },
      'hfTokenize, warm cache': async () => {
        sink += tok.hfTokenize(texts).inputIds.length;
      },
    },
    REPS,
    1,
  );
  const base = r['baseline: clean + regex only']!.median;
  console.log(`tokenizer: ${N} prompts (${texts.reduce((a, t) => a + t.length, 0) / N} chars on average), medians of ${REPS}`);
  console.log(`  load vocabulary: gz ${fmt(loadMs)}, vocab.json + merges.txt ${fmt(loadHfMs)}`);
  for (const [name, t] of Object.entries(r)) {
    console.log(`  ${name.padEnd(32)} ${fmt(t.median).padStart(10)}  ${(t.median / base).toFixed(2)}x baseline  ${((N / t.median) * 1000).toFixed(0)} prompts/s`);
  }
  if (sink < 0) console.log(sink);
}
