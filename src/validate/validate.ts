/**
 * `shipmate validate`: checks a fleet repository (any, not only scaffolded
 * ones) the way a cluster and shipmate would read it:
 * - every kustomization builds with the real kustomize (each root is built;
 *   a kustomization another one includes is built as part of it);
 * - every HelmRelease whose chart is reachable renders with the real helm
 *   (./helm.ts), its objects checked as a build's are;
 * - every object, built or loose, matches its Kubernetes or Flux schema;
 * - every `$imagepolicy` marker names a policy defined in the tree;
 * - every `dependsOn` names a Kustomization (or HelmRelease) defined in the
 *   tree, and every source, chart and image repository reference names one too;
 * - Flux Kustomizations synced from this repository point at folders that exist;
 * - shipmate.yaml is valid and its paths exist;
 * - no Secret is committed unencrypted where a `.sops.yaml` rule says files are encrypted.
 * Files Flux leaves out of the source artifact (`.sourceignore`, Flux's
 * default exclusions, the sync GitRepository's `ignore` and
 * `sparseCheckout`) are not read, as Flux never sees them. One Problem per
 * finding, with file and line where the tree has one; what cannot be checked
 * (a kind no schema defines) is a warning, never a failure.
 */

import { readFileSync, statSync } from "node:fs";
import { stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { basename, dirname, join, normalize, relative, resolve, sep } from "node:path";
import { type Document, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import { sparseDir } from "../agent/git-source.ts";
import { FLEET_FILE, parseFleet } from "../config/fleet.ts";
import { documentValue, MAX_CRDS, parseDocumentsBounded, sizeRefusal } from "../config/limits.ts";
import { kustomizeNamespaces, policyNamespace } from "../config/namespace.ts";
import { DEFAULT_NAMESPACE } from "../config/schema.ts";
import { type TreeWalk, walkTree } from "../config/tree.ts";
import { ConfigError } from "../errors.ts";
import { mayContainMarker, parseMarker } from "../manifest/marker.ts";
import { type CustomResourceDefinition, fluxCrdDir, isCrd, readCrdDir } from "./crds.ts";
import { renderHelmReleases } from "./helm.ts";
import { findKustomize, type KustomizeRunner, kustomizeErrorLine } from "./kustomize.ts";
import { SchemaChecker } from "./schema.ts";
import { isPlainSecret, type SopsConfig, sopsRuleFor, withoutSopsMetadata } from "./sops.ts";
import { sourceIgnoreMatcher } from "./sourceignore.ts";

export interface Problem {
  /** Relative to the validated folder. */
  file: string;
  line?: number;
  message: string;
}

export interface ValidateStats {
  yamlFiles: number;
  objects: number;
  kustomizations: number;
  builds: number;
  markers: number;
  /** HelmRelease charts rendered with helm (./helm.ts). */
  charts: number;
  tool: string;
}

export interface ValidateReport {
  /** Errors: the tree will not sync as written. */
  problems: Problem[];
  /** What could not be checked (a kind no schema defines); never a failure. */
  warnings: Problem[];
  /** HelmReleases whose chart could not be reached, and why (credentials, network, a source not in the tree). */
  unrendered: Problem[];
  stats: ValidateStats;
}

export interface ValidateOptions {
  kustomize?: KustomizeRunner;
  env?: NodeJS.ProcessEnv;
  concurrency?: number;
  /** Flux's CRDs (default: $SHIPMATE_CACHE/flux-crds, see ./crds.ts), for Flux kinds the built-in bundle lacks. */
  fluxCrdDir?: string;
}

type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata?: { name?: unknown; namespace?: unknown };
} & Record<string, unknown>;

interface RawObject {
  file: string;
  line: number;
  doc: Document;
  counter: LineCounter;
  object: K8sObject;
  /** Inside a kustomization's reach: may be a partial patch, so checked only through builds. */
  covered: boolean;
}

const KUSTOMIZATION_FILES = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
const SKIP_DIRS = new Set(["node_modules"]);

function isK8sObject(v: unknown): v is K8sObject {
  return (
    !!v &&
    typeof v === "object" &&
    !Array.isArray(v) &&
    typeof (v as K8sObject).apiVersion === "string" &&
    typeof (v as K8sObject).kind === "string"
  );
}

const nameOf = (o: K8sObject) => (typeof o.metadata?.name === "string" ? o.metadata.name : "");
const nsOf = (o: K8sObject) => (typeof o.metadata?.namespace === "string" ? o.metadata.namespace : undefined);
const groupOf = (apiVersion: string) => (apiVersion.includes("/") ? apiVersion.split("/")[0]! : "");
const toPosix = (p: string) => p.split(sep).join("/");

/**
 * Every YAML file of the tree, in one walk (src/config/tree.ts: `.git`
 * skipped, symlinks never followed, the file-count bound), leaving out
 * dependencies and Helm chart templates (Go templates, not YAML); sizes are
 * checked by the caller, after Flux's exclusions.
 */
function walk(root: string): TreeWalk {
  /** Folders holding a Chart.yaml: their `templates` and `charts` (at any depth below) are not YAML. */
  const charts: string[] = [];
  const inChart = (dir: string) => charts.some((c) => dir === c || dir.startsWith(`${c}/`));
  return walkTree(root, {
    maxFileBytes: Number.MAX_SAFE_INTEGER,
    skip: (path, isDir, names) => {
      const cut = path.lastIndexOf("/");
      const parent = cut < 0 ? "." : path.slice(0, cut);
      const name = path.slice(cut + 1);
      if (names.has("Chart.yaml") && !charts.includes(parent)) charts.push(parent);
      if (!isDir) return false;
      return SKIP_DIRS.has(name) || ((name === "templates" || name === "charts") && inChart(parent));
    },
  });
}

/** The folders holding a kustomization, each with its file (absolute paths). */
function kustomizationDirsOf(files: readonly string[]): Map<string, string> {
  const dirs = new Map<string, string>();
  for (const file of files) {
    if (!KUSTOMIZATION_FILES.includes(basename(file))) continue;
    const dir = dirname(file);
    // kustomize's order of preference when a folder holds more than one.
    const prior = dirs.get(dir);
    if (!prior || KUSTOMIZATION_FILES.indexOf(basename(file)) < KUSTOMIZATION_FILES.indexOf(basename(prior)))
      dirs.set(dir, file);
  }
  return dirs;
}

/** Every string in a kustomization that could name a local file or folder (resources, patches, generators…). */
function referencedPaths(value: unknown, out: string[] = []): string[] {
  if (typeof value === "string") out.push(value);
  else if (Array.isArray(value)) for (const v of value) referencedPaths(v, out);
  else if (value && typeof value === "object")
    for (const [k, v] of Object.entries(value)) {
      // Inline patches and literals are content, not paths.
      if (k === "patch" || k === "literals") continue;
      referencedPaths(v, out);
    }
  return out;
}

/** The value at a schema issue's path, if the object has one there. */
function valueAt(object: unknown, path: (string | number)[]): unknown {
  let v: unknown = object;
  for (const key of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string | number, unknown>)[key];
  }
  return v;
}

