/**
 * `shipmate bootstrap --from-flux`, the pure half: what changes in a
 * repository `flux bootstrap` made, and what will happen in the cluster.
 *
 * `flux bootstrap --path clusters/<env>` writes `clusters/<env>/flux-system/`:
 * `gotk-components.yaml` (Flux's Namespace, CRDs and controllers),
 * `gotk-sync.yaml` (the GitRepository and the root Kustomization, both
 * `flux-system`) and a `kustomization.yaml` listing both. Moving over:
 *
 * - `gotk-components.yaml` goes; its Namespace and CRDs stay in git,
 *   verbatim, in `flux-crds.yaml` (pruning them would delete every Flux
 *   object in the cluster; Flux's CRDs are fuller than the agent's and the
 *   agent reads them as they are). Everything else in it (controllers, their
 *   RBAC, Services, NetworkPolicies) leaves git and is pruned by the agent's
 *   first pass, once bootstrap has scaled the controllers to 0.
 * - `gotk-sync.yaml` stays unchanged: Flux's root Kustomization is the
 *   agent's root (`--name flux-system --namespace flux-system`), so its
 *   inventory is the agent's previous inventory and nothing is re-created.
 * - `clusters/<env>/shipmate-system/` holds the agent (the manifests `shipmate
 *   bootstrap` writes, without its own CRDs and sync objects).
 */
import { posix } from "node:path";
import { isMap, isScalar, isSeq, parse, parseDocument } from "yaml";
import { UsageError } from "../errors.ts";
import { describeRef, inventoryId, type ObjectRef, splitApiVersion } from "../kube/objects.ts";
import {
  AGENT_DIR,
  AGENT_NAMESPACE,
  GIT_SECRET,
  DEPLOYMENT_PATCH as TOKEN_PATCH,
  withAgentResource,
} from "./layout.ts";

export const FLUX_DIR = "flux-system";
export const COMPONENTS_FILE = "gotk-components.yaml";
export const SYNC_FILE = "gotk-sync.yaml";
export const CRDS_FILE = "flux-crds.yaml";
/** The agent files `--from-flux` keeps from bootstrap's set: its own CRDs and sync objects are Flux's. */
export const FROM_FLUX_AGENT_FILES = ["namespace.yaml", "rbac.yaml", "deployment.yaml"];

/** Kinds of gotk-components.yaml that stay in git: deleting them would delete every Flux object. */
const KEPT_KINDS = new Set(["CustomResourceDefinition", "Namespace"]);

export interface FluxRoot {
  /** The root Kustomization (gotk-sync.yaml). */
  name: string;
  namespace: string;
  path: string;
  /** The GitRepository it reads. */
  source: { name: string; namespace: string; url: string; branch: string | undefined };
}

export interface FromFluxPlan {
  clusterPath: string;
  root: FluxRoot;
  /** Repository-relative files to write (added or changed), with their content. */
  write: Map<string, string>;
  /** Repository-relative files to delete. */
  remove: string[];
  /** Objects that stay in git from gotk-components.yaml (Namespace, CRDs), by inventory id. */
  kept: ObjectRef[];
  /** Objects of gotk-components.yaml that leave git: the agent's first pass prunes those Flux applied. */
  leaving: ObjectRef[];
  /** Remarks for the person (patches that now match nothing, …). */
  notes: string[];
}

interface Chunk {
  text: string;
  ref: ObjectRef;
}

