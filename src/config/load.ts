/**
 * Loading a policies directory: every `*.yaml`/`*.yml` below it, every YAML
 * document in each. Flux ImageRepository + ImagePolicy pairs and
 * ImageUpdateAutomations, and native shipmate.dev/v1alpha1 ImagePolicy /
 * ImagePolicyList documents, become Policy and UpdateAutomation values; other
 * documents (Deployments, Kustomizations, …) are ignored. Every problem is
 * collected with its file, document, field and line, and thrown together.
 */
import { readFileSync, statSync } from "node:fs";
import { stat } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import type { Document, LineCounter } from "yaml";
import type { z } from "zod";
import { ConfigError } from "../errors.ts";
import {
  compileSelectionPolicy,
  DEFAULT_EXCLUSION_LIST,
  PolicySpecError,
  type SelectionPolicy,
  type SelectionStrategy,
} from "../policy/index.ts";
import type { FleetContext } from "./context.ts";
import { parseGoDuration } from "./duration.ts";
import { type ConfigProblem, PolicyConfigError } from "./errors.ts";
import { documentValue, type LimitRefusal, parseDocumentsBounded, sizeRefusal } from "./limits.ts";
import { type FieldPath, formatPath, lineOf } from "./locate.ts";
import { kustomizeNamespaces, policyNamespace } from "./namespace.ts";
import {
  DEFAULT_NAMESPACE,
  FLUX_IMAGE_GROUP,
  FLUX_IMAGE_VERSIONS,
  type FluxImagePolicy,
  type FluxImageRepository,
  type FluxImageUpdateAutomation,
  fluxImagePolicy,
  fluxImageRepository,
  fluxImageUpdateAutomation,
  NATIVE_API_VERSION,
  type NativePolicySpec,
  nativeImagePolicy,
  nativeImagePolicyList,
} from "./schema.ts";
import { diskTree, isYamlAnyCase, type TreeSource, type TreeWalk } from "./tree.ts";
import type { Policy, PolicyConfig, SourceLocation, UpdateAutomation } from "./types.ts";

/** A YAML document that parsed, with what is needed to point at its lines. */
interface Located {
  file: string;
  index: number;
  doc: Document;
  counter: LineCounter;
}

interface Parsed<T> extends Located {
  data: T;
  namespace: string;
}

class Problems {
  readonly list: ConfigProblem[] = [];

  at(where: Located, path: FieldPath, message: string, opts: { object?: string; key?: string } = {}): void {
    const line = lineOf(where.doc, where.counter, path, opts.key);
    const fieldPath = opts.key === undefined ? path : [...path, opts.key];
    this.list.push({
      file: where.file,
      document: where.index,
      ...(line ? { line } : {}),
      ...(opts.object ? { object: opts.object } : {}),
      ...(fieldPath.length ? { field: formatPath(fieldPath) } : {}),
      message,
    });
  }
}

function objectLabel(value: unknown): string | undefined {
  const v = value as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
  if (typeof v?.kind !== "string") return undefined;
  const name = typeof v.metadata?.name === "string" ? v.metadata.name : undefined;
  if (!name) return v.kind;
  const ns = typeof v.metadata?.namespace === "string" ? v.metadata.namespace : DEFAULT_NAMESPACE;
  return `${v.kind} ${ns}/${name}`;
}

/** Zod issues → problems at the right line, in words a person reads. */
function reportIssues(problems: Problems, where: Located, value: unknown, error: z.ZodError): void {
  const object = objectLabel(value);
  for (const issue of error.issues) {
    const opts = object ? { object } : {};
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) problems.at(where, issue.path, "unknown field", { ...opts, key });
      continue;
    }
    if (issue.code === "invalid_union" && "discriminator" in issue) {
      const d = String(issue.discriminator);
      problems.at(where, issue.path.at(-1) === d ? issue.path : [...issue.path, d], issue.message, opts);
      continue;
    }
    let message = issue.message;
    if (issue.code === "invalid_type" && /received undefined$/.test(message))
      message = `is required (${issue.expected})`;
    else if (issue.code === "invalid_type") message = message.replace(/^Invalid input: /, "");
    problems.at(where, issue.path, message, opts);
  }
}

