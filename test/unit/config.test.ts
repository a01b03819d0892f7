// config/: YAML scalar rules (OmegaConf.load), merge and dotlist overrides (OmegaConf.merge +
// from_dotlist as main.py uses them), interpolation, the registry and instantiateFromConfig.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ConfigError,
  NotImplementedTargetError,
  Registry,
  applyOverrides,
  dumpConfig,
  fromDotlist,
  instantiateFromConfig,
  loadConfigFile,
  loadConfigs,
  mergeConfigs,
  parseConfig,
  parseYamlValue,
  placeholder,
  registerResolver,
  resolveInterpolations,
  resolvePlainScalar,
  select,
  splitKey,
  unregisterResolver,
} from '../../src/config/index.js';
import type { ConfigMap, InstantiateContext, TargetDef } from '../../src/config/index.js';
import { registerPlaceholders, registry as defaultRegistry, PLACEHOLDER_GROUPS } from '../../src/registry.js';
import * as nn from '../../src/nn/index.js';

const dataDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'data', 'config');
const data = (name: string): string => join(dataDir, name);

/** The value of `v: TEXT` in a one-line config. */
function scalar(text: string): unknown {
  return parseConfig(`v: ${text}\n`, 'scalar.yaml')['v'];
}

/** Asserts `fn` throws a ConfigError whose message contains every fragment; returns it. */
function throwsConfig(fn: () => unknown, ...fragments: (string | RegExp)[]): ConfigError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err === undefined ? 'no error' : String(err)}`);
  for (const f of fragments) {
    if (typeof f === 'string') assert.ok(err.message.includes(f), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(f)}`);
    else assert.match(err.message, f);
  }
  return err;
}

// ---------------------------------------------------------------------------------------------
// YAML scalars

test('yaml: YAML 1.1 booleans in PyYAML case variants, but not y/n', () => {
  for (const t of ['yes', 'Yes', 'YES', 'true', 'True', 'TRUE', 'on', 'On', 'ON']) assert.equal(scalar(t), true, t);
  for (const t of ['no', 'No', 'NO', 'false', 'False', 'FALSE', 'off', 'Off', 'OFF']) assert.equal(scalar(t), false, t);
  for (const t of ['y', 'Y', 'n', 'N', 'tRue', 'yEs', 'oN']) assert.equal(scalar(t), t, t);
});

test('yaml: floats include OmegaConf exponent forms', () => {
  const cases: [string, number][] = [
    ['1e-4', 1e-4],
    ['1.0e-4', 1e-4],
    ['4.5e-6', 4.5e-6],
    ['1.0e4', 1e4],
    ['-1E3', -1000],
    ['+2e+2', 200],
    ['1.', 1],
    ['.5', 0.5],
    ['0.13025', 0.13025],
    ['1_000.5', 1000.5],
    ['190:20:30.15', 190 * 3600 + 20 * 60 + 30.15],
    ['.inf', Infinity],
    ['-.Inf', -Infinity],
    ['+.INF', Infinity],
  ];
  for (const [t, v] of cases) assert.equal(scalar(t), v, t);
  assert.ok(Number.isNaN(scalar('.nan') as number));
  assert.ok(Number.isNaN(scalar('.NaN') as number));
  for (const t of ['.', '1e', 'e5', '1.2.3', 'inf', 'nan', '1e-4x']) assert.equal(scalar(t), t, t);
});

test('yaml: ints in YAML 1.1 forms', () => {
  const cases: [string, number][] = [
    ['42', 42],
    ['-17', -17],
    ['+5', 5],
    ['0', 0],
    ['1_000', 1000],
    ['0x1F', 31],
    ['0b101', 5],
    ['017', 15],
    ['1:30', 90],
    ['-1:00:00', -3600],
  ];
  for (const [t, v] of cases) assert.equal(scalar(t), v, t);
  assert.equal(scalar('09'), '09', 'not octal, not decimal: a string');
});

test('yaml: null forms, strings, quoting, no timestamps', () => {
  for (const t of ['~', 'null', 'Null', 'NULL', '']) assert.equal(scalar(t), null, JSON.stringify(t));
  for (const t of ['nil', 'NuLL', 'None']) assert.equal(scalar(t), t);
  assert.equal(scalar('0,'), '0,');
  assert.equal(scalar('"yes"'), 'yes');
  assert.equal(scalar("'1e-4'"), '1e-4');
  assert.equal(scalar('"null"'), 'null');
  assert.equal(scalar('2023-11-30'), '2023-11-30');
  assert.equal(scalar('vanilla-xformers'), 'vanilla-xformers');
  assert.equal(scalar('val/rec_loss'), 'val/rec_loss');
  assert.equal(scalar('${model.params.x}'), '${model.params.x}');
  assert.deepEqual(scalar('[1, 2.5, yes, "4", n]'), [1, 2.5, true, '4', 'n']);
  // resolvePlainScalar applies the same rules
  assert.equal(resolvePlainScalar('On'), true);
  assert.equal(resolvePlainScalar('1e5'), 1e5);
  assert.equal(resolvePlainScalar('y'), 'y');
});

