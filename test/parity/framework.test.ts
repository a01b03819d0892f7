// Parity: every case in fixtures/framework, dispatched on its kind.
import { parityArea } from '../helpers/fixtures.js';
import { rngRunners } from './framework/rng.js';

parityArea('framework', {
  ...rngRunners,
});