function sourceOf(where: Located, path: FieldPath = []): SourceLocation {
  const line = lineOf(where.doc, where.counter, path);
  return { file: where.file, document: where.index, ...(line ? { line } : {}) };
}

/**
 * Compile the selection now so an invalid regex or range is reported at load
 * time, at the line of the field that holds it.
 */
function checkSelection(
  problems: Problems,
  selection: SelectionPolicy,
  object: string,
  locate: (field: readonly (string | number)[]) => { where: Located; path: FieldPath; object?: string },
): boolean {
  try {
    compileSelectionPolicy(selection);
    return true;
  } catch (err) {
    if (!(err instanceof PolicySpecError)) throw err;
    const at = locate(err.field);
    problems.at(at.where, at.path, err.detail, { object: at.object ?? object });
    return false;
  }
}

function fluxStrategy(policy: FluxImagePolicy["spec"]["policy"]): {
  strategy: SelectionStrategy;
  path: string[];
} {
  // Flux's PolicerFromSpec takes the first choice set, in this order.
  if (policy.semver) return { strategy: { kind: "semver", range: policy.semver.range }, path: ["semver"] };
  if (policy.alphabetical)
    return {
      strategy: { kind: "alphabetical", order: policy.alphabetical.order ?? "asc" },
      path: ["alphabetical"],
    };
  const numerical = policy.numerical!;
  return { strategy: { kind: "numerical", order: numerical.order ?? "asc" }, path: ["numerical"] };
}

/**
 * The selection a Flux ImagePolicy makes over its ImageRepository's tags:
 * the one rule for policies read from git and for those the agent reads from
 * the cluster (../agent/images/). An empty exclusion list is Flux's default.
 */
export function fluxSelectionPolicy(
  spec: Pick<FluxImagePolicy["spec"], "policy" | "filterTags">,
  exclusionList: readonly string[] | undefined,
): { selection: SelectionPolicy; choicePath: string[] } {
  const { strategy, path: choicePath } = fluxStrategy(spec.policy);
  const selection: SelectionPolicy = {
    strategy,
    exclusionList: exclusionList?.length ? [...exclusionList] : [...DEFAULT_EXCLUSION_LIST],
  };
  if (spec.filterTags) {
    const { pattern = "", extract } = spec.filterTags;
    selection.filter = extract ? { pattern, extract } : { pattern };
  }
  return { selection, choicePath };
}

function buildFluxPolicy(
  problems: Problems,
  p: Parsed<FluxImagePolicy>,
  repos: Map<string, Parsed<FluxImageRepository>>,
): Policy | undefined {
  const { spec, metadata } = p.data;
  const object = `ImagePolicy ${p.namespace}/${metadata.name}`;
  const refNs = spec.imageRepositoryRef.namespace ?? p.namespace;
  const refKey = `${refNs}/${spec.imageRepositoryRef.name}`;
  const repo = repos.get(refKey);
  if (!repo) {
    const elsewhere = [...repos.keys()].filter((k) => k.endsWith(`/${spec.imageRepositoryRef.name}`));
    problems.at(
      p,
      ["spec", "imageRepositoryRef", "name"],
      `refers to ImageRepository ${refKey}, which no policy file defines` +
        (elsewhere.length ? ` (found ${elsewhere.join(", ")}; set imageRepositoryRef.namespace)` : ""),
      { object },
    );
    return undefined;
  }
  const { selection, choicePath } = fluxSelectionPolicy(spec, repo.data.spec.exclusionList);
  const ok = checkSelection(problems, selection, object, (field) => {
    const [head, second] = field;
    const rest = second !== undefined ? [second] : [];
    if (head === "exclusionList")
      return {
        where: repo,
        path: ["spec", "exclusionList", ...rest],
        object: `ImageRepository ${refKey} (used by ${object})`,
      };
    if (head === "filter") return { where: p, path: ["spec", "filterTags", ...rest] };
    if (head === "strategy") return { where: p, path: ["spec", "policy", ...choicePath, ...rest] };
    return { where: p, path: ["spec"] };
  });
  if (!ok) return undefined;
  const policy: Policy = {
    id: `${p.namespace}:${metadata.name}`,
    namespace: p.namespace,
    name: metadata.name,
    image: repo.data.spec.image,
    insecure: repo.data.spec.insecure ?? false,
    digestReflection: spec.digestReflectionPolicy ?? "Never",
    selection,
    source: sourceOf(p),
  };
  if (repo.data.spec.secretRef) policy.secretRef = repo.data.spec.secretRef.name;
  if (metadata.labels) policy.labels = metadata.labels;
  if (spec.suspend || repo.data.spec.suspend) policy.suspended = true;
  return policy;
}

