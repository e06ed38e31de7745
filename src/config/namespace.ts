/**
 * The one rule for the namespace of a policy document (ImagePolicy,
 * ImageRepository, ImageUpdateAutomation, native policies), which names it
 * (`<namespace>:<name>` in markers) for scan, update, the Action, the App and
 * serve: the namespace it has once its folder is built (a kustomization's
 * `namespace:`), else its `metadata.namespace`, else the default. Pure: the
 * caller hands in the texts of the files it read.
 */
import { dirname, join, normalize } from "node:path";
import { parse } from "yaml";

export interface NamespaceSources {
  /** What kustomize's `namespace:` makes of the document's file (kustomizeNamespaces). */
  kustomize?: string | undefined;
  metadata?: unknown;
  fallback: string;
}

export function policyNamespace({ kustomize, metadata, fallback }: NamespaceSources): string {
  if (kustomize) return kustomize;
  if (typeof metadata === "string" && metadata) return metadata;
  return fallback;
}

const KUSTOMIZATION = /(^|\/)kustomization\.ya?ml$/;
/** A path as kustomize compares them: normalised, no trailing separator (`./u/` is `u`). */
const clean = (p: string) => normalize(p).replace(/(.)[\\/]+$/, "$1");

interface Kustomization {
  dir: string;
  namespace: string | undefined;
  /** Files and folders it builds (`resources`, `components`), normalised. */
  includes: string[];
}

function readKustomization(path: string, text: string): Kustomization | undefined {
  let k: unknown;
  try {
    k = parse(text);
  } catch {
    return undefined; // a broken kustomization is the build's (and validate's) to report
  }
  if (!k || typeof k !== "object") return undefined;
  const { namespace, resources, components } = k as Record<string, unknown>;
  const dir = dirname(path);
  const includes = [resources, components]
    .flatMap((list) => (Array.isArray(list) ? list : []))
    .filter((r): r is string => typeof r === "string" && !r.includes("://"))
    .map((r) => clean(join(dir, r)));
  return { dir, namespace: typeof namespace === "string" && namespace ? namespace : undefined, includes };
}

/**
 * For each file some kustomization among `files` builds, the namespace
 * kustomize gives its objects: the namespace of the nearest kustomization
 * that includes it, unless one including that one (transitively) sets
 * another, as kustomize's outer namespace transformer runs last. When the
 * kustomizations including a folder disagree, the nearest one's namespace
 * stands. Files no kustomization builds are absent.
 */
export function kustomizeNamespaces(files: readonly { path: string; text: string }[]): Map<string, string> {
  const ks = new Map<string, Kustomization>();
  for (const f of files) {
    if (!KUSTOMIZATION.test(f.path.replaceAll("\\", "/"))) continue;
    const k = readKustomization(f.path, f.text);
    if (k) ks.set(k.dir, k);
  }
  const byTarget = new Map<string, Kustomization[]>();
  for (const k of ks.values())
    for (const target of k.includes) byTarget.set(target, [...(byTarget.get(target) ?? []), k]);
  const includers = (target: string) => byTarget.get(target) ?? [];

  const effective = new Map<string, string | undefined>();
  const namespaceOf = (k: Kustomization, seen: Set<string>): string | undefined => {
    if (effective.has(k.dir)) return effective.get(k.dir);
    if (seen.has(k.dir)) return k.namespace; // an include cycle: kustomize refuses it; keep our own
    seen.add(k.dir);
    const outer = new Set(
      includers(k.dir)
        .map((o) => namespaceOf(o, seen))
        .filter((n): n is string => n !== undefined),
    );
    const ns = outer.size === 1 ? [...outer][0] : k.namespace;
    effective.set(k.dir, ns);
    return ns;
  };

  const out = new Map<string, string>();
  for (const f of files) {
    if (KUSTOMIZATION.test(f.path.replaceAll("\\", "/"))) continue;
    const direct = includers(clean(f.path));
    const found = new Set(
      direct.map((k) => namespaceOf(k, new Set())).filter((n): n is string => n !== undefined),
    );
    const nearest = direct.find((k) => k.dir === dirname(clean(f.path))) ?? direct[0];
    const ns = found.size === 1 ? [...found][0] : nearest ? namespaceOf(nearest, new Set()) : undefined;
    if (ns) out.set(f.path, ns);
  }
  return out;
}
