/**
 * Rendering with the real kustomize (`kustomize build`, or `kubectl
 * kustomize` when only kubectl is installed), the way Flux's
 * kustomize-controller does it:
 *  - a directory without a kustomization file gets one generated that lists
 *    every YAML file below it (directories holding their own kustomization
 *    file are added whole);
 *  - `targetNamespace`, `namePrefix`/`nameSuffix`, `patches`, `images`,
 *    `components` and `commonMetadata` from the Kustomization spec are
 *    applied by a generated overlay on top of the path.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { delimiter, isAbsolute, join, normalize, relative, sep } from "node:path";
import { stringify } from "yaml";
import { documentValue, formatRefusal, parseDocumentsBounded } from "../config/limits.ts";
import { ConfigError } from "../errors.ts";
import { KubeObject, type KustomizationSpec } from "../kube/schema.ts";
import { kustomizeErrorLine } from "../validate/kustomize.ts";
import { remoteBases, remoteBasesMessage } from "./tenancy.ts";

const KUSTOMIZATION_FILES = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

export interface Kustomize {
  command: string;
  args: string[];
}

/** `$SHIPMATE_KUSTOMIZE`, else `kustomize` on PATH, else `kubectl kustomize`. */
export function findKustomize(env: NodeJS.ProcessEnv = process.env): Kustomize {
  if (env.SHIPMATE_KUSTOMIZE) return { command: env.SHIPMATE_KUSTOMIZE, args: ["build"] };
  const onPath = (name: string) =>
    (env.PATH ?? "").split(delimiter).some((d) => d && existsSync(join(d, name)));
  if (onPath("kustomize")) return { command: "kustomize", args: ["build"] };
  if (onPath("kubectl")) return { command: "kubectl", args: ["kustomize"] };
  throw new ConfigError(
    "neither kustomize nor kubectl is on PATH; the agent renders with the real kustomize",
  );
}

export function hasKustomizationFile(dir: string): boolean {
  return KUSTOMIZATION_FILES.some((f) => existsSync(join(dir, f)));
}

/** The resources Flux would list for a directory without a kustomization file. */
export function generatedResources(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      if (entry.name.startsWith(".")) continue;
      const full = join(d, entry.name);
      if (entry.isDirectory()) {
        if (hasKustomizationFile(full)) out.push(relative(dir, full));
        else walk(full);
      } else if (/\.ya?ml$/.test(entry.name)) {
        out.push(relative(dir, full));
      }
    }
  };
  walk(dir);
  return out;
}

/** Writes a kustomization file into every directory kustomize will need one in and that lacks one. */
function ensureKustomization(dir: string): void {
  if (hasKustomizationFile(dir)) return;
  const doc = {
    apiVersion: "kustomize.config.k8s.io/v1beta1",
    kind: "Kustomization",
    resources: generatedResources(dir),
  };
  writeFileSync(join(dir, "kustomization.yaml"), stringify(doc));
}

/** Resolves spec.path inside the checkout, refusing paths that escape it. */
export function resolvePath(root: string, path: string | undefined): string {
  const rel = normalize(path ?? "./").replace(/^(\.\/)+/, "");
  if (isAbsolute(path ?? "") || rel === ".." || rel.startsWith(`..${sep}`)) {
    throw new ConfigError(`path "${path}" escapes the repository`);
  }
  return join(root, rel);
}

type OverlaySpec = Pick<
  KustomizationSpec,
  "targetNamespace" | "namePrefix" | "nameSuffix" | "patches" | "images" | "components" | "commonMetadata"
>;

export function needsOverlay(spec: OverlaySpec): boolean {
  return Boolean(
    spec.targetNamespace ||
      spec.namePrefix ||
      spec.nameSuffix ||
      spec.patches?.length ||
      spec.images?.length ||
      spec.components?.length ||
      spec.commonMetadata?.labels ||
      spec.commonMetadata?.annotations,
  );
}

/** The overlay kustomization applying the spec's transformations to `target` (relative to the overlay). */
export function overlayDocument(target: string, spec: OverlaySpec): Record<string, unknown> {
  const doc: Record<string, unknown> = {
    apiVersion: "kustomize.config.k8s.io/v1beta1",
    kind: "Kustomization",
    resources: [target],
  };
  if (spec.targetNamespace) doc.namespace = spec.targetNamespace;
  if (spec.namePrefix) doc.namePrefix = spec.namePrefix;
  if (spec.nameSuffix) doc.nameSuffix = spec.nameSuffix;
  if (spec.components?.length) doc.components = spec.components.map((c) => join(target, c));
  if (spec.patches?.length)
    doc.patches = spec.patches.map((p) =>
      p.target ? { patch: p.patch, target: p.target } : { patch: p.patch },
    );
  if (spec.images?.length) doc.images = spec.images;
  if (spec.commonMetadata?.labels)
    doc.labels = [{ pairs: spec.commonMetadata.labels, includeSelectors: false }];
  if (spec.commonMetadata?.annotations) doc.commonAnnotations = spec.commonMetadata.annotations;
  return doc;
}

/** Longest BuildFailed message: a condition message is read in `kubectl get` columns and events. */
const MAX_MESSAGE = 300;