function buildNativePolicy(
  problems: Problems,
  where: Located,
  base: FieldPath,
  sourcePath: FieldPath,
  spec: NativePolicySpec,
  meta: { name: string; namespace: string; labels?: Record<string, string> },
): Policy | undefined {
  const object = `ImagePolicy ${meta.namespace}/${meta.name}`;
  let strategy: SelectionStrategy;
  switch (spec.strategy) {
    case "semver":
      strategy = { kind: "semver", range: spec.range };
      break;
    case "alphabetical":
    case "numerical":
      strategy = { kind: spec.strategy, order: spec.order };
      break;
    case "newestBuild":
      strategy = { kind: "newestBuild" };
      break;
    case "digest":
      strategy = { kind: "digest", tag: spec.tag };
      break;
  }
  const selection: SelectionPolicy = {
    strategy,
    exclusionList: spec.exclusionList ?? [...DEFAULT_EXCLUSION_LIST],
  };
  if (spec.filterTags) selection.filter = spec.filterTags;
  if (spec.minAge !== undefined) selection.minAgeMs = parseGoDuration(spec.minAge)!;

  let digestReflection: Policy["digestReflection"] =
    spec.digest === true ? "Always" : spec.digest === false ? "Never" : (spec.digest ?? "Never");
  if (spec.strategy === "digest") {
    if (digestReflection === "Never" && spec.digest !== undefined) {
      problems.at(
        where,
        [...base, "digest"],
        "the digest strategy always resolves digests; remove this field",
        {
          object,
        },
      );
      return undefined;
    }
    digestReflection = "Always";
  }

  const ok = checkSelection(problems, selection, object, (field) => {
    const [head, second] = field;
    const rest = second !== undefined ? [second] : [];
    if (head === "strategy")
      return { where, path: [...base, second === "kind" ? "strategy" : (second ?? "strategy")] };
    if (head === "filter") return { where, path: [...base, "filterTags", ...rest] };
    if (head === "exclusionList") return { where, path: [...base, "exclusionList", ...rest] };
    if (head === "minAgeMs") return { where, path: [...base, "minAge"] };
    return { where, path: base };
  });
  if (!ok) return undefined;

  const policy: Policy = {
    id: `${meta.namespace}:${meta.name}`,
    namespace: meta.namespace,
    name: meta.name,
    image: spec.image,
    insecure: spec.insecure ?? false,
    digestReflection,
    selection,
    source: sourceOf(where, sourcePath),
  };
  if (spec.secretRef) policy.secretRef = spec.secretRef;
  if (spec.platform) policy.platform = spec.platform;
  if (spec.paths) policy.paths = spec.paths;
  if (spec.mode) policy.mode = spec.mode;
  if (meta.labels && Object.keys(meta.labels).length) policy.labels = meta.labels;
  return policy;
}