test('yaml: explicit tags, anchors, merge keys, key text', () => {
  const cfg = parseConfig(
    ['a: !!str 3', 'b: !!int "42"', 'c: !!float 1', 'd: !!bool "yes"', 'base: &b {x: 1, y: 2}', 'e:', '  <<: *b', '  y: 3', 'f: *b', '1.0: one', 'on: key'].join('\n'),
    'tags.yaml',
  );
  assert.equal(cfg['a'], '3');
  assert.equal(cfg['b'], 42);
  assert.equal(cfg['c'], 1);
  assert.equal(cfg['d'], true);
  assert.deepEqual(cfg['e'], { x: 1, y: 3 });
  assert.deepEqual(cfg['f'], { x: 1, y: 2 });
  assert.notEqual(cfg['f'], cfg['base'], 'aliases become independent copies');
  assert.equal(cfg['1.0'], 'one');
  assert.equal(cfg['on'], 'key');
});

test('yaml: top level must be a mapping; empty is {}', () => {
  assert.deepEqual(parseConfig('', 'empty.yaml'), {});
  assert.deepEqual(parseConfig('# only a comment\n', 'empty.yaml'), {});
  const e = throwsConfig(() => loadConfigFile(data('top-level-list.yaml')), 'top-level-list.yaml:1:1', 'must be a mapping', 'found a list');
  assert.equal(e.file, data('top-level-list.yaml'));
  throwsConfig(() => parseConfig('just a string\n', 'scalar.yaml'), 'scalar.yaml', 'found a string');
  throwsConfig(() => parseConfig('a: 1\n---\nb: 2\n', 'multi.yaml'), 'multi.yaml:2:1', 'multiple documents');
  throwsConfig(() => loadConfigFile(data('does-not-exist.yaml')), 'does-not-exist.yaml', 'no such file');
});

test('yaml: a syntax error names file, line, column and the problem', () => {
  const path = data('broken.yaml');
  const e = throwsConfig(() => loadConfigFile(path), `${path}:6:5: YAML syntax error: `, 'Flow sequence', 'channel_mult: [1, 2, 4');
  assert.equal(e.file, path);
  assert.equal(e.line, 6);
  assert.equal(e.column, 5);
  throwsConfig(() => parseConfig('a: 1\n  b: 2\n', 'indent.yaml'), /^indent\.yaml:1:\d+: YAML syntax error: \S/);
});

test('yaml: a duplicate key names file, line and the key', () => {
  const path = data('duplicate-key.yaml');
  const e = throwsConfig(() => loadConfigFile(path), `${path}:5:5: duplicate key 'scale_factor'`, 'first defined at line 4');
  assert.equal(e.line, 5);
});

test('yaml: dumpConfig reads back to the same data', () => {
  const cfg: ConfigMap = { a: 'yes', b: '1e-4', c: 1e-4, d: 3, e: true, f: null, g: '', h: '0,', i: [1, 'on', { j: 'null' }], k: 2.5, l: Infinity };
  assert.deepEqual(parseConfig(dumpConfig(cfg), 'dump.yaml'), cfg);
  const ref = loadConfigFile(data('base.yaml'));
  assert.deepEqual(parseConfig(dumpConfig(ref), 'dump.yaml'), ref);
});

// ---------------------------------------------------------------------------------------------
// Merge

test('merge: later wins, mappings merge deeply, lists and null replace, new keys added', () => {
  const base = loadConfigFile(data('base.yaml'));
  const second = loadConfigFile(data('second.yaml'));
  const before = structuredClone(base);
  const m = mergeConfigs(base, second) as any;
  assert.deepEqual(base, before, 'inputs unchanged');
  assert.equal(m.name, 'second');
  assert.equal(m.model.base_learning_rate, 1e-4);
  assert.equal(m.model.target, 'sgm.models.diffusion.DiffusionEngine');
  assert.equal(m.model.params.use_ema, false);
  assert.deepEqual(m.model.params.network_config.params, {
    channel_mult: [1, 2],
    attention_resolutions: [4, 2],
    num_res_blocks: 2,
    num_head_channels: 64,
  });
  assert.equal(m.lightning, null);
  assert.deepEqual(Object.keys(m), ['name', 'model', 'lightning'], 'key order kept');
});

