// Runs benchmarks by name: `npm run bench -- engine` (all when none given).
const suites: Record<string, () => Promise<{ run: () => Promise<void> }>> = {
  engine: () => import('./engine.js'),
  networks: () => import('./networks.js'),
  ops: () => import('./ops.js'),
  pipeline: () => import('./pipeline.js'),
  train: () => import('./train.js'),
  tokenizer: () => import('./tokenizer.js'),
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const name of wanted.length ? wanted : Object.keys(suites)) {
  const load = suites[name];
  if (!load) {
    console.error(`unknown benchmark "${name}"; known: ${Object.keys(suites).join(', ')}`);
    process.exit(2);
  }
  await (await load()).run();
}