/**
 * kustomize's failure as one line for a condition: kubectl's klog wrapping
 * dropped, paths relative to the source root, the agent's own overlay
 * folder named as such (the working directories are the agent's business,
 * not the user's), and bounded in length.
 */
export function buildFailureMessage(stderr: string, root: string, scratch?: string): string {
  // kubectl kustomize wraps the error in a klog line: `E1206 … run.go:72] "command failed" err="…"`.
  const unwrapped = stderr
    .split("\n")
    .map((l) => {
      const m = /^[EWIF]\d{4} [^\]]*\] "command failed" err="(.*)"\s*$/.exec(l.trim());
      return m ? `error: ${m[1]}` : l;
    })
    .join("\n");
  let line = kustomizeErrorLine(unwrapped, root).replace(/…$/, "");
  if (scratch)
    line = line.replace(new RegExp(`${escapeRegExp(scratch)}/overlay-[^/\\s']+`, "g"), "(generated overlay)");
  for (const dir of [root, scratch]) if (dir) line = line.split(`${dir}/`).join("").split(dir).join(".");
  line = line.replace(/\s+/g, " ").trim() || "kustomize failed";
  const room = MAX_MESSAGE - "kustomize build failed: ".length - 1;
  return `kustomize build failed: ${line.length > room ? `${line.slice(0, room)}…` : line}`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function run(k: Kustomize, dir: string, where: { root: string; scratch: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(k.command, [...k.args, dir], { maxBuffer: 512 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new ConfigError(buildFailureMessage(stderr || err.message, where.root, where.scratch)));
      else resolve(stdout);
    });
  });
}

/** Parses kustomize's output into objects; a document that is not an object fails the build. */
export function parseManifests(text: string, where: string): KubeObject[] {
  const out: KubeObject[] = [];
  const { docs, counter, refusal } = parseDocumentsBounded(text, where);
  if (refusal) throw new ConfigError(formatRefusal(refusal));
  for (const doc of docs) {
    if (doc.errors.length) throw new ConfigError(`${where}: ${doc.errors[0]?.message.split("\n")[0]}`);
    const converted = documentValue(doc, { file: where, text, counter });
    if (converted.refusal) throw new ConfigError(formatRefusal(converted.refusal));
    const value = converted.value;
    if (value === null || value === undefined) continue;
    const parsed = KubeObject.safeParse(value);
    if (!parsed.success || !parsed.data.metadata.name) {
      throw new ConfigError(
        `${where}: a document is not a Kubernetes object with apiVersion, kind and metadata.name`,
      );
    }
    out.push(parsed.data);
  }
  return out;
}

/**
 * `spec.ignoreMissingComponents`: components whose directory is not in the
 * source (relative to `spec.path`) are dropped instead of failing the build.
 */
export function withoutMissingComponents<T extends OverlaySpec & { ignoreMissingComponents?: boolean }>(
  dir: string,
  spec: T,
): T {
  if (!spec.ignoreMissingComponents || !spec.components?.length) return spec;
  return { ...spec, components: spec.components.filter((c) => existsSync(join(dir, c))) };
}

export interface RenderRequest {
  /** Checkout root. */
  root: string;
  /** Where generated overlays go (outside the checkout). */
  scratch: string;
  name: string;
  namespace: string;
  spec: OverlaySpec & { path?: string; ignoreMissingComponents?: boolean };
}

export interface RendererOptions {
  /** Flux's `--no-remote-bases`: refuse a build that would fetch anything from the network. */
  noRemoteBases?: boolean;
}

export class Renderer {
  private readonly kustomize: Kustomize;
  private readonly opts: RendererOptions;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(kustomize: Kustomize = findKustomize(), opts: RendererOptions = {}) {
    this.kustomize = kustomize;
    this.opts = opts;
  }

  /**
   * Renders one Kustomization. Renders are serialized: they share the
   * working copy, into which generated kustomization files are written and
   * cleaned away by `beforeEach`.
   */
  render(req: RenderRequest, beforeEach: () => Promise<void>): Promise<KubeObject[]> {
    const next = this.queue.then(async () => {
      await beforeEach();
      const dir = resolvePath(req.root, req.spec.path);
      if (!existsSync(dir) || !statSync(dir).isDirectory()) {
        throw new ConfigError(`path "${req.spec.path ?? "./"}" not found in the repository`);
      }
      ensureKustomization(dir);
      let buildDir = dir;
      const spec = withoutMissingComponents(dir, req.spec);
      if (needsOverlay(spec)) {
        buildDir = join(req.scratch, `overlay-${req.namespace}-${req.name}`);
        rmSync(buildDir, { recursive: true, force: true });
        mkdirSync(buildDir, { recursive: true });
        writeFileSync(
          join(buildDir, "kustomization.yaml"),
          stringify(overlayDocument(relative(buildDir, dir), spec)),
        );
      }
      if (this.opts.noRemoteBases) {
        // Checked before kustomize runs: kustomize itself would already have fetched them.
        const found = remoteBases(buildDir, req.root);
        if (found.length) throw new ConfigError(remoteBasesMessage(found, `path "${req.spec.path ?? "./"}"`));
      }
      const text = await run(this.kustomize, buildDir, { root: req.root, scratch: req.scratch });
      return parseManifests(text, `${req.namespace}/${req.name}`);
    });
    this.queue = next.catch(() => undefined);
    return next;
  }
}