test('merge: a mapping merged into a node interpolation merges into a copy of its target', () => {
  const m = mergeConfigs(loadConfigFile(data('base.yaml')), loadConfigFile(data('second.yaml'))) as any;
  assert.deepEqual(m.model.params.decoder_config.params, { ch: 64, ch_mult: [1, 2, 4] });
  assert.deepEqual(m.model.params.encoder_config.params, { ch: 128, ch_mult: [1, 2, 4] });
});

test('merge: list replace, null, ???, type changes, three configs', () => {
  assert.deepEqual(mergeConfigs({ a: [1, 2, 3] }, { a: [9] }), { a: [9] });
  assert.deepEqual(mergeConfigs({ a: { b: 1 } }, { a: null }), { a: null });
  assert.deepEqual(mergeConfigs({ a: null }, { a: { b: 1 } }), { a: { b: 1 } });
  assert.deepEqual(mergeConfigs({ a: { b: 1 } }, { a: 'x' }), { a: 'x' });
  assert.deepEqual(mergeConfigs({ a: 'x' }, { a: { b: 1 } }), { a: { b: 1 } });
  assert.deepEqual(mergeConfigs({ a: 5 }, { a: '???' }), { a: 5 }, '??? does not replace a value');
  assert.deepEqual(mergeConfigs({}, { a: '???' }), { a: '???' });
  assert.deepEqual(mergeConfigs({ a: 1, b: { c: 1 } }, { b: { d: 2 } }, { a: 3, b: { c: 4 } }), { a: 3, b: { c: 4, d: 2 } });
  assert.deepEqual(mergeConfigs(), {});
  throwsConfig(() => mergeConfigs({ a: [1] }, { a: { b: 1 } }), 'a: cannot merge a mapping into a list');
  throwsConfig(() => mergeConfigs({ a: { b: 1 } }, { a: [1] }), 'a: cannot merge a list into a mapping');
  throwsConfig(() => mergeConfigs({ a: 1 }, [1] as unknown as ConfigMap), 'config 2 is a list');
  const src = { a: { b: [1] } };
  const m = mergeConfigs({}, src) as any;
  m.a.b.push(2);
  assert.deepEqual(src, { a: { b: [1] } }, 'no sharing with inputs');
});

// ---------------------------------------------------------------------------------------------
// Overrides

test('overrides: values are read with the YAML scalar rules', () => {
  const o = fromDotlist([
    'i=3',
    'f=3.5',
    'e=1e-4',
    't=True',
    'y=yes',
    'n=null',
    'empty=',
    'l=[1, 2]',
    'd={a: 1, b: [x]}',
    's=hello world',
    'q="3"',
    'dev=0,',
    'eq=a=b',
  ]);
  assert.deepEqual(o, {
    i: 3,
    f: 3.5,
    e: 1e-4,
    t: true,
    y: true,
    n: null,
    empty: null,
    l: [1, 2],
    d: { a: 1, b: ['x'] },
    s: 'hello world',
    q: '3',
    dev: '0,',
    eq: 'a=b',
  });
});

test('overrides: missing keys are created; scalars on the way become mappings; later wins', () => {
  assert.deepEqual(applyOverrides({}, ['a.b.c=1']), { a: { b: { c: 1 } } });
  assert.deepEqual(applyOverrides({ a: 5 }, ['a.b=1']), { a: { b: 1 } });
  assert.deepEqual(applyOverrides({ a: { x: 1 } }, ['a.y=2', 'a.y=3']), { a: { x: 1, y: 3 } });
  const cfg = { a: { b: 1 } };
  applyOverrides(cfg, ['a.b=2']);
  assert.deepEqual(cfg, { a: { b: 1 } }, 'input unchanged');
});

test('overrides: numeric components index into lists', () => {
  const base = loadConfigFile(data('base.yaml'));
  const o = applyOverrides(base, [
    'model.params.conditioner_config.params.emb_models.1.params.outdim=512',
    'model.params.conditioner_config.params.emb_models[0].params.layer=penultimate',
    'model.params.network_config.params.channel_mult.2=8',
  ]) as any;
  const emb = o.model.params.conditioner_config.params.emb_models;
  assert.equal(emb[1].params.outdim, 512);
  assert.equal(emb[0].params.layer, 'penultimate');
  assert.equal(emb[0].params.layer_idx, 11);
  assert.equal(emb.length, 2);
  assert.deepEqual(o.model.params.network_config.params.channel_mult, [1, 2, 8]);
  throwsConfig(
    () => applyOverrides(base, ['model.params.conditioner_config.params.emb_models.5.params.outdim=1']),
    "override 'model.params.conditioner_config.params.emb_models.5.params.outdim=1'",
    'index 5 is out of range',
    'length 2',
  );
  throwsConfig(() => applyOverrides(base, ['model.params.network_config.params.channel_mult.x=1']), 'is a list', "not 'x'");
});

