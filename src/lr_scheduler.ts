// Learning-rate multipliers (sgm/lr_scheduler.py): call(step) returns the factor for a base lr of
// 1.0 (used through a LambdaLR). Plain float64 arithmetic in the reference's order.

/** Thrown for a step the schedule does not cover (past the last cycle). */
export class SchedulerRangeError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'SchedulerRangeError';
  }
}

function checkStep(who: string, n: number): void {
  if (typeof n !== 'number' || Number.isNaN(n)) throw new TypeError(`${who}: the step must be a number, got ${String(n)}`);
}

/** Linear warm-up from lr_start to lr_max, then cosine decay to lr_min at max_decay_steps. */
export class LambdaWarmUpCosineScheduler {
  readonly lr_warm_up_steps: number;
  readonly lr_start: number;
  readonly lr_min: number;
  readonly lr_max: number;
  readonly lr_max_decay_steps: number;
  readonly verbosity_interval: number;
  last_lr = 0.0;

  constructor(warm_up_steps: number, lr_min: number, lr_max: number, lr_start: number, max_decay_steps: number, verbosity_interval = 0) {
    this.lr_warm_up_steps = warm_up_steps;
    this.lr_start = lr_start;
    this.lr_min = lr_min;
    this.lr_max = lr_max;
    this.lr_max_decay_steps = max_decay_steps;
    this.verbosity_interval = verbosity_interval;
  }

  schedule(n: number): number {
    checkStep('LambdaWarmUpCosineScheduler', n);
    if (this.verbosity_interval > 0 && n % this.verbosity_interval === 0) {
      console.log(`current step: ${n}, recent lr-multiplier: ${this.last_lr}`);
    }
    if (n < this.lr_warm_up_steps) {
      const lr = ((this.lr_max - this.lr_start) / this.lr_warm_up_steps) * n + this.lr_start;
      this.last_lr = lr;
      return lr;
    }
    let t = (n - this.lr_warm_up_steps) / (this.lr_max_decay_steps - this.lr_warm_up_steps);
    t = Math.min(t, 1.0);
    const lr = this.lr_min + 0.5 * (this.lr_max - this.lr_min) * (1 + Math.cos(t * Math.PI));
    this.last_lr = lr;
    return lr;
  }

  call(n: number): number {
    return this.schedule(n);
  }
}

/** Repeated cycles, each with its own warm-up and cosine decay (lists, one entry per cycle). */
export class LambdaWarmUpCosineScheduler2 {
  readonly lr_warm_up_steps: number[];
  readonly f_start: number[];
  readonly f_min: number[];
  readonly f_max: number[];
  readonly cycle_lengths: number[];
  /** cumsum([0] + cycle_lengths) */
  readonly cum_cycles: number[];
  readonly verbosity_interval: number;
  last_f = 0.0;

  constructor(warm_up_steps: number[], f_min: number[], f_max: number[], f_start: number[], cycle_lengths: number[], verbosity_interval = 0) {
    const lens = [warm_up_steps.length, f_min.length, f_max.length, f_start.length, cycle_lengths.length];
    if (!lens.every((l) => l === lens[0])) {
      throw new RangeError(
        `${this.constructor.name}: warm_up_steps, f_min, f_max, f_start and cycle_lengths must have one entry per cycle, got lengths ${lens.join(', ')}`,
      );
    }
    this.lr_warm_up_steps = [...warm_up_steps];
    this.f_start = [...f_start];
    this.f_min = [...f_min];
    this.f_max = [...f_max];
    this.cycle_lengths = [...cycle_lengths];
    this.cum_cycles = [0];
    for (const cl of cycle_lengths) this.cum_cycles.push(this.cum_cycles[this.cum_cycles.length - 1]! + cl);
    this.verbosity_interval = verbosity_interval;
  }

  /** The cycle of step n: the first c with n <= cum_cycles[c + 1] (a boundary step belongs to the earlier cycle). */
  find_in_interval(n: number): number | null {
    let interval = 0;
    for (const cl of this.cum_cycles.slice(1)) {
      if (n <= cl) return interval;
      interval++;
    }
    return null;
  }

  /** The cycle of step n and n relative to the cycle's start; past the last cycle is an error. */
  protected locate(n: number): [cycle: number, rel: number] {
    checkStep(this.constructor.name, n);
    const cycle = this.find_in_interval(n);
    if (cycle === null) {
      const total = this.cum_cycles[this.cum_cycles.length - 1]!;
      throw new SchedulerRangeError(
        `${this.constructor.name}: step ${n} is past the last cycle (the ${this.cycle_lengths.length} cycle(s) end at step ${total}); ` +
          'lengthen cycle_lengths or add a cycle',
      );
    }
    const rel = n - this.cum_cycles[cycle]!;
    if (this.verbosity_interval > 0 && rel % this.verbosity_interval === 0) {
      console.log(`current step: ${rel}, recent lr-multiplier: ${this.last_f}, current cycle ${cycle}`);
    }
    return [cycle, rel];
  }

  protected warmUp(cycle: number, n: number): number {
    return ((this.f_max[cycle]! - this.f_start[cycle]!) / this.lr_warm_up_steps[cycle]!) * n + this.f_start[cycle]!;
  }

  schedule(step: number): number {
    const [cycle, n] = this.locate(step);
    let f: number;
    if (n < this.lr_warm_up_steps[cycle]!) f = this.warmUp(cycle, n);
    else {
      let t = (n - this.lr_warm_up_steps[cycle]!) / (this.cycle_lengths[cycle]! - this.lr_warm_up_steps[cycle]!);
      t = Math.min(t, 1.0);
      f = this.f_min[cycle]! + 0.5 * (this.f_max[cycle]! - this.f_min[cycle]!) * (1 + Math.cos(t * Math.PI));
    }
    this.last_f = f;
    return f;
  }

  call(n: number): number {
    return this.schedule(n);
  }
}

/** Cycles of linear warm-up, then a linear decay from f_max towards f_min measured from the cycle start. */
export class LambdaLinearScheduler extends LambdaWarmUpCosineScheduler2 {
  override schedule(step: number): number {
    const [cycle, n] = this.locate(step);
    let f: number;
    if (n < this.lr_warm_up_steps[cycle]!) f = this.warmUp(cycle, n);
    else {
      f = this.f_min[cycle]! + ((this.f_max[cycle]! - this.f_min[cycle]!) * (this.cycle_lengths[cycle]! - n)) / this.cycle_lengths[cycle]!;
    }
    this.last_f = f;
    return f;
  }
}
