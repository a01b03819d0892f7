import test from 'node:test';
import assert from 'node:assert/strict';
import { createProgress, formatBytes, formatDuration } from '../../src/io/progress.js';

function fakeStream(isTTY: boolean, columns?: number) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, columns, write: (s: string) => (writes.push(s), true) } };
}

function fakeClock() {
  let t = 1000;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

test('progress: without a TTY, plain lines at most every 2 s plus a final line', () => {
  const { writes, stream } = fakeStream(false);
  const clock = fakeClock();
  const p = createProgress({ label: 'sampling', total: 10, unit: 'steps', stream, now: clock.now });
  for (let i = 0; i < 4; i++) {
    clock.advance(400);
    p.tick();
  }
  assert.equal(writes.length, 0, 'nothing before 2 s');
  clock.advance(500); // 2.1 s
  p.tick(1, 'sigma 3.2');
  assert.equal(writes.length, 1);
  assert.equal(writes[0], 'sampling: 5/10 steps (50%, 2.38 steps/s, ETA 2.1s) sigma 3.2\n');
  clock.advance(1000);
  p.update(7);
  assert.equal(writes.length, 1, 'throttled');
  clock.advance(1000);
  p.update(8);
  assert.equal(writes.length, 2);
  assert.match(writes[1]!, /^sampling: 8\/10 steps \(80%/);
  p.update(10);
  p.done();
  assert.equal(writes.length, 3);
  assert.match(writes[2]!, /^sampling: done, 10\/10 steps in 4\.1s \(2\.44 steps\/s\) sigma 3\.2\n$/);
  p.tick();
  p.done();
  p.fail('late');
  assert.equal(writes.length, 3, 'nothing after done');
  for (const w of writes) {
    assert.ok(w.endsWith('\n'));
    assert.ok(!w.includes('\r') && !w.includes('\x1b'), 'no terminal control codes in logs');
  }
});

test('progress: on a TTY one line is redrawn with \\r, throttled, and ended on done', () => {
  const { writes, stream } = fakeStream(true, 200);
  const clock = fakeClock();
  const p = createProgress({ label: 'steps', total: 4, stream, now: clock.now });
  clock.advance(500);
  p.tick();
  assert.equal(writes.length, 1);
  assert.ok(writes[0]!.startsWith('\r'));
  assert.ok(!writes[0]!.includes('\n'));
  assert.match(writes[0]!, /steps \[#{6}-{18}\] 25% 1\/4 2\.00 it\/s ETA 1\.5s/);
  clock.advance(50);
  p.tick();
  assert.equal(writes.length, 1, 'redraws throttled to 100 ms');
  clock.advance(60);
  p.tick();
  assert.equal(writes.length, 2);
  assert.match(writes[1]!, /3\/4/);
  p.tick();
  p.done();
  assert.equal(writes.length, 3);
  assert.match(writes[2]!, /^\r.*\[#{24}\] 100% 4\/4 .*done in 0\.6s.*\n$/);
});

test('progress: TTY lines fit the terminal width (bar dropped, then label shortened); fail gives the reason', () => {
  const label = 'loading a very long checkpoint name';
  const line = (columns: number) => {
    const { writes, stream } = fakeStream(true, columns);
    const clock = fakeClock();
    const p = createProgress({ label, total: 100, stream, now: clock.now });
    clock.advance(1000);
    p.update(10, 'some\ninfo');
    const visible = writes[0]!.replace('\r', '').replace('\x1b[K', '');
    assert.ok(visible.length <= columns - 1, `${visible.length} characters for ${columns} columns`);
    return { visible, p, writes };
  };
  assert.equal(line(120).visible, `${label} [##----------------------] 10% 10/100 10.0 it/s ETA 9.0s some info`);
  assert.equal(line(80).visible, `${label} 10% 10/100 10.0 it/s ETA 9.0s some info`);
  assert.equal(line(60).visible, 'loading a very l... 10% 10/100 10.0 it/s ETA 9.0s some info');
  const { p, writes } = line(80);
  p.fail('disk full');
  assert.equal(writes[1], `\rloading a ver... 10% 10/100 10.0 it/s failed in 1.0s some info error: disk full\x1b[K\n`);
  p.tick();
  assert.equal(writes.length, 2);
});

test('progress: unknown total, byte units, fail without a TTY', () => {
  const { writes, stream } = fakeStream(false);
  const clock = fakeClock();
  const p = createProgress({ label: 'hashing', unit: 'B', stream, now: clock.now });
  clock.advance(2000);
  p.update(3 * 1024 * 1024);
  assert.equal(writes[0], 'hashing: 3.00 MiB (1.50 MiB/s)\n');
  p.fail('aborted');
  assert.equal(writes[1], 'hashing: failed, 3.00 MiB in 2.0s (1.50 MiB/s) error: aborted\n');
  assert.equal(p.value, 3 * 1024 * 1024);
});

test('progress: writes to stderr by default, never stdout', (t) => {
  const out: string[] = [], err: string[] = [];
  const so = process.stdout.write, se = process.stderr.write;
  t.after(() => {
    process.stdout.write = so;
    process.stderr.write = se;
  });
  process.stdout.write = ((s: string) => (out.push(s), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => (err.push(s), true)) as typeof process.stderr.write;
  const p = createProgress({ label: 'x', total: 2 });
  p.tick();
  p.tick();
  p.done();
  process.stdout.write = so;
  process.stderr.write = se;
  assert.deepEqual(out, []);
  assert.ok(err.length >= 1);
  assert.match(err[err.length - 1]!, /done/);
});

test('progress: duration and byte formats', () => {
  assert.equal(formatDuration(2.345), '2.3s');
  assert.equal(formatDuration(42.4), '42s');
  assert.equal(formatDuration(185), '3:05');
  assert.equal(formatDuration(3723), '1:02:03');
  assert.equal(formatDuration(Infinity), '?');
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.50 KiB');
  assert.equal(formatBytes(7 * 1024 ** 3 + 30 * 1024 ** 2), '7.03 GiB');
  assert.equal(formatBytes(150 * 1024 ** 2), '150 MiB');
});