test('overrides: mappings merge, lists replace, interpolated nodes are copied first', () => {
  const base = loadConfigFile(data('base.yaml'));
  const o = applyOverrides(base, [
    'model.params.network_config.params={num_res_blocks: 3}',
    'model.params.network_config.params.attention_resolutions=[1]',
    'model.params.decoder_config.params.ch=64',
  ]) as any;
  assert.deepEqual(o.model.params.network_config.params, { channel_mult: [1, 2, 4], attention_resolutions: [1], num_res_blocks: 3 });
  assert.deepEqual(o.model.params.decoder_config.params, { ch: 64, ch_mult: [1, 2, 4] });
  assert.equal(o.model.params.encoder_config.params.ch, 128);
});

test('overrides: bad syntax names the override', () => {
  throwsConfig(() => applyOverrides({}, ['model.params.x']), "override 'model.params.x'", "no '='");
  throwsConfig(() => applyOverrides({}, ['a..b=1']), "override 'a..b=1'", 'empty key component');
  throwsConfig(() => applyOverrides({}, ['=1']), "override '=1'");
  throwsConfig(() => applyOverrides({}, ['a=[1, 2']), "override 'a=[1, 2' (value):1:", 'YAML syntax error');
  assert.deepEqual(splitKey('a.b[0].c'), ['a', 'b', '0', 'c']);
  assert.deepEqual(splitKey('a[1][2]'), ['a', '1', '2']);
});

// ---------------------------------------------------------------------------------------------
// Interpolation

test('interpolation: node interpolation returns mappings and lists, as copies', () => {
  const r = resolveInterpolations(loadConfigFile(data('base.yaml'))) as any;
  assert.deepEqual(r.model.params.decoder_config.params, { ch: 128, ch_mult: [1, 2, 4] });
  r.model.params.decoder_config.params.ch_mult.push(8);
  assert.deepEqual(r.model.params.encoder_config.params.ch_mult, [1, 2, 4]);
  const l = resolveInterpolations({ a: [1, { b: 2 }], c: '${a}', d: '${a[1]}', e: '${a.1.b}' }) as any;
  assert.deepEqual(l.c, [1, { b: 2 }]);
  assert.deepEqual(l.d, { b: 2 });
  assert.equal(l.e, 2);
});

test('interpolation: string interpolation uses Python str()', () => {
  const r = resolveInterpolations({
    name: 'toy',
    n: 3,
    f: 1e-5,
    g: 0.5,
    t: true,
    z: null,
    l: [1, 'a'],
    a: 'logs/${name}',
    b: '${name}-${n}-${f}-${g}-${t}-${z}',
    c: 'list ${l}',
    d: 'cost $5 {x}',
  });
  assert.equal(r['a'], 'logs/toy');
  assert.equal(r['b'], 'toy-3-1e-05-0.5-True-None');
  assert.equal(r['c'], "list [1, 'a']");
  assert.equal(r['d'], 'cost $5 {x}');
  // after merging, as main.py does: `name` comes from the second config
  const merged = mergeConfigs(loadConfigFile(data('base.yaml')), loadConfigFile(data('second.yaml')));
  assert.equal((resolveInterpolations(merged) as any).model.params.log_dir, 'logs/second');
});

test('interpolation: relative keys, nested interpolation, chains, escapes', () => {
  const r = resolveInterpolations({
    a: { b: 1, c: '${.b}', d: { e: '${..b}', f: '${...top}' }, list: [10, '${.0}'] },
    top: 'T',
    key: 'b',
    g: '${a.${key}}',
    h: '${i}',
    i: '${j}',
    j: 7,
    k: '${h2.e}',
    h2: '${a.d}',
    esc: '\\${a.b}',
    esc2: 'x \\\\${a.b}',
  }) as any;
  assert.equal(r.a.c, 1);
  assert.equal(r.a.d.e, 1);
  assert.equal(r.a.d.f, 'T');
  assert.deepEqual(r.a.list, [10, 10]);
  assert.equal(r.g, 1);
  assert.equal(r.h, 7);
  assert.equal(r.k, 1);
  assert.equal(r.esc, '${a.b}');
  assert.equal(r.esc2, 'x \\1');
});

test('interpolation: through an interpolated node', () => {
  const r = resolveInterpolations({ a: { x: 1, y: '${.x}' }, b: '${a}', c: '${b.y}' }) as any;
  assert.equal(r.c, 1);
  assert.deepEqual(r.b, { x: 1, y: 1 });
});