/** A string holding a Flux postBuild expression (`${var}`, `${var:=default}`), substituted only in the cluster. */
function isSubstitutionPlaceholder(v: unknown): boolean {
  return typeof v === "string" && /\$\{[^}]+\}/.test(v);
}

function lineAt(counter: LineCounter, node: Node | null | undefined): number | undefined {
  return node?.range ? counter.linePos(node.range[0]).line : undefined;
}

/** How many steps of `path` exist in the document. */
function depthIn(raw: RawObject, path: (string | number)[]): number {
  return locate(raw, path).depth;
}

/** The line of `path` inside a parsed document, or of its deepest part that exists there. */
function lineIn(raw: RawObject, path: (string | number)[]): number {
  return locate(raw, path).line;
}

function locate(raw: RawObject, path: (string | number)[]): { line: number; depth: number } {
  let node: unknown = raw.doc.contents;
  let line = raw.line;
  let depth = 0;
  for (const key of path) {
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key);
      // A key the schema rejects is best shown at the key itself.
      next = pair ? (pair.value ?? pair.key) : undefined;
      if (pair && isScalar(pair.key)) line = lineAt(raw.counter, pair.key) ?? line;
    } else if (isSeq(node) && typeof key === "number") {
      next = node.items[key];
      line = lineAt(raw.counter, next as Node | undefined) ?? line;
    }
    if (next === undefined) break;
    node = next;
    depth++;
  }
  return { line, depth };
}

