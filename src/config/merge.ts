// OmegaConf.merge and dotlist overrides, on plain config data.
//
// mergeConfigs(a, b, c): left to right, later wins. Mappings merge key by key, deeply; lists,
// scalars and null replace; a `???` (missing) value does not replace an existing one; merging a
// mapping into a node interpolation (`params: ${model.params.encoder_config.params}`) first copies
// the mapping it points to and merges into the copy (the referenced node is unchanged); merging a
// mapping into a list or a list into a mapping is an error, as in OmegaConf.
//
// applyOverrides(cfg, ['a.b.c=value']): what main.py does with the command line
// (`OmegaConf.merge(*configs, OmegaConf.from_dotlist(unknown))`): the value is read as YAML with
// the same scalar rules (`x=3` int, `x=1e-4` float, `x=True` bool, `x=[1,2]` list, `x=` null),
// missing keys are created, a scalar on the way is replaced by a mapping, and the value merges in
// with the rules above. Beyond from_dotlist, a numeric component indexes into a list
// (`emb_models.0.params.layer=penultimate`, also `emb_models[0]...`), as OmegaConf.update does.
import { ConfigError, showPath } from './errors.js';
import { dereferenceNode, isNodeInterpolation, splitKey } from './interpolate.js';
import { MISSING, cloneConfig, hasKey, isMapping, parseYamlValue, setKey, typeName } from './yaml.js';
import type { ConfigMap, ConfigValue } from './yaml.js';

function pathOf(comps: readonly string[]): string {
  return comps.join('.');
}

/** Merges `src` into the existing value `dest` at `comps` of `root`; returns the new value. */
function mergeValue(dest: ConfigValue, src: ConfigValue, comps: string[], root: ConfigMap): ConfigValue {
  if (src === MISSING) return dest;
  if (isMapping(src)) {
    let base = dest;
    if (isNodeInterpolation(dest)) {
      const target = dereferenceNode(root, comps, dest);
      if (isMapping(target)) base = cloneConfig(target);
    }
    if (isMapping(base)) {
      mergeMapping(base, src, comps, root);
      return base;
    }
    if (Array.isArray(base)) {
      throw new ConfigError(
        `${showPath(pathOf(comps))}: cannot merge a mapping into a list (OmegaConf: "Cannot merge DictConfig with ListConfig"); set the whole list instead`,
        { path: pathOf(comps) },
      );
    }
    return cloneConfig(src);
  }
  if (Array.isArray(src)) {
    if (isMapping(dest)) {
      throw new ConfigError(
        `${showPath(pathOf(comps))}: cannot merge a list into a mapping (OmegaConf: "Cannot merge DictConfig with ListConfig"); set it to null first, or change the base config`,
        { path: pathOf(comps) },
      );
    }
    return cloneConfig(src);
  }
  return src;
}

function mergeMapping(dest: ConfigMap, src: ConfigMap, comps: string[], root: ConfigMap): void {
  for (const [key, value] of Object.entries(src)) {
    const child = [...comps, key];
    if (!hasKey(dest, key)) setKey(dest, key, cloneConfig(value));
    else setKey(dest, key, mergeValue(dest[key]!, value, child, root));
  }
}

/** OmegaConf.merge: a new config, the inputs unchanged. */
export function mergeConfigs(...cfgs: ConfigMap[]): ConfigMap {
  cfgs.forEach((c, i) => {
    if (!isMapping(c)) throw new ConfigError(`mergeConfigs: config ${i + 1} is a ${typeName(c)}, configs must be mappings`);
  });
  if (cfgs.length === 0) return {};
  const root = cloneConfig(cfgs[0]!);
  for (const c of cfgs.slice(1)) mergeMapping(root, c, [], root);
  return root;
}

export interface ParsedOverride {
  /** The override as given. */
  text: string;
  /** The key as given (`a.b[0].c`). */
  key: string;
  /** The key's components (`['a', 'b', '0', 'c']`). */
  path: string[];
  /** The value, read as YAML. */
  value: ConfigValue;
}

/** Parses one `key.path=value` override. */
export function parseOverride(text: string): ParsedOverride {
  const eq = text.indexOf('=');
  if (eq < 0) {
    throw new ConfigError(`override '${text}': expected key.path=value, found no '='`);
  }
  const key = text.slice(0, eq);
  const path = splitKey(key, `override '${text}'`);
  // A YAML syntax error in the value names the override: "override 'x=[1' (value):1:3: ...".
  const value = parseYamlValue(text.slice(eq + 1), `override '${text}' (value)`);
  return { text, key, path, value };
}

function listIndex(list: ConfigValue[], key: string, comps: string[], override: string): number {
  if (!/^\d+$/.test(key)) {
    throw new ConfigError(
      `override '${override}': '${showPath(pathOf(comps))}' is a list, so the next key must be an index (0..${list.length - 1}), not '${key}'`,
    );
  }
  const idx = Number(key);
  if (idx >= list.length) {
    throw new ConfigError(
      `override '${override}': index ${idx} is out of range for the list at '${showPath(pathOf(comps))}' (length ${list.length}); set the whole list instead`,
    );
  }
  return idx;
}

function applyOne(root: ConfigMap, o: ParsedOverride): void {
  let node: ConfigMap | ConfigValue[] = root;
  const comps: string[] = [];
  for (let i = 0; i < o.path.length; i++) {
    const key = o.path[i]!;
    const last = i === o.path.length - 1;
    const childComps = [...comps, key];
    let cur: ConfigValue | undefined;
    let set: (v: ConfigValue) => void;
    if (Array.isArray(node)) {
      const list: ConfigValue[] = node;
      const idx = listIndex(list, key, comps, o.text);
      cur = list[idx];
      set = (v) => {
        list[idx] = v;
      };
    } else {
      const map: ConfigMap = node;
      cur = hasKey(map, key) ? map[key] : undefined;
      set = (v) => setKey(map, key, v);
    }
    if (last) {
      set(cur === undefined ? cloneConfig(o.value) : mergeValue(cur, o.value, childComps, root));
      return;
    }
    let next: ConfigValue | undefined = cur;
    if (isNodeInterpolation(next)) {
      const target = dereferenceNode(root, childComps, next);
      next = isMapping(target) || Array.isArray(target) ? cloneConfig(target) : undefined;
      if (next !== undefined) set(next);
    }
    if (!isMapping(next) && !Array.isArray(next)) {
      next = {};
      set(next);
    }
    node = next;
    comps.push(key);
  }
}

/** Applies `key.path=value` overrides in order; returns a new config, the input unchanged. */
export function applyOverrides(cfg: ConfigMap, overrides: readonly string[]): ConfigMap {
  if (!isMapping(cfg)) throw new ConfigError(`applyOverrides: the config is a ${typeName(cfg)}, it must be a mapping`);
  const root = cloneConfig(cfg);
  for (const text of overrides) applyOne(root, parseOverride(text));
  return root;
}

/** OmegaConf.from_dotlist: a config built from overrides alone. */
export function fromDotlist(overrides: readonly string[]): ConfigMap {
  return applyOverrides({}, overrides);
}