test('interpolation: oc.env, oc.select, oc.decode, custom resolvers', () => {
  process.env['SGM_CONFIG_TEST_VAR'] = '/data/x';
  delete process.env['SGM_CONFIG_TEST_UNSET'];
  const r = resolveInterpolations({
    a: '${oc.env:SGM_CONFIG_TEST_VAR}',
    b: '${oc.env:SGM_CONFIG_TEST_UNSET,fallback}',
    c: '${oc.env:SGM_CONFIG_TEST_UNSET, "quoted, default"}',
    d: '${oc.env:SGM_CONFIG_TEST_UNSET,null}',
    e: 'root=${oc.env:SGM_CONFIG_TEST_VAR}/sub',
    f: '${oc.select:nope,7}',
    g: '${oc.select:a}',
    h: '${oc.decode:"[1, 2]"}',
    i: '${oc.env:SGM_CONFIG_TEST_UNSET,${a}}',
  });
  assert.deepEqual(r, {
    a: '/data/x',
    b: 'fallback',
    c: 'quoted, default',
    d: null,
    e: 'root=/data/x/sub',
    f: 7,
    g: '/data/x',
    h: [1, 2],
    i: '/data/x',
  });
  throwsConfig(() => resolveInterpolations({ m: { p: '${oc.env:SGM_CONFIG_TEST_UNSET}' } }), 'm.p:', "environment variable 'SGM_CONFIG_TEST_UNSET' is not set");
  registerResolver('test.add', (args) => (args as number[]).reduce((s, x) => s + x, 0));
  try {
    assert.deepEqual(resolveInterpolations({ x: 2, y: '${test.add:1,${x},3.5}' }), { x: 2, y: 6.5 });
    throwsConfig(() => registerResolver('test.add', () => 0), 'already registered');
  } finally {
    unregisterResolver('test.add');
  }
});

test('interpolation: missing keys, cycles, ??? and grammar errors name the key path', () => {
  throwsConfig(
    () => resolveInterpolations({ model: { params: { a: { bb: 1 }, c: '${model.params.a.b}' } } }),
    'model.params.c:',
    "'${model.params.a.b}'",
    "'model.params.a.b' does not exist",
    "did you mean 'model.params.a.bb'",
  );
  throwsConfig(() => resolveInterpolations({ a: '${b}', b: '${c}', c: '${a}' }), 'interpolation cycle', 'a -> b -> c -> a');
  throwsConfig(() => resolveInterpolations({ a: { b: '${a}' } }), 'interpolation cycle');
  throwsConfig(() => resolveInterpolations({ a: '???', b: { c: '${a}' } }), 'b.c:', 'missing mandatory value');
  assert.deepEqual(resolveInterpolations({ a: '???' }), { a: '???' }, 'unreferenced ??? stays');
  throwsConfig(() => resolveInterpolations({ x: { y: 'a ${b' } }), 'x.y:', 'invalid interpolation', 'missing');
  throwsConfig(() => resolveInterpolations({ x: '${env:HOME}' }), "unknown resolver 'env'", "did you mean 'oc.env'");
  throwsConfig(() => resolveInterpolations({ x: '${...a}' }), 'goes above the root');
});

test('interpolation: select and the input is unchanged', () => {
  const cfg = loadConfigFile(data('base.yaml'));
  const before = structuredClone(cfg);
  resolveInterpolations(cfg);
  assert.deepEqual(cfg, before);
  assert.deepEqual(select(cfg, 'model.params.decoder_config.params.ch_mult'), [1, 2, 4]);
  assert.equal(select(cfg, 'model.params.log_dir'), 'logs/toy');
  assert.equal(select(cfg, 'model.params.nope'), undefined);
});

test('loadConfigs: load, merge, override, resolve', () => {
  const cfg = loadConfigs([data('base.yaml'), data('second.yaml')], { overrides: ['name=cli', 'model.params.encoder_config.params.ch=32'] }) as any;
  assert.equal(cfg.model.params.log_dir, 'logs/cli');
  assert.equal(cfg.model.params.encoder_config.params.ch, 32);
  // the decoder got its own copy (with ch 64) when second.yaml merged into it
  assert.equal(cfg.model.params.decoder_config.params.ch, 64);
  const unresolved = loadConfigs([data('base.yaml')], { resolve: false }) as any;
  assert.equal(unresolved.model.params.log_dir, 'logs/${name}');
});

test('parseYamlValue: any top-level value', () => {
  assert.deepEqual(parseYamlValue('[1, yes]'), [1, true]);
  assert.equal(parseYamlValue(''), null);
});

// ---------------------------------------------------------------------------------------------
// Registry and instantiate