/** Splits a multi-document file on its `---` lines, keeping each document's text as written. */
export function splitDocuments(text: string, file: string): Chunk[] {
  const out: Chunk[] = [];
  for (const part of text.split(/^---[ \t]*$/m)) {
    let value: unknown;
    try {
      value = parse(part);
    } catch (err) {
      throw new UsageError(`${file}: ${(err as Error).message.split("\n")[0]}`);
    }
    if (value === null || value === undefined) continue;
    const obj = value as {
      apiVersion?: unknown;
      kind?: unknown;
      metadata?: { name?: unknown; namespace?: unknown };
    };
    if (
      typeof obj.apiVersion !== "string" ||
      typeof obj.kind !== "string" ||
      typeof obj.metadata?.name !== "string"
    )
      throw new UsageError(
        `${file}: a document is not a Kubernetes object with apiVersion, kind and metadata.name`,
      );
    const { group, version } = splitApiVersion(obj.apiVersion);
    const namespace = typeof obj.metadata.namespace === "string" ? obj.metadata.namespace : "";
    out.push({
      text: `${part.replace(/^\n+/, "").replace(/\s+$/, "")}\n`,
      ref: { group, version, kind: obj.kind, namespace, name: obj.metadata.name },
    });
  }
  return out;
}

const normPath = (p: string) =>
  posix
    .normalize(p.trim())
    .replace(/^(\.\/)+/, "")
    .replace(/\/+$/, "") || ".";

/** The root Kustomization and its GitRepository, as gotk-sync.yaml declares them. */
export function readFluxRoot(text: string, file: string, clusterPath: string): FluxRoot {
  const docs = splitDocuments(text, file);
  const values = docs.map((d) => parse(d.text) as Record<string, unknown>);
  const ks = values.filter(
    (v) => v.kind === "Kustomization" && String(v.apiVersion).startsWith("kustomize.toolkit.fluxcd.io/"),
  );
  const root = ks.find((v) => normPath(String((v.spec as { path?: unknown })?.path ?? "")) === clusterPath);
  if (!root)
    throw new UsageError(
      `${file}: no Kustomization with path ./${clusterPath} (flux bootstrap writes one named flux-system); is --path the folder given to flux bootstrap?`,
    );
  const meta = root.metadata as { name: string; namespace?: string };
  const namespace = meta.namespace ?? "flux-system";
  const ref = (root.spec as { sourceRef?: { kind?: string; name?: string; namespace?: string } }).sourceRef;
  if (ref?.kind !== "GitRepository" || !ref.name)
    throw new UsageError(`${file}: Kustomization ${namespace}/${meta.name} does not read a GitRepository`);
  const sourceNs = ref.namespace ?? namespace;
  const repo = values.find(
    (v) =>
      v.kind === "GitRepository" &&
      (v.metadata as { name?: string }).name === ref.name &&
      ((v.metadata as { namespace?: string }).namespace ?? "flux-system") === sourceNs,
  );
  if (!repo)
    throw new UsageError(
      `${file}: GitRepository ${sourceNs}/${ref.name} (the root's source) is not declared here`,
    );
  const spec = repo.spec as { url?: string; ref?: { branch?: string } };
  return {
    name: meta.name,
    namespace,
    path: clusterPath,
    source: { name: ref.name, namespace: sourceNs, url: spec.url ?? "", branch: spec.ref?.branch },
  };
}

/**
 * flux-system/kustomization.yaml with gotk-components.yaml replaced by
 * flux-crds.yaml in its resources (order and comments kept); undefined when
 * it lists flux-crds.yaml already and not gotk-components.yaml.
 */
