// A training run in a child process for the kill-during-save test. argv[2] is a JSON of
// TrainOptions; with SGM_TEST_SAVE_PAUSE_MS set, every checkpoint write prints
// `SAVING <phase> <global step> <path>` on stdout and then pauses, so the parent can SIGKILL it
// in the middle of a save (phase weights/state: half of a file's tensors written; pointer:
// latest.json replaced, old pair not yet deleted).
import '../../src/registry.js';
import { train, type TrainOptions } from '../../src/training/main.js';

const opts = JSON.parse(process.argv[2] ?? '{}') as TrainOptions;
const pause = Number(process.env.SGM_TEST_SAVE_PAUSE_MS ?? 0);
let step = 0;
await train({
  ...opts,
  log: () => {},
  progressStream: { write: () => true },
  hooks: {
    onBatch: (r) => void (step = r.step),
    duringSave: async (phase, path) => {
      process.stdout.write(`SAVING ${phase} ${step} ${path}\n`);
      if (pause > 0) await new Promise((r) => setTimeout(r, pause));
    },
  },
});
process.stdout.write('DONE\n');