class Scaling {
  constructor(readonly sigmaData: number) {}
}
class Denoiser {
  constructor(
    readonly numIdx: number,
    readonly scaling: Scaling,
    readonly discretization: unknown,
    readonly scalingPath: string,
  ) {}
}
class Engine {
  constructor(
    readonly denoiser: Denoiser,
    readonly params: Record<string, unknown>,
    readonly path: string,
  ) {}
}

function testRegistry(): Registry {
  const reg = new Registry();
  reg.register({
    target: 'test.scaling.EDMScaling',
    params: { sigma_data: { type: 'number', default: 0.5 } },
    create: (p) => new Scaling(p['sigma_data'] as number),
  });
  reg.register({
    target: 'test.denoiser.DiscreteDenoiser',
    params: {
      num_idx: { type: 'int', required: true },
      scaling_config: { type: 'config', required: true },
      discretization_config: { type: 'config', default: null },
      quantize_c_noise: { type: 'bool', default: true },
    },
    create: (p, ctx) => {
      const path = `${ctx.path}.params.scaling_config`;
      return new Denoiser(p['num_idx'] as number, ctx.instantiate<Scaling>(p['scaling_config'], path), p['discretization_config'], path);
    },
  });
  reg.register({
    target: 'test.models.Engine',
    params: {
      denoiser_config: { type: 'config', required: true },
      scale_factor: { type: 'number', default: 1.0 },
      use_ema: { type: 'bool', default: false },
      network_config: { type: ['config', 'dict'], nullable: true },
      tags: { type: 'list', default: [] },
    },
    create: (p, ctx) =>
      new Engine(ctx.instantiate<Denoiser>(p['denoiser_config'], `${ctx.path}.params.denoiser_config`), p, ctx.path),
  });
  reg.register({ target: 'test.Kwargs', params: { a: { type: 'int' } }, acceptsExtra: true, create: (p) => p });
  reg.register({ target: 'test.Unchecked', create: (p) => p });
  reg.register(placeholder('test.future.Sampler', 'arrives with issue 99: samplers'));
  return reg;
}

function engineConfig(): ConfigMap {
  return {
    target: 'test.models.Engine',
    params: {
      scale_factor: 0.13025,
      denoiser_config: {
        target: 'test.denoiser.DiscreteDenoiser',
        params: { num_idx: 1000, scaling_config: { target: 'test.scaling.EDMScaling' } },
      },
    },
  };
}

test('instantiate: builds nested objects through ctx.instantiate, with defaults filled in', () => {
  const reg = testRegistry();
  const cfg = engineConfig();
  const before = structuredClone(cfg);
  const e = instantiateFromConfig<Engine>(cfg, { registry: reg, path: 'model' });
  assert.ok(e instanceof Engine);
  assert.equal(e.path, 'model');
  assert.equal(e.params['scale_factor'], 0.13025);
  assert.equal(e.params['use_ema'], false);
  assert.deepEqual(e.params['tags'], []);
  assert.ok(!('network_config' in e.params), 'no default: stays absent');
  assert.ok(e.denoiser instanceof Denoiser);
  assert.equal(e.denoiser.numIdx, 1000);
  assert.equal(e.denoiser.discretization, null);
  assert.equal(e.denoiser.scalingPath, 'model.params.denoiser_config.params.scaling_config');
  assert.equal(e.denoiser.scaling.sigmaData, 0.5);
  (e.params['denoiser_config'] as any).params.num_idx = 1;
  assert.deepEqual(cfg, before, 'the config is not changed through the params');
});

test('instantiate: the special strings give null', () => {
  assert.equal(instantiateFromConfig('__is_first_stage__', { registry: testRegistry() }), null);
  assert.equal(instantiateFromConfig('__is_unconditional__', { registry: testRegistry() }), null);
});

test('instantiate: an unknown param names the path, the param, the suggestion and the accepted list', () => {
  const cfg = engineConfig() as any;
  cfg.params.denoiser_config.params.num_ix = 1000;
  delete cfg.params.denoiser_config.params.num_idx;
  const e = throwsConfig(
    () => instantiateFromConfig(cfg, { registry: testRegistry(), path: 'model' }),
    "model.params.denoiser_config.params: unknown param 'num_ix' for test.denoiser.DiscreteDenoiser;",
    "did you mean 'num_idx'?",
    'accepts: num_idx, scaling_config, discretization_config, quantize_c_noise',
    "missing required param 'num_idx'",
  );
  assert.match(e.message, /^2 problems/);
  const one = engineConfig() as any;
  one.params.scale_factr = 1;
  throwsConfig(
    () => instantiateFromConfig(one, { registry: testRegistry(), path: 'model' }),
    "model.params: unknown param 'scale_factr' for test.models.Engine; did you mean 'scale_factor'? test.models.Engine accepts: denoiser_config, scale_factor, use_ema, network_config, tags",
  );
});