export function withoutComponents(text: string, file: string): string | undefined {
  const doc = parseDocument(text);
  if (doc.errors.length) throw new UsageError(`${file}: ${doc.errors[0]?.message.split("\n")[0]}`);
  if (!isMap(doc.contents)) throw new UsageError(`${file}: not a kustomization (expected a mapping)`);
  const resources = doc.get("resources");
  if (!isSeq(resources)) throw new UsageError(`${file}: resources is not a list`);
  const name = (i: unknown) => normPath(String(isScalar(i) ? i.value : i));
  const at = resources.items.findIndex((i) => name(i) === COMPONENTS_FILE);
  const hasCrds = resources.items.some((i) => name(i) === CRDS_FILE);
  if (at < 0) {
    if (hasCrds) return undefined;
    throw new UsageError(`${file}: resources lists neither ${COMPONENTS_FILE} nor ${CRDS_FILE}`);
  }
  // Flux writes `- gotk-components.yaml` at the margin: the line is edited in place so the file keeps its style.
  const line = /^([ \t]*-[ \t]+)(["']?)(\.\/)?gotk-components\.yaml\2[ \t]*(#.*)?$/m;
  const lines = text.split("\n").filter((l) => line.test(l));
  if (lines.length === 1)
    return hasCrds
      ? text.replace(new RegExp(`${line.source}\n?`, "m"), "")
      : text.replace(
          line,
          (_m, dash: string, _q, _dot, comment: string | undefined) =>
            `${dash}${CRDS_FILE}${comment ? ` ${comment}` : ""}`,
        );
  if (hasCrds) resources.delete(at);
  else resources.set(at, doc.createNode(CRDS_FILE));
  return doc.toString({ lineWidth: 0 });
}

/** Patches of flux-system/kustomization.yaml that named the controllers now gone: they match nothing. */
export function strandedPatches(text: string, leaving: ObjectRef[]): string[] {
  const ks = (parse(text) ?? {}) as { patches?: { target?: { kind?: string; name?: string } }[] };
  const out: string[] = [];
  (ks.patches ?? []).forEach((p, i) => {
    const t = p.target;
    if (!t?.name && !t?.kind) return;
    let re: RegExp | undefined;
    try {
      re = t.name ? new RegExp(`^(?:${t.name})$`) : undefined;
    } catch {
      re = undefined;
    }
    const hits = leaving.filter((r) => (!t.kind || r.kind === t.kind) && (!re || re.test(r.name)));
    if (hits.length)
      out.push(
        `patches[${i}] (target ${[t.kind, t.name].filter(Boolean).join(" ")}) patched Flux's ${hits.map((h) => h.name).join(", ")}, which leave git; it now changes nothing and can be removed`,
      );
  });
  return out;
}

const DEPLOYMENT_PATCH = (root: FluxRoot) =>
  [
    "- op: add",
    "  path: /spec/template/spec/containers/0/args/-",
    `  value: --name=${root.name}`,
    "- op: add",
    "  path: /spec/template/spec/containers/0/args/-",
    `  value: --namespace=${root.namespace}`,
    TOKEN_PATCH,
  ].join("\n");

/** The agent folder's kustomization for a cluster moved from Flux. */
export function fromFluxAgentKustomization(root: FluxRoot): string {
  return [
    "# Written by shipmate bootstrap --from-flux. The agent took over from Flux's",
    `# controllers: its root is Flux's own Kustomization ${root.namespace}/${root.name}`,
    `# (../${FLUX_DIR}/${SYNC_FILE}), whose inventory it keeps; Flux's CRDs stay in`,
    `# ../${FLUX_DIR}/${CRDS_FILE}. The git token comes from the Secret`,
    `# ${AGENT_NAMESPACE}/${GIT_SECRET} (created by bootstrap, never committed).`,
    "apiVersion: kustomize.config.k8s.io/v1beta1",
    "kind: Kustomization",
    "resources:",
    ...FROM_FLUX_AGENT_FILES.map((f) => `  - ${f}`),
    "patches:",
    "  - target:",
    "      kind: Deployment",
    "      name: shipmate-agent",
    "    patch: |",
    ...DEPLOYMENT_PATCH(root)
      .split("\n")
      .filter(Boolean)
      .map((l) => `      ${l}`),
    "",
  ].join("\n");
}

const CRDS_HEADER = (clusterPath: string) =>
  [
    `# Flux's Namespace and CRDs, kept from ${COMPONENTS_FILE} by shipmate bootstrap --from-flux:`,
    "# the Kustomization, GitRepository and other Flux objects live in these CRDs, and",
    "# removing them from git would delete every one of them. `flux bootstrap` puts",
    `# them back into ${COMPONENTS_FILE} (see docs/moving-from-flux.md, "Back to Flux").`,
    `# Cluster folder: ${clusterPath}`,
    "",
  ].join("\n");

export interface PlanInput {
  /** The cluster folder as given to flux bootstrap (`clusters/<env>`), normalised. */
  clusterPath: string;
  /** Reads a repository-relative file of the checkout; undefined when absent. */
  read(rel: string): string | undefined;
  /** The agent files `shipmate bootstrap` renders (namespace.yaml, rbac.yaml, deployment.yaml, …). */
  agentFiles: Map<string, string>;
}

/** What --from-flux changes in git; running it on a repository already moved changes nothing. */
export function planFromFlux(input: PlanInput): FromFluxPlan {
  const cp = input.clusterPath;
  const fluxDir = `${cp}/${FLUX_DIR}`;
  const rel = (f: string) => `${fluxDir}/${f}`;
  const syncText = input.read(rel(SYNC_FILE));
  if (syncText === undefined)
    throw new UsageError(
      `${rel(SYNC_FILE)} not found: --from-flux needs a repository made by flux bootstrap (--path is the folder given to it)`,
    );
  const root = readFluxRoot(syncText, rel(SYNC_FILE), cp);
  const write = new Map<string, string>();
  const remove: string[] = [];
  const notes: string[] = [];
  let kept: ObjectRef[] = [];
  let leaving: ObjectRef[] = [];

  const components = input.read(rel(COMPONENTS_FILE));
  const ksText = input.read(rel("kustomization.yaml"));
  if (ksText === undefined)
    throw new UsageError(`${rel("kustomization.yaml")} not found (flux bootstrap writes it)`);
  if (components !== undefined) {
    const chunks = splitDocuments(components, rel(COMPONENTS_FILE));
    const keep = chunks.filter((c) => KEPT_KINDS.has(c.ref.kind));
    kept = keep.map((c) => c.ref);
    leaving = chunks.filter((c) => !KEPT_KINDS.has(c.ref.kind)).map((c) => c.ref);
    if (!kept.some((r) => r.kind === "CustomResourceDefinition"))
      throw new UsageError(`${rel(COMPONENTS_FILE)}: holds no CustomResourceDefinition; is it Flux's?`);
    remove.push(rel(COMPONENTS_FILE));
    write.set(rel(CRDS_FILE), CRDS_HEADER(cp) + keep.map((c) => `---\n${c.text}`).join(""));
    const next = withoutComponents(ksText, rel("kustomization.yaml"));
    if (next !== undefined) write.set(rel("kustomization.yaml"), next);
    notes.push(...strandedPatches(ksText, leaving).map((n) => `${rel("kustomization.yaml")}: ${n}`));
  } else if (input.read(rel(CRDS_FILE)) === undefined) {
    throw new UsageError(
      `${rel(COMPONENTS_FILE)} not found: --from-flux needs the folder flux bootstrap wrote (Flux's components)`,
    );
  }

  const agentDir = `${cp}/${AGENT_DIR}`;
  for (const f of FROM_FLUX_AGENT_FILES) {
    const content = input.agentFiles.get(f);
    if (content === undefined) throw new Error(`agent file ${f} was not rendered`);
    write.set(`${agentDir}/${f}`, content);
  }
  // A kustomization someone extended keeps what they added; a fresh one is ours.
  if (input.read(`${agentDir}/kustomization.yaml`) === undefined)
    write.set(`${agentDir}/kustomization.yaml`, fromFluxAgentKustomization(root));
  const clusterKs = input.read(`${cp}/kustomization.yaml`);
  if (clusterKs !== undefined) {
    const next = withAgentResource(clusterKs, `${cp}/kustomization.yaml`);
    if (next !== undefined) write.set(`${cp}/kustomization.yaml`, next);
  }
  // Only real changes are planned, so a second run reports nothing to do.
  for (const [path, content] of [...write]) if (input.read(path) === content) write.delete(path);
  return { clusterPath: cp, root, write, remove, kept, leaving, notes };
}

/** A Flux Kustomization as found in the cluster, for the plan. */
export interface LiveKustomization {
  namespace: string;
  name: string;
  inventory: { id: string; v: string }[];
}

export interface ClusterFacts {
  /** The root Kustomization in the cluster (undefined: not there, refused before this). */
  root: LiveKustomization;
  /** Every other Kustomization in the cluster. */
  others: LiveKustomization[];
  /** Deployments of Flux's components found in the cluster, with their replicas. */
  controllers: {
    namespace: string;
    name: string;
    replicas: number | undefined;
    readyReplicas: number | undefined;
  }[];
}

export interface ClusterPlan {
  scaleDown: string[];
  prune: string[];
  keep: string[];
  adopt: string[];
}

/** What will happen in the cluster: scaled, pruned by the first pass, kept, adopted. */
export function planCluster(plan: FromFluxPlan, facts: ClusterFacts): ClusterPlan {
  const inRoot = new Set(facts.root.inventory.map((e) => e.id));
  const deployments = new Set(
    plan.leaving.filter((r) => r.kind === "Deployment").map((r) => `${r.namespace}/${r.name}`),
  );
  const scaleDown = facts.controllers
    .filter(
      (d) =>
        deployments.has(`${d.namespace}/${d.name}`) && ((d.replicas ?? 1) > 0 || (d.readyReplicas ?? 0) > 0),
    )
    .map((d) => `Deployment ${d.namespace}/${d.name} (replicas ${d.replicas ?? 1} → 0)`);
  const prune = plan.leaving.filter((r) => inRoot.has(inventoryId(r))).map((r) => describeRef(r));
  const keep = plan.kept.map((r) => describeRef(r));
  const adopt = [facts.root, ...facts.others].map(
    (k, i) =>
      `Kustomization ${k.namespace}/${k.name}: ${k.inventory.length} object(s) in its inventory kept${i === 0 ? " (the agent's root)" : ""}`,
  );
  return { scaleDown, prune, keep, adopt };
}

/** The plan as a person reads it (`--dry-run`, and before acting). */
export function formatPlan(plan: FromFluxPlan, cluster: ClusterPlan | undefined): string[] {
  const lines: string[] = [];
  const list = (title: string, items: string[]) => {
    lines.push(`${title}${items.length ? "" : " none"}`);
    for (const i of items) lines.push(`    ${i}`);
  };
  lines.push(`git (${plan.clusterPath}):`);
  list("  remove:", plan.remove);
  list("  add or change:", [...plan.write.keys()].sort());
  lines.push(
    `  keep: ${plan.clusterPath}/${FLUX_DIR}/${SYNC_FILE} (Kustomization ${plan.root.namespace}/${plan.root.name} becomes the agent's root)`,
  );
  for (const n of plan.notes) lines.push(`  note: ${n}`);
  if (cluster) {
    lines.push("cluster:");
    list("  scale to 0 before the push (Flux stops applying):", cluster.scaleDown);
    list("  pruned by the agent's first pass (they left git):", cluster.prune);
    list("  kept (now in flux-crds.yaml):", cluster.keep);
    list("  adopted, nothing re-created:", cluster.adopt);
    lines.push(
      "  field ownership: fields owned by kustomize-controller and helm-controller pass to the agent (manager shipmate) as it applies",
    );
    lines.push(
      "  finalizers: finalizers.fluxcd.io released on Flux's objects (nobody would release it once Flux is gone)",
    );
    lines.push(
      `  installed: Namespace ${AGENT_NAMESPACE}, Secret ${AGENT_NAMESPACE}/${GIT_SECRET}, ServiceAccount, ClusterRoleBinding, Deployment ${AGENT_NAMESPACE}/shipmate-agent`,
    );
  }
  return lines;
}
