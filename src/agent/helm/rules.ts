/**
 * Pure rules of Flux's helm-controller: the release name, the HelmChart a
 * HelmRelease owns, how values compose (valuesFrom in order, `targetPath`,
 * then inline `values`), the config digest recorded in `status.history`,
 * and a chart artifact's revision under each `reconcileStrategy`.
 */
import { createHash } from "node:crypto";

export type Values = Record<string, unknown>;

/** Helm's limit on release names (it labels objects with them). */
const MAX_RELEASE_NAME = 53;

/**
 * `spec.releaseName`, else `[targetNamespace-]name`; a name beyond Helm's
 * 53 characters is cut and suffixed with a hash so distinct names stay distinct.
 */
export function releaseNameOf(hr: { name: string; releaseName?: string; targetNamespace?: string }): string {
  const name = hr.releaseName || (hr.targetNamespace ? `${hr.targetNamespace}-${hr.name}` : hr.name);
  if (name.length <= MAX_RELEASE_NAME) return name;
  const sum = createHash("sha256").update(name).digest("hex").slice(0, 12);
  return `${name.slice(0, MAX_RELEASE_NAME - sum.length - 1)}-${sum}`;
}

/** The HelmChart helm-controller creates for a HelmRelease's `chart.spec`: `<namespace>-<name>`. */
export function chartObjectName(hr: { namespace: string; name: string }): string {
  return `${hr.namespace}-${hr.name}`;
}

/**
 * The version a chart artifact is published under (its revision), as
 * source-controller builds it: the chart's own version, with build metadata
 * appended when the artifact is more than that version: with
 * `reconcileStrategy: Revision` on a git source the first 12 hex of the
 * commit (every commit a new artifact, so an upgrade), and with
 * `valuesFiles` the HelmChart's generation (a changed list, a new artifact).
 */
export function chartRevision(
  version: string,
  opts: { strategy?: string; commit?: string; valuesFilesGeneration?: number },
): string {
  const meta: string[] = [];
  if (opts.strategy === "Revision" && opts.commit) meta.push(opts.commit.slice(0, 12));
  if (opts.valuesFilesGeneration !== undefined) meta.push(String(opts.valuesFilesGeneration));
  if (!meta.length) return version;
  // SemVer allows one build-metadata part: extend an existing one.
  return `${version}${version.includes("+") ? "." : "+"}${meta.join(".")}`;
}

function isMap(v: unknown): v is Values {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Deep merge as helm-controller's MergeMaps: maps merge key by key, anything else is replaced. */
export function mergeValues(base: Values, over: Values): Values {
  const out: Values = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const prev = out[k];
    out[k] = isMap(prev) && isMap(v) ? mergeValues(prev, v) : v;
  }
  return out;
}

/** A `targetPath` split into keys and list indices (`a.b\.c[0].d` → a, "b.c", 0, d). */
export function parseTargetPath(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  let key = "";
  let i = 0;
  const flush = () => {
    if (key === "") throw new Error(`targetPath "${path}": empty key`);
    out.push(key);
    key = "";
  };
  while (i < path.length) {
    const ch = path[i] as string;
    if (ch === "\\" && i + 1 < path.length) {
      key += path[i + 1];
      i += 2;
      continue;
    }
    if (ch === ".") {
      if (key !== "") flush();
      else if (out.length === 0 || typeof out[out.length - 1] !== "number")
        throw new Error(`targetPath "${path}": empty key`);
      i++;
      continue;
    }
    if (ch === "[") {
      if (key !== "") flush();
      const close = path.indexOf("]", i);
      const index = close === -1 ? "" : path.slice(i + 1, close);
      if (!/^\d+$/.test(index)) throw new Error(`targetPath "${path}": bad list index`);
      out.push(Number(index));
      i = close + 1;
      continue;
    }
    key += ch;
    i++;
  }
  if (key !== "") flush();
  if (out.length === 0) throw new Error("targetPath is empty");
  return out;
}

/**
 * A `targetPath` value as Helm's `--set` types it (true/false/null and
 * integers become typed, the rest stays a string); `literal` keeps it a string.
 */
export function typedValue(text: string, literal: boolean): unknown {
  if (literal) return text;
  if (text === "true") return true;
  if (text === "false") return false;
  if (text === "null") return null;
  if (/^-?(0|[1-9]\d*)$/.test(text) && Number.isSafeInteger(Number(text))) return Number(text);
  return text;
}

/** Sets `value` at a parsed path, creating maps and lists on the way (a copy; the input is untouched). */
export function setAtPath(values: Values, path: readonly (string | number)[], value: unknown): Values {
  const set = (node: unknown, at: number): unknown => {
    if (at === path.length) return value;
    const key = path[at] as string | number;
    if (typeof key === "number") {
      const list = Array.isArray(node) ? [...node] : [];
      while (list.length <= key) list.push(null);
      list[key] = set(list[key], at + 1);
      return list;
    }
    const map: Values = isMap(node) ? { ...node } : {};
    map[key] = set(map[key], at + 1);
    return map;
  };
  return set(values, 0) as Values;
}

/** One resolved `valuesFrom` entry: the text of its key (undefined: optional and absent). */
export interface ValuesSource {
  targetPath?: string;
  literal?: boolean;
  /** The parsed YAML document (for whole-document merges) or the raw text (for targetPath). */
  text: string;
  parsed?: unknown;
  /** `ConfigMap/name` for messages. */
  what: string;
}

/**
 * The values a release is installed with: each valuesFrom entry merged in
 * order (whole documents deep-merged, `targetPath` entries set at their
 * path), then the inline `values` over all of them.
 */
export function composeValues(sources: readonly ValuesSource[], inline: Values | undefined): Values {
  let out: Values = {};
  for (const s of sources) {
    if (s.targetPath) {
      out = setAtPath(out, parseTargetPath(s.targetPath), typedValue(s.text.trim(), s.literal === true));
      continue;
    }
    const doc = s.parsed;
    if (doc === null || doc === undefined) continue;
    if (!isMap(doc)) throw new Error(`${s.what}: values must be a YAML map`);
    out = mergeValues(out, doc);
  }
  return inline ? mergeValues(out, inline) : out;
}

/** JSON as Go's encoding/json writes it: map keys sorted, `<`, `>`, `&`, U+2028/9 escaped. */
export function goJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(goJson).join(",")}]`;
  if (isMap(value)) {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${goString(k)}:${goJson(value[k])}`).join(",")}}`;
  }
  if (typeof value === "string") return goString(value);
  return JSON.stringify(value ?? null);
}

function goString(s: string): string {
  return JSON.stringify(s).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** `sha256:<hex>` of the values' JSON: helm-controller's `configDigest`. */
export function configDigest(values: Values): string {
  return `sha256:${createHash("sha256").update(goJson(values)).digest("hex")}`;
}