test('instantiate: wrong types, missing required params, null and ???', () => {
  const reg = testRegistry();
  const withDenoiserParams = (params: Record<string, unknown>): ConfigMap => {
    const cfg = engineConfig() as any;
    Object.assign(cfg.params.denoiser_config.params, params);
    return cfg;
  };
  throwsConfig(
    () => instantiateFromConfig(withDenoiserParams({ num_idx: '1000' }), { registry: reg, path: 'model' }),
    'model.params.denoiser_config.params.num_idx: expected int',
    'found string "1000"',
  );
  throwsConfig(() => instantiateFromConfig(withDenoiserParams({ num_idx: 2.5 }), { registry: reg, path: 'model' }), 'expected int', 'found float 2.5');
  throwsConfig(
    () => instantiateFromConfig(withDenoiserParams({ scaling_config: { params: {} } }), { registry: reg, path: 'model' }),
    'scaling_config: expected config',
    'found dict',
  );
  throwsConfig(() => instantiateFromConfig(withDenoiserParams({ quantize_c_noise: null }), { registry: reg, path: 'model' }), 'expected bool', 'found null');
  throwsConfig(
    () => instantiateFromConfig(withDenoiserParams({ num_idx: '${model.n}' }), { registry: reg, path: 'model' }),
    'unresolved interpolation',
  );
  throwsConfig(
    () => instantiateFromConfig(withDenoiserParams({ num_idx: '???' }), { registry: reg, path: 'model' }),
    'model.params.denoiser_config.params.num_idx: missing mandatory value (???)',
  );
  const noDenoiser = engineConfig() as any;
  delete noDenoiser.params.denoiser_config;
  throwsConfig(() => instantiateFromConfig(noDenoiser, { registry: reg, path: 'model' }), "model.params: missing required param 'denoiser_config' for test.models.Engine");
  // null where nullable / default null
  const ok = engineConfig() as any;
  ok.params.network_config = null;
  ok.params.denoiser_config.params.discretization_config = null;
  const e = instantiateFromConfig<Engine>(ok, { registry: reg, path: 'model' });
  assert.equal(e.params['network_config'], null);
  // a union type accepts either
  ok.params.network_config = { plain: 'dict' };
  assert.deepEqual(instantiateFromConfig<Engine>(ok, { registry: reg }).params['network_config'], { plain: 'dict' });
  // numbers accept ints
  ok.params.scale_factor = 1;
  assert.equal(instantiateFromConfig<Engine>(ok, { registry: reg }).params['scale_factor'], 1);
});

test('instantiate: acceptsExtra and unchecked targets pass params through; params default to {}', () => {
  const reg = testRegistry();
  assert.deepEqual(instantiateFromConfig({ target: 'test.Kwargs', params: { a: 1, b: 'x' } }, { registry: reg }), { a: 1, b: 'x' });
  throwsConfig(() => instantiateFromConfig({ target: 'test.Kwargs', params: { a: 'x' } }, { registry: reg }), 'a: expected int');
  assert.deepEqual(instantiateFromConfig({ target: 'test.Unchecked', params: { anything: [1] } }, { registry: reg }), { anything: [1] });
  assert.deepEqual(instantiateFromConfig({ target: 'test.Unchecked' }, { registry: reg }), {});
  // other keys next to target/params (emb_models entries) are ignored
  assert.deepEqual(instantiateFromConfig({ target: 'test.Unchecked', is_trainable: false, input_key: 'txt' }, { registry: reg }), {});
});

test('instantiate: config shape errors', () => {
  const reg = testRegistry();
  throwsConfig(() => instantiateFromConfig({ params: {} }, { registry: reg, path: 'model.params.x' }), 'model.params.x: expected key `target` to instantiate', 'found keys: params');
  throwsConfig(() => instantiateFromConfig('hello', { registry: reg, path: 'a' }), 'a: expected a mapping with key `target`');
  throwsConfig(() => instantiateFromConfig({ target: 3 }, { registry: reg, path: 'a' }), 'a.target: expected a dotted class name');
  throwsConfig(() => instantiateFromConfig({ target: 'test.Unchecked', params: null }, { registry: reg, path: 'a' }), 'a.params: params must be a mapping', 'found null');
  throwsConfig(() => instantiateFromConfig({ target: 'test.Unchecked', params: [1] }, { registry: reg }), 'params: params must be a mapping', 'found list');
});