function buildAutomation(a: Parsed<FluxImageUpdateAutomation>): UpdateAutomation {
  const { spec, metadata } = a.data;
  const { checkout, commit, push } = spec.git;
  const author = commit.author.name
    ? { name: commit.author.name, email: commit.author.email }
    : { email: commit.author.email };
  const automation: UpdateAutomation = {
    id: `${a.namespace}:${metadata.name}`,
    namespace: a.namespace,
    name: metadata.name,
    sourceRef: {
      kind: spec.sourceRef.kind,
      name: spec.sourceRef.name,
      namespace: spec.sourceRef.namespace ?? a.namespace,
    },
    interval: spec.interval,
    commit: { author },
    update: { strategy: "Setters", path: spec.update?.path || "." },
    suspended: spec.suspend ?? false,
    source: sourceOf(a),
  };
  if (checkout) {
    const { branch, tag, semver, name, commit: sha } = checkout.ref;
    automation.checkout = compact({ branch, tag, semver, name, commit: sha });
  }
  if (commit.messageTemplate !== undefined) automation.commit.messageTemplate = commit.messageTemplate;
  if (commit.messageTemplateValues) automation.commit.messageTemplateValues = commit.messageTemplateValues;
  if (commit.signingKey)
    automation.commit.signingKey = {
      secretRef: commit.signingKey.secretRef.name,
      type: commit.signingKey.type ?? "gpg",
    };
  if (push) automation.push = compact({ branch: push.branch, refspec: push.refspec, options: push.options });
  if (spec.policySelector) automation.policySelector = spec.policySelector;
  return automation;
}

/** Without the fields that are undefined (the types use optional fields, not undefined values). */
function compact<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}

const FLUX_KINDS = new Set(["ImageRepository", "ImagePolicy", "ImageUpdateAutomation"]);

/**
 * Whether a text can hold a document of ours: one of our kinds or API groups
 * appears in it, or an escape could spell one. A repository's other files
 * (thousands of Deployments when the policies directory is the repository)
 * are then never parsed here, and a broken one among them is the update
 * engine's to report, file by file, instead of failing the policy load.
 */
export function mayHoldPolicyDocument(text: string): boolean {
  return /Image(?:Repository|Policy|UpdateAutomation)|image\.toolkit\.fluxcd\.io|shipmate\.dev\/|\\/.test(
    text,
  );
}
const NATIVE_KINDS = new Set(["ImagePolicy", "ImagePolicyList"]);

/**
 * The pure core: YAML texts in, policies and automations out (or a
 * PolicyConfigError listing every problem). `path` names each file in errors.
 */