class Index {
  private readonly exact = new Set<string>();
  private readonly anyNamespace = new Set<string>();
  add(name: string, namespace: string | undefined): void {
    if (namespace) this.exact.add(`${namespace}/${name}`);
    else this.anyNamespace.add(name);
  }
  has(name: string, namespace: string | undefined): boolean {
    return (
      this.anyNamespace.has(name) || (namespace ? this.exact.has(`${namespace}/${name}`) : this.hasName(name))
    );
  }
  private hasName(name: string): boolean {
    for (const k of this.exact) if (k.endsWith(`/${name}`)) return true;
    return false;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

const FLUX_SOURCE = "source.toolkit.fluxcd.io";
const SOURCE_EXTENSIONS = "source.extensions.fluxcd.io";
const IMAGE = "image.toolkit.fluxcd.io";

interface Reference {
  field: string;
  /** Where the reference's name is, for its line. */
  path: (string | number)[];
  group: string;
  kind: string;
  name: string;
  namespace?: string;
}

/**
 * The objects a Flux object names and needs: dependsOn, the source of a
 * Kustomization or HelmRelease, the sources of an ArtifactGenerator, the
 * ImageRepository of an ImagePolicy.
 * (An ImageUpdateAutomation's source is left out: in multi-repository fleets
 * it is defined in another repository.)
 */
function referencesOf(o: K8sObject): Reference[] {
  const group = groupOf(o.apiVersion);
  const spec = (o.spec ?? {}) as Record<string, unknown>;
  const refs: Reference[] = [];
  const ref = (
    field: string,
    path: (string | number)[],
    value: unknown,
    kind: string | undefined,
    targetGroup: string,
  ) => {
    const v = value as { name?: unknown; namespace?: unknown; kind?: unknown } | undefined;
    const k = typeof v?.kind === "string" ? v.kind : kind;
    if (typeof v?.name !== "string" || !k) return;
    refs.push({
      field,
      path: [...path, "name"],
      group: targetGroup,
      kind: k,
      name: v.name,
      ...(typeof v.namespace === "string" ? { namespace: v.namespace } : {}),
    });
  };
  const dependsOn = (kind: string) => {
    if (Array.isArray(spec.dependsOn))
      for (const [i, d] of spec.dependsOn.entries())
        ref("dependsOn", ["spec", "dependsOn", i], d, kind, group);
  };
  if (group === "kustomize.toolkit.fluxcd.io" && o.kind === "Kustomization") {
    dependsOn("Kustomization");
    ref("sourceRef", ["spec", "sourceRef"], spec.sourceRef, undefined, FLUX_SOURCE);
  } else if (group === "helm.toolkit.fluxcd.io" && o.kind === "HelmRelease") {
    dependsOn("HelmRelease");
    const chart = (spec.chart as { spec?: { sourceRef?: unknown } } | undefined)?.spec;
    ref("sourceRef", ["spec", "chart", "spec", "sourceRef"], chart?.sourceRef, undefined, FLUX_SOURCE);
    ref("chartRef", ["spec", "chartRef"], spec.chartRef, undefined, FLUX_SOURCE);
  } else if (group === SOURCE_EXTENSIONS && o.kind === "ArtifactGenerator") {
    if (Array.isArray(spec.sources))
      for (const [i, src] of spec.sources.entries())
        ref("sources", ["spec", "sources", i], src, undefined, FLUX_SOURCE);
  } else if (group === IMAGE && o.kind === "ImagePolicy") {
    ref(
      "imageRepositoryRef",
      ["spec", "imageRepositoryRef"],
      spec.imageRepositoryRef,
      "ImageRepository",
      IMAGE,
    );
  }
  return refs;
}

export async function validateTree(dir: string, options: ValidateOptions = {}): Promise<ValidateReport> {
  const root = resolve(dir);
  const rootStat = await stat(root).catch(() => undefined);
  if (!rootStat?.isDirectory()) throw new ConfigError(`${root} is not a directory`);
  const rel = (p: string) => toPosix(relative(root, p)) || ".";
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  const unrendered: Problem[] = [];
  const report = (file: string, line: number | undefined, message: string) =>
    problems.push(line === undefined ? { file, message } : { file, line, message });
  const walked = walk(root);
  const specs = syncSpecs(walked);
  const ignored = sourceIgnoreMatcher(root, syncIgnore(specs));
  const sparse = syncSparse(specs);
  const outsideSparse = (p: string) =>
    sparse !== undefined && !sparse.some((d) => p === d || p.startsWith(`${d}/`));
  const excluded = (p: string) => ignored(p) || outsideSparse(p);
  const kept = walked.files.filter((f) => !excluded(f.path));
  // The whole tree's listing, Flux's exclusions left out: what Flux's artifact holds.
  const yaml = kept.map((f) => join(root, f.path));
  const sizes = new Map(kept.map((f) => [join(root, f.path), f.size]));
  const kustomizationDirs = kustomizationDirsOf(yaml);
  // Links out of the tree are never followed: said, not failed on (Flux's artifact leaves links out too).
  for (const p of walked.problems)
    (p.severity === "error" ? problems : warnings).push({ file: p.file, message: p.message });
  const stats: ValidateStats = {
    yamlFiles: yaml.length,
    objects: 0,
    kustomizations: kustomizationDirs.size,
    builds: 0,
    markers: 0,
    charts: 0,
    tool: "",
  };

  // Kustomizations: what each references, which are roots, which files they cover.
  const covered = new Set<string>();
  /** Files kustomizations use as patches: partial objects, the last place to blame for a built object. */
  const patchFiles = new Set<string>();
  const includedDirs = new Set<string>();
  const components = new Set<string>();
  const kustomizationRefs = new Map<string, Set<string>>();
  for (const [dir, file] of kustomizationDirs) {
    // Over a bound: reported with the other YAML files below.
    if (sizeRefusal(file, sizes.get(file) ?? 0)) continue;
    const text = readFileSync(file, "utf8");
    const counter = new LineCounter();
    const doc = parseDocument(text, { lineCounter: counter });
    if (doc.errors.length) continue;
    const converted = documentValue(doc, { file, text, counter });
    if (converted.refusal) continue;
    const k = converted.value as Record<string, unknown> | null;
    if (k?.kind === "Component") components.add(dir);
    const refs = new Set<string>();
    for (const p of referencedPaths(k ?? {})) {
      if (p.includes("://") || p.includes("?") || p.startsWith("/")) continue;
      const target = normalize(join(dir, p));
      // Kustomize here finds the file, Flux's build would not: the artifact leaves it out.
      const relTarget = toPosix(relative(root, target));
      if (!relTarget.startsWith("..") && excluded(relTarget) && isFile(target))
        report(
          rel(file),
          undefined,
          outsideSparse(relTarget)
            ? `${p} is outside the sync GitRepository's sparseCheckout (${sparse?.join(", ")}), so Flux's build will not find it`
            : `${p} is excluded from Flux's source artifact (.sourceignore or Flux's default exclusions), so Flux's build will not find it`,
        );
      refs.add(target);
      covered.add(target);
      if (kustomizationDirs.has(target)) includedDirs.add(target);
    }
    for (const key of ["patches", "patchesStrategicMerge", "patchesJson6902"]) {
      for (const p of referencedPaths(k?.[key] ?? [])) patchFiles.add(normalize(join(dir, p)));
    }
    kustomizationRefs.set(dir, refs);
  }

  // Every YAML file: syntax, objects, markers.
  const raws: RawObject[] = [];
  const markers: { file: string; line: number; policy: string }[] = [];
  const fleetFiles: string[] = [];
  for (const file of yaml) {
    // Bounded: past a bound the file is one problem and the walk goes on (see src/config/limits.ts).
    const tooBig = sizeRefusal(rel(file), sizes.get(file) ?? 0);
    if (tooBig) {
      report(tooBig.file, undefined, tooBig.message);
      continue;
    }
    const text = readFileSync(file, "utf8");
    const { docs: docList, counter, refusal } = parseDocumentsBounded(text, rel(file));
    if (refusal) {
      report(refusal.file, refusal.line, refusal.message);
      continue;
    }
    const bad = docList.flatMap((d) => d.errors)[0];
    if (bad) {
      report(rel(file), counter.linePos(bad.pos[0]).line, `invalid YAML: ${bad.message.split("\n")[0]}`);
      continue;
    }
    const dir = dirname(file);
    const isKustomizationFile = KUSTOMIZATION_FILES.includes(basename(file));
    const inKustomizationDir = kustomizationDirs.has(dir);
    for (const doc of docList) {
      const converted = documentValue(doc, { file: rel(file), text, counter });
      if (converted.refusal) {
        report(converted.refusal.file, converted.refusal.line, converted.refusal.message);
        continue;
      }
      const value = converted.value;
      if (!isK8sObject(value) || isKustomizationFile) continue;
      if (value.apiVersion.startsWith("shipmate.dev/") && value.kind === "Fleet") {
        fleetFiles.push(file);
        continue;
      }
      const isCovered = covered.has(file) || inKustomizationDir;
      raws.push({
        file,
        line: lineAt(counter, doc.contents) ?? 1,
        doc,
        counter,
        object: value,
        covered: isCovered,
      });
      if (inKustomizationDir && !covered.has(file)) {
        const kfile = kustomizationDirs.get(dir)!;
        report(
          rel(file),
          lineAt(counter, doc.contents),
          `not referenced by ${rel(kfile)}, so never built or applied`,
        );
        break;
      }
    }
    if (mayContainMarker(text)) {
      const lines = text.split("\n");
      lines.forEach((l, i) => {
        const hash = l.indexOf("# {");
        if (hash < 0) return;
        const parsed = parseMarker(l.slice(hash + 1));
        if (parsed.kind === "invalid") report(rel(file), i + 1, parsed.message);
        if (parsed.kind === "marker") markers.push({ file: rel(file), line: i + 1, policy: parsed.policy });
      });
    }
  }
  stats.markers = markers.length;

  // Secrets in plain text where a .sops.yaml creation rule says files are encrypted.
  const sopsConfigs = new Map<string, SopsConfig | undefined>();
  for (const r of raws) {
    if (!isPlainSecret(r.object)) continue;
    let match: ReturnType<typeof sopsRuleFor>;
    try {
      match = sopsRuleFor(root, r.file, sopsConfigs);
    } catch (err) {
      report(rel(r.file), r.line, `.sops.yaml for this file cannot be read: ${(err as Error).message}`);
      continue;
    }
    if (!match?.rule.encrypts) continue;
    const which = match.rule.pathRegexText
      ? `creation rule ${match.rule.index} (path_regex ${match.rule.pathRegexText})`
      : `creation rule ${match.rule.index}`;
    report(
      rel(r.file),
      r.line,
      `Secret ${nameOf(r.object)} is not encrypted, but ${rel(match.config.file)} ${which} covers this file: encrypt it with sops --encrypt --in-place`,
    );
  }

  // Where a built object came from: its defining document, found by kind and name.
  const byKindName = new Map<string, RawObject[]>();
  for (const r of raws) {
    const key = `${r.object.kind}/${nameOf(r.object)}`;
    byKindName.set(key, [...(byKindName.get(key) ?? []), r]);
  }
  /**
   * The document to blame for a finding at `path` in a built object: among the
   * documents defining that kind and name, the one where the path goes
   * deepest, preferring full resources over patches and documents inside the
   * folder being built.
   */
  const sourceOf = (
    o: K8sObject,
    buildDir: string,
    path: (string | number)[] = [],
  ): RawObject | undefined => {
    const candidates = byKindName.get(`${o.kind}/${nameOf(o)}`) ?? [];
    let best: RawObject | undefined;
    let bestScore = -1;
    for (const c of candidates) {
      const score =
        depthIn(c, path) * 4 + (patchFiles.has(c.file) ? 0 : 2) + (c.file.startsWith(buildDir + sep) ? 1 : 0);
      if (score > bestScore) {
        best = c;
        bestScore = score;
      }
    }
    return best;
  };

  // Objects as a cluster would receive them: loose files as written, kustomizations as built.
  const objects: {
    object: K8sObject;
    raw?: RawObject;
    origin: string;
    dir?: string;
    /** Rendered from a HelmRelease's chart: findings are shown at the HelmRelease. */
    rendered?: boolean;
  }[] = [];
  for (const r of raws) if (!r.covered) objects.push({ object: r.object, raw: r, origin: "" });

  const roots = [...kustomizationDirs.keys()]
    .filter((d) => !includedDirs.has(d) && !components.has(d))
    .sort();
  if (roots.length) {
    const kustomize = options.kustomize ?? (await findKustomize(options.env));
    stats.tool = kustomize.name;
    const limit = options.concurrency ?? Math.max(2, availableParallelism());
    // Roots first. When one fails, the kustomizations it includes are built on
    // their own: the ones that build are still checked, and the failure is
    // blamed on the deepest folder that shows it.
    const failures = new Map<string, { dir: string; depth: number }[]>();
    const attempted = new Set<string>(roots);
    let round = roots;
    for (let depth = 0; round.length; depth++) {
      const built = await mapLimit(round, limit, (dir) => kustomize.build(dir));
      stats.builds += round.length;
      const next: string[] = [];
      round.forEach((dir, i) => {
        const result = built[i]!;
        if (!result.ok) {
          const cause = kustomizeErrorLine(result.error, root);
          failures.set(cause, [...(failures.get(cause) ?? []), { dir, depth }]);
          for (const child of [...(kustomizationRefs.get(dir) ?? [])].sort()) {
            if (!kustomizationDirs.has(child) || components.has(child) || attempted.has(child)) continue;
            attempted.add(child);
            next.push(child);
          }
          return;
        }
        const output = parseDocumentsBounded(result.yaml, rel(dir));
        for (const doc of output.docs) {
          const converted = documentValue(doc, {
            file: rel(dir),
            text: result.yaml,
            counter: output.counter,
          });
          // kustomize writes no aliases; a refusal here can only follow one in a source file, reported there.
          if (converted.refusal) continue;
          const value = converted.value;
          if (!isK8sObject(value)) continue;
          const raw = sourceOf(value, dir);
          objects.push(
            raw ? { object: value, raw, origin: rel(dir), dir } : { object: value, origin: rel(dir), dir },
          );
        }
      });
      round = next;
    }
    for (const [cause, dirs] of failures) {
      const deepest = Math.max(...dirs.map((d) => d.depth));
      const blamed = dirs.find((d) => d.depth === deepest)!.dir;
      const others = dirs
        .map((d) => d.dir)
        .filter((d) => d !== blamed)
        .sort();
      const also = others.length ? ` (also breaks ${others.map(rel).join(", ")})` : "";
      report(
        rel(kustomizationDirs.get(blamed)!),
        undefined,
        `kustomize build ${rel(blamed)} failed: ${cause}${also}`,
      );
    }
  }
  // HelmReleases whose chart can be reached: rendered with helm, their objects checked like a build's.
  const helmReleases = objects.filter(
    (x) =>
      x.raw && groupOf(x.object.apiVersion) === "helm.toolkit.fluxcd.io" && x.object.kind === "HelmRelease",
  );
  if (helmReleases.length) {
    const rendered = await renderHelmReleases(
      root,
      helmReleases.map((x) => ({ object: x.object, file: rel(x.raw!.file), line: x.raw!.line })),
      objects.map((x) => x.object),
      { env: options.env },
    );
    for (const [i, r] of rendered.entries()) {
      const raw = helmReleases[i]!.raw!;
      if (r.warning) unrendered.push({ file: rel(raw.file), line: raw.line, message: r.warning });
      if (r.problem) report(rel(raw.file), raw.line, r.problem);
      if (r.yaml === undefined) continue;
      stats.charts++;
      const output = parseDocumentsBounded(r.yaml, rel(raw.file));
      for (const doc of output.docs) {
        const converted = documentValue(doc, { file: rel(raw.file), text: r.yaml, counter: output.counter });
        if (converted.refusal || !isK8sObject(converted.value)) continue;
        objects.push({ object: converted.value, raw, origin: r.origin, rendered: true });
      }
    }
  }
  stats.objects = objects.length;

  // Schemas: the bundle, CRDs this tree defines, and Flux's own CRDs when provisioned.
  const treeCrds: CustomResourceDefinition[] = [];
  for (const o of [...raws.map((r) => r.object), ...objects.map((x) => x.object)])
    if (isCrd(o)) treeCrds.push(o);
  if (treeCrds.length > MAX_CRDS) {
    report(
      ".",
      undefined,
      `the tree defines ${treeCrds.length} CRDs, over the ${MAX_CRDS} bound; the first ${MAX_CRDS} are used`,
    );
    treeCrds.length = MAX_CRDS;
  }
  // Flux's CRDs only for the Flux groups the bundle and the tree leave without a schema.
  const known = new Set(SchemaChecker.knownKinds());
  const taught = new Set(treeCrds.map((c) => c.spec.group));
  const fluxGroups = new Set(
    objects
      .map((x) => x.object)
      .filter((o) => !known.has(`${o.apiVersion}/${o.kind}`))
      .map((o) => groupOf(o.apiVersion))
      .filter((g) => g.endsWith(".fluxcd.io") && !taught.has(g)),
  );
  const schemas = new SchemaChecker({
    tree: treeCrds,
    flux: fluxGroups.size
      ? readCrdDir(
          options.fluxCrdDir ?? fluxCrdDir(options.env ?? process.env),
          (file) => fluxGroups.has(file.slice(0, file.indexOf("_"))),
          // Flux's provisioned CRDs are not the tree's: a bound crossed there is a warning.
          (r) => warnings.push(r.line === undefined ? { file: r.file, message: r.message } : { ...r }),
        )
      : [],
  });
  /** Kinds not checked, one warning each: where first seen, and how many objects. */
  const unchecked = new Map<
    string,
    { file: string; line: number | undefined; message: string; count: number }
  >();
  const seen = new Set<string>();
  const once = (file: string, line: number | undefined, message: string, suffix = "") => {
    const key = `${file}:${line}:${message}`;
    if (seen.has(key)) return;
    seen.add(key);
    report(file, line, message + suffix);
  };
  for (const { object, raw, origin, dir, rendered } of objects) {
    // A sops-encrypted manifest carries sops's metadata, which the cluster never sees (decrypted before apply).
    const verdict = schemas.check(withoutSopsMetadata(object));
    const what = `${object.kind}/${nameOf(object) || "(no name)"}`;
    const suffix = origin && raw ? ` (as built from ${origin})` : "";
    if (verdict.status === "unknown-kind")
      once(raw ? rel(raw.file) : origin, raw?.line, `${what}: ${verdict.message}`, suffix);
    if (verdict.status === "no-schema") {
      const key = `${object.apiVersion}/${object.kind}`;
      const u = unchecked.get(key);
      if (u) u.count++;
      else
        unchecked.set(key, {
          file: raw ? rel(raw.file) : origin,
          line: raw?.line,
          message: verdict.message,
          count: 1,
        });
    }
    if (verdict.status === "invalid")
      for (const issue of verdict.issues) {
        // A Flux post-build variable (`replicas: ${replicas}`) is a string until the cluster substitutes it.
        if (isSubstitutionPlaceholder(valueAt(object, issue.path))) continue;
        const blame = dir ? (sourceOf(object, dir, issue.path) ?? raw) : raw;
        once(
          blame ? rel(blame.file) : origin,
          blame ? (rendered ? blame.line : lineIn(blame, issue.path)) : undefined,
          `${what}: ${issue.message}`,
          suffix,
        );
      }
  }

  for (const u of unchecked.values()) {
    const message = u.count > 1 ? `${u.message} (${u.count} objects)` : u.message;
    warnings.push(u.line === undefined ? { file: u.file, message } : { file: u.file, line: u.line, message });
  }

  // Names that markers, dependsOn and source references refer to.
  const defined = new Map<string, Index>();
  const indexFor = (group: string, kind: string): Index => {
    let index = defined.get(`${group}/${kind}`);
    if (!index) {
      index = new Index();
      defined.set(`${group}/${kind}`, index);
    }
    return index;
  };
  const define = (o: K8sObject, namespace: string | undefined) => {
    indexFor(groupOf(o.apiVersion), o.kind).add(nameOf(o), namespace);
    // An ArtifactGenerator defines the ExternalArtifacts it produces, one per artifact, in its namespace.
    if (groupOf(o.apiVersion) === SOURCE_EXTENSIONS && o.kind === "ArtifactGenerator") {
      const artifacts = (o.spec as { artifacts?: unknown } | undefined)?.artifacts;
      if (Array.isArray(artifacts))
        for (const a of artifacts)
          if (typeof a?.name === "string") indexFor(FLUX_SOURCE, "ExternalArtifact").add(a.name, namespace);
    }
  };
  for (const r of raws) define(r.object, r.covered ? undefined : nsOf(r.object));
  for (const { object } of objects) define(object, nsOf(object));

  // Markers name policies by the rule scan and update name them by (src/config/namespace.ts).
  const policyNames = (o: K8sObject): string[] => {
    const group = groupOf(o.apiVersion);
    if (o.kind === "ImagePolicy" && (group === IMAGE || group === "shipmate.dev")) return [nameOf(o)];
    if (o.kind === "ImagePolicyList" && group === "shipmate.dev" && Array.isArray(o.items))
      return o.items.map((i: { name?: unknown }) => (typeof i?.name === "string" ? i.name : ""));
    return [];
  };
  const kustomized = kustomizeNamespaces([
    ...[...kustomizationDirs.values()].map((path) => ({ path, text: readFileSync(path, "utf8") })),
    ...raws.filter((r) => policyNames(r.object).length).map((r) => ({ path: r.file, text: "" })),
  ]);
  const policyIds = new Set<string>();
  for (const r of raws) {
    const ns = policyNamespace({
      kustomize: kustomized.get(r.file),
      metadata: nsOf(r.object),
      fallback: DEFAULT_NAMESPACE,
    });
    for (const name of policyNames(r.object)) policyIds.add(`${ns}:${name}`);
  }
  for (const { object } of objects)
    for (const name of policyNames(object)) policyIds.add(`${nsOf(object) ?? DEFAULT_NAMESPACE}:${name}`);
  for (const m of markers) {
    const [ns, name] = m.policy.split(":") as [string, string];
    if (!policyIds.has(`${ns}:${name}`))
      report(m.file, m.line, `marker names image policy "${m.policy}", which is not defined in this tree`);
  }

  const checkedRefs = new Set<RawObject>();
  for (const { object, raw } of [...raws.map((r) => ({ object: r.object, raw: r })), ...objects]) {
    if (!raw || checkedRefs.has(raw)) continue;
    checkedRefs.add(raw);
    for (const ref of referencesOf(object)) {
      const ns = ref.namespace ?? nsOf(object);
      if (indexFor(ref.group, ref.kind).has(ref.name, ns) || isSyncSource(ref)) continue;
      const target = `"${ns ? `${ns}/` : ""}${ref.name}"`;
      report(
        rel(raw.file),
        lineIn(raw, ref.path),
        ref.field === "dependsOn"
          ? `${object.kind}/${nameOf(object)}: dependsOn ${target}, which is not defined in this tree`
          : `${object.kind}/${nameOf(object)}: ${ref.field} ${ref.kind} ${target} is not defined in this tree`,
      );
    }
  }

  // Flux Kustomizations that sync this repository itself (shipmate's and flux bootstrap's convention).
  for (const r of raws) {
    const o = r.object;
    if (o.kind !== "Kustomization" || groupOf(o.apiVersion) !== "kustomize.toolkit.fluxcd.io") continue;
    const spec = o.spec as { path?: unknown; sourceRef?: { kind?: unknown; name?: unknown } } | undefined;
    const source = spec?.sourceRef?.name;
    const kind = spec?.sourceRef?.kind ?? "GitRepository";
    if (
      typeof spec?.path !== "string" ||
      kind !== "GitRepository" ||
      (source !== "shipmate-system" && source !== "flux-system")
    )
      continue;
    const repoRoot = await repositoryRoot(dirname(r.file), root);
    const target = join(repoRoot, spec.path);
    if (!(await exists(target)))
      report(
        rel(r.file),
        lineIn(r, ["spec", "path"]),
        `Kustomization/${nameOf(o)}: spec.path ${spec.path} does not exist in this repository`,
      );
  }

  for (const file of fleetFiles) await checkFleetFile(file, rel(file), report);

  const byPlace = (a: Problem, b: Problem) =>
    a.file === b.file ? (a.line ?? 0) - (b.line ?? 0) : a.file < b.file ? -1 : 1;
  problems.sort(byPlace);
  warnings.sort(byPlace);
  return { problems, warnings, unrendered, stats };
}

/** The specs of the fleet's own sync GitRepositories in the tree (`flux-system`, `shipmate-system`). */
function syncSpecs(walked: TreeWalk): Record<string, unknown>[] {
  const specs: Record<string, unknown>[] = [];
  for (const f of walked.files) {
    // Files over a bound are reported by the main loop; here they are only skipped.
    if (sizeRefusal(f.path, f.size)) continue;
    const file = join(walked.realRoot, f.path);
    const text = readFileSync(file, "utf8");
    if (!text.includes("GitRepository")) continue;
    const { docs, counter } = parseDocumentsBounded(text, file);
    for (const doc of docs) {
      if (doc.errors.length) continue;
      const converted = documentValue(doc, { file, text, counter });
      if (converted.refusal) continue;
      const o = converted.value;
      if (!isK8sObject(o) || o.kind !== "GitRepository" || groupOf(o.apiVersion) !== FLUX_SOURCE) continue;
      if (nameOf(o) !== "flux-system" && nameOf(o) !== "shipmate-system") continue;
      specs.push((o.spec as Record<string, unknown> | undefined) ?? {});
    }
  }
  return specs;
}

/**
 * `spec.ignore` of the fleet's own sync GitRepositories: source-controller
 * applies it on top of `.sourceignore` when it packs the repository. Only
 * when every one of them says the same (clusters syncing the same
 * repository with different rules would each see another tree).
 */
function syncIgnore(specs: readonly Record<string, unknown>[]): string | undefined {
  const seen = new Set(specs.map((s) => (typeof s.ignore === "string" ? s.ignore : "")));
  const [only] = seen;
  return seen.size === 1 && only ? only : undefined;
}

/**
 * `spec.sparseCheckout` of the fleet's own sync GitRepositories, when every
 * one of them says the same: only those directories are in Flux's artifact.
 */
function syncSparse(specs: readonly Record<string, unknown>[]): string[] | undefined {
  const seen = new Set(
    specs.map((s) =>
      JSON.stringify(
        Array.isArray(s.sparseCheckout)
          ? s.sparseCheckout.filter((d): d is string => typeof d === "string").map(sparseDir)
          : [],
      ),
    ),
  );
  const [only] = seen;
  const dirs = seen.size === 1 && only ? (JSON.parse(only) as string[]) : [];
  return dirs.length ? dirs : undefined;
}

/**
 * The fleet's own sync source: bootstrap creates it in the cluster (`flux
 * bootstrap`: flux-system/flux-system; shipmate's agent: shipmate-system in
 * its namespace), so a tree that only references it is complete.
 */
function isSyncSource(ref: Reference): boolean {
  return (
    ref.group === FLUX_SOURCE &&
    ref.kind === "GitRepository" &&
    (ref.name === "flux-system" || ref.name === "shipmate-system")
  );
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** The nearest folder above `dir` (up to `top`) that is a repository root: has `.git` or shipmate.yaml. */
async function repositoryRoot(dir: string, top: string): Promise<string> {
  let d = dir;
  for (;;) {
    if ((await exists(join(d, ".git"))) || (await exists(join(d, FLEET_FILE)))) return d;
    if (d === top || !d.startsWith(top + sep)) return top;
    d = dirname(d);
  }
}

async function checkFleetFile(
  file: string,
  shown: string,
  report: (file: string, line: number | undefined, message: string) => void,
): Promise<void> {
  const text = readFileSync(file, "utf8");
  let fleet: ReturnType<typeof parseFleet>;
  try {
    fleet = parseFleet(text, shown);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    report(shown, err.line, err.text);
    return;
  }
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter });
  const here = fleet.spec.repository?.url;
  const dir = dirname(file);
  for (const [i, env] of fleet.spec.environments.entries()) {
    // Paths of an environment kept in another repository are that repository's business.
    if (env.repository && env.repository.url !== here) continue;
    for (const key of ["path", "policies", "cluster"] as const) {
      const p = env[key];
      if (p === undefined || (await exists(join(dir, p)))) continue;
      const node = doc.getIn(["spec", "environments", i, key], true);
      const line = isScalar(node) || isMap(node) || isSeq(node) ? lineAt(counter, node) : undefined;
      report(shown, line, `environment "${env.name}": ${key} ${p} does not exist`);
    }
  }
}