test('instantiate: an unknown target lists the 5 closest registered names', () => {
  const reg = testRegistry();
  const e = throwsConfig(
    () => instantiateFromConfig({ target: 'test.denoiser.DiscreteDenoser' }, { registry: reg, path: 'model.params.denoiser_config' }),
    "model.params.denoiser_config.target: unknown target 'test.denoiser.DiscreteDenoser'",
    'closest registered targets: test.denoiser.DiscreteDenoiser, ',
  );
  const listed = e.message.split('closest registered targets: ')[1]!.split(', ');
  assert.equal(listed.length, 5);
  // the class name alone matches even in another module
  assert.equal(reg.closest('sgm.modules.diffusionmodules.denoiser_scaling.EDMScaling', 1)[0], 'test.scaling.EDMScaling');
  assert.equal(reg.closest('test.Kwarg', 1)[0], 'test.Kwargs');
});

test('instantiate: a placeholder target throws NotImplementedTargetError with its reason', () => {
  const reg = testRegistry();
  let err: unknown;
  try {
    instantiateFromConfig({ target: 'test.future.Sampler', params: { num_steps: 50 } }, { registry: reg, path: 'model.params.sampler_config' });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof NotImplementedTargetError);
  assert.ok(err instanceof ConfigError);
  assert.equal(err.target, 'test.future.Sampler');
  assert.equal(err.reason, 'arrives with issue 99: samplers');
  assert.equal(err.message, "model.params.sampler_config: target 'test.future.Sampler' is not implemented yet (arrives with issue 99: samplers)");
});

test('registry: register, replace, names, isPlaceholder', () => {
  const reg = testRegistry();
  const def: TargetDef = { target: 'test.future.Sampler', create: () => 'real' };
  throwsConfig(() => reg.register(def), "target 'test.future.Sampler' is already registered as a placeholder", 'replace');
  throwsConfig(() => reg.register({ target: 'test.Kwargs', create: () => 0 }), "target 'test.Kwargs' is already registered");
  assert.equal(reg.isPlaceholder('test.future.Sampler'), true);
  reg.replace(def);
  assert.equal(reg.isPlaceholder('test.future.Sampler'), false);
  assert.equal(instantiateFromConfig({ target: 'test.future.Sampler' }, { registry: reg }), 'real');
  throwsConfig(() => reg.replace({ target: 'test.future.Sampler', create: () => 0 }), 'already implemented');
  throwsConfig(() => reg.replace({ target: 'test.never.Registered', create: () => 0 }), 'not registered');
  throwsConfig(() => reg.register({ target: 'NoDots', create: () => 0 }), 'dotted name');
  assert.deepEqual(reg.names(), [...reg.names()].sort());
  assert.equal(reg.has('test.Kwargs'), true);
  assert.equal(reg.get('test.nope'), undefined);
  assert.equal(reg.isPlaceholder('test.nope'), false);
});

test('src/registry.ts: trivial targets are real, the rest are placeholders with their issue', () => {
  const id = instantiateFromConfig<nn.Identity>({ target: 'torch.nn.Identity' }, { path: 'model.params.first_stage_config.params.lossconfig' });
  assert.ok(id instanceof nn.Identity);
  assert.ok(instantiateFromConfig({ target: 'torch.nn.Identity', params: { anything: 1 } }) instanceof nn.Identity);
  assert.equal(defaultRegistry.isPlaceholder('torch.nn.Identity'), false);
  for (const group of PLACEHOLDER_GROUPS) {
    for (const target of group.targets) {
      if (!defaultRegistry.isPlaceholder(target)) continue; // implemented by now
      assert.match(defaultRegistry.get(target)!.notImplemented!, new RegExp(`^arrives with ${group.issue}: `));
    }
  }
  const unet = 'sgm.modules.diffusionmodules.openaimodel.UNetModel';
  if (defaultRegistry.isPlaceholder(unet)) {
    assert.throws(
      () => instantiateFromConfig({ target: unet, params: { in_channels: 4 } }, { path: 'model.params.network_config' }),
      (e: unknown) => e instanceof NotImplementedTargetError && e.message.startsWith('model.params.network_config: ') && e.message.includes('issue 4'),
    );
  }
  // registerPlaceholders keeps implementations registered before it, and may run twice
  const reg = new Registry();
  const real: TargetDef = { target: 'sgm.models.diffusion.DiffusionEngine', create: (_p, ctx: InstantiateContext) => ctx.path };
  reg.register(real);
  registerPlaceholders(reg);
  registerPlaceholders(reg);
  assert.equal(reg.get('sgm.models.diffusion.DiffusionEngine'), real);
  assert.equal(reg.isPlaceholder('sgm.modules.diffusionmodules.denoiser.Denoiser'), true);
});