export function parsePolicyConfig(files: readonly { path: string; text: string }[]): PolicyConfig {
  const problems = new Problems();
  const repos = new Map<string, Parsed<FluxImageRepository>>();
  const fluxPolicies: Parsed<FluxImagePolicy>[] = [];
  const automations: Parsed<FluxImageUpdateAutomation>[] = [];
  const policies: Policy[] = [];
  const kustomized = kustomizeNamespaces(files);

  const parse = <T>(schema: z.ZodType<T>, where: Located, value: unknown): T | undefined => {
    const r = schema.safeParse(value);
    if (r.success) return r.data;
    reportIssues(problems, where, value, r.error);
    return undefined;
  };

  const skipped: LimitRefusal[] = [];
  for (const { path, text } of files) {
    if (!mayHoldPolicyDocument(text)) continue;
    const { docs, counter, refusal } = parseDocumentsBounded(text, path);
    if (refusal) {
      skipped.push(refusal);
      continue;
    }
    docs.forEach((doc, i) => {
      const where: Located = { file: path, index: i + 1, doc, counter };
      const yamlError = doc.errors[0];
      if (yamlError) {
        const line = yamlError.linePos?.[0]?.line ?? counter.linePos(yamlError.pos[0]).line;
        problems.list.push({
          file: path,
          document: i + 1,
          ...(line ? { line } : {}),
          message: `YAML syntax error: ${yamlError.message.split("\n")[0]}`,
        });
        return;
      }
      const converted = documentValue(doc, { file: path, text, counter });
      if (converted.refusal) {
        skipped.push(converted.refusal);
        return;
      }
      const value = converted.value;
      if (typeof value !== "object" || value === null || Array.isArray(value)) return;
      const { apiVersion, kind } = value as { apiVersion?: unknown; kind?: unknown };
      if (typeof apiVersion !== "string" || typeof kind !== "string") return;
      const [group, version] = apiVersion.split("/");
      const namespace = policyNamespace({
        kustomize: kustomized.get(path),
        metadata: (value as { metadata?: { namespace?: unknown } }).metadata?.namespace,
        fallback: DEFAULT_NAMESPACE,
      });

      if (group === FLUX_IMAGE_GROUP && FLUX_KINDS.has(kind)) {
        if (!(FLUX_IMAGE_VERSIONS as readonly string[]).includes(version ?? "")) {
          problems.at(where, ["apiVersion"], `${apiVersion} is not supported (use ${FLUX_IMAGE_GROUP}/v1)`, {
            object: objectLabel(value) ?? kind,
          });
          return;
        }
        if (kind === "ImageRepository") {
          const data = parse(fluxImageRepository, where, value);
          if (!data) return;
          const key = `${namespace}/${data.metadata.name}`;
          const prior = repos.get(key);
          if (prior) {
            problems.at(
              where,
              ["metadata", "name"],
              `ImageRepository ${key} is also defined at ${locationOf(prior)}`,
            );
            return;
          }
          repos.set(key, { ...where, data, namespace });
        } else if (kind === "ImagePolicy") {
          const data = parse(fluxImagePolicy, where, value);
          if (data) fluxPolicies.push({ ...where, data, namespace });
        } else {
          const data = parse(fluxImageUpdateAutomation, where, value);
          if (data) automations.push({ ...where, data, namespace });
        }
        return;
      }

      if (group === NATIVE_API_VERSION.split("/")[0] && NATIVE_KINDS.has(kind)) {
        if (apiVersion !== NATIVE_API_VERSION) {
          problems.at(where, ["apiVersion"], `${apiVersion} is not supported (use ${NATIVE_API_VERSION})`);
          return;
        }
        if (kind === "ImagePolicy") {
          const data = parse(nativeImagePolicy, where, value);
          if (!data) return;
          const meta = {
            name: data.metadata.name,
            namespace,
            ...(data.metadata.labels ? { labels: data.metadata.labels } : {}),
          };
          const policy = buildNativePolicy(problems, where, ["spec"], [], data.spec, meta);
          if (policy) policies.push(policy);
        } else {
          const data = parse(nativeImagePolicyList, where, value);
          if (!data) return;
          data.items.forEach((item, n) => {
            const { name, labels: itemLabels, ...spec } = item;
            const labels = { ...data.metadata?.labels, ...itemLabels };
            const meta = { name, namespace, ...(Object.keys(labels).length ? { labels } : {}) };
            const policy = buildNativePolicy(
              problems,
              where,
              ["items", n],
              ["items", n],
              spec as NativePolicySpec,
              meta,
            );
            if (policy) policies.push(policy);
          });
        }
      }
      // Anything else (Deployments, Kustomizations, shipmate's Fleet, …) is not ours to read here.
    });
  }

  for (const p of fluxPolicies) {
    const policy = buildFluxPolicy(problems, p, repos);
    if (policy) policies.push(policy);
  }
  policies.sort((a, b) => order(a.source, b.source, files));

  checkUnique(
    problems,
    policies.map((p) => ({ id: p.id, source: p.source, what: "policy" })),
  );
  const builtAutomations = automations.map(buildAutomation);
  checkUnique(
    problems,
    builtAutomations.map((a) => ({ id: a.id, source: a.source, what: "ImageUpdateAutomation" })),
  );

  if (problems.list.length) throw new PolicyConfigError(problems.list);
  return {
    policies,
    automations: builtAutomations,
    files: files.map((f) => f.path),
    ...(skipped.length ? { skipped } : {}),
  };
}

function locationOf(where: Located): string {
  const line = lineOf(where.doc, where.counter, []);
  return `${where.file}${line ? `:${line}` : ""}`;
}

function order(a: SourceLocation, b: SourceLocation, files: readonly { path: string }[]): number {
  const fa = files.findIndex((f) => f.path === a.file);
  const fb = files.findIndex((f) => f.path === b.file);
  return fa - fb || a.document - b.document || (a.line ?? 0) - (b.line ?? 0);
}

function checkUnique(
  problems: Problems,
  items: { id: string; source: SourceLocation; what: string }[],
): void {
  const seen = new Map<string, SourceLocation>();
  for (const { id, source, what } of items) {
    const prior = seen.get(id);
    if (!prior) {
      seen.set(id, source);
      continue;
    }
    problems.list.push({
      file: source.file,
      document: source.document,
      ...(source.line ? { line: source.line } : {}),
      message: `${what} id ${id} is defined twice: here and at ${prior.file}${prior.line ? `:${prior.line}` : ""}`,
    });
  }
}

/** Whether `dir` is a file, a folder, or a clear ConfigError naming it. */
async function policyPathKind(dir: string): Promise<"file" | "dir"> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      throw new ConfigError(`policies directory does not exist`, { file: dir });
    throw new ConfigError(`cannot read policies directory: ${(err as Error).message}`, { file: dir });
  }
  if (info.isFile()) return "file";
  if (!info.isDirectory()) throw new ConfigError("is neither a directory nor a file", { file: dir });
  return "dir";
}

/**
 * The YAML files under `dir` (src/config/tree.ts's walk: `.git` skipped,
 * symlinks never followed), listed from the run's FleetContext when `dir`
 * lies in its checkout; each with its path under `dir`'s own spelling.
 */
function listPolicyFiles(
  dir: string,
  context: FleetContext | undefined,
): { source: TreeSource; walk: TreeWalk; base: string } {
  const rel = context ? relative(resolve(context.root), resolve(dir)) : undefined;
  if (context && rel !== undefined && !rel.startsWith("..") && !isAbsolute(rel)) {
    const walk = context.list({
      ...(rel ? { subdir: rel } : {}),
      match: isYamlAnyCase,
      maxFileBytes: Number.MAX_SAFE_INTEGER,
    });
    return { source: context, walk, base: join(dir, relative(resolve(dir), resolve(context.root))) };
  }
  const source = diskTree(dir);
  return {
    source,
    walk: source.list({ match: isYamlAnyCase, maxFileBytes: Number.MAX_SAFE_INTEGER }),
    base: dir,
  };
}

/** The YAML files under `dir` (recursively, `.git` and symlinks skipped), sorted; or `dir` itself if it is a file. */
export async function findPolicyFiles(dir: string): Promise<string[]> {
  if ((await policyPathKind(dir)) === "file") return [dir];
  const { walk, base } = listPolicyFiles(dir, undefined);
  return walk.files.map((f) => join(base, f.path));
}

/**
 * Reads every policy document under `dir` (or the one file `dir`); with the
 * run's FleetContext, from its one walk and its one read of each file.
 */
export async function loadPolicyConfig(dir: string, context?: FleetContext): Promise<PolicyConfig> {
  const tooBig: LimitRefusal[] = [];
  const files: { path: string; text: string }[] = [];
  if ((await policyPathKind(dir)) === "file") {
    // Over the size bound a file is refused unread.
    const refusal = sizeRefusal(dir, statSync(dir).size);
    if (refusal) tooBig.push(refusal);
    else files.push({ path: dir, text: readFileSync(dir, "utf8") });
  } else {
    // Read one after another: with the policies directory being a whole fleet repository, that is thousands
    // of small files, which synchronous reads take in a tenth of the time of as many concurrent promises.
    const { source, walk, base } = listPolicyFiles(dir, context);
    for (const p of walk.problems) tooBig.push({ file: join(base, p.file), message: p.message });
    for (const f of walk.files) {
      const path = join(base, f.path);
      // Over the size bound a file is refused unread.
      const refusal = sizeRefusal(path, f.size);
      if (refusal) {
        tooBig.push(refusal);
        continue;
      }
      // A file that may hold a policy is kept for the run: the manifest update reads it from there.
      const read = source.read(f, { keep: mayHoldPolicyDocument });
      if ("problem" in read) tooBig.push({ file: path, message: read.problem.message });
      else files.push({ path, text: read.text });
    }
  }
  const config = parsePolicyConfig(files);
  const skipped = [...tooBig, ...(config.skipped ?? [])];
  return skipped.length ? { ...config, skipped } : config;
}

/** The policies under `dir`; see loadPolicyConfig for automations too. */
export async function loadPolicies(dir: string): Promise<Policy[]> {
  return (await loadPolicyConfig(dir)).policies;
}
