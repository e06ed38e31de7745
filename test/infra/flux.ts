/**
 * A real Flux installation for tests, from Flux's own Go modules (downloaded
 * through the Go module proxy into $SHIPMATE_CACHE/gomod, as
 * scripts/provision/75-flux-modules.sh does; never committed):
 * kustomize-controller's and source-controller's `config/` folders (CRDs,
 * manager Deployment, RBAC) rendered with the real kustomize into
 * `gotk-components.yaml`, the way `flux install` assembles its manifest
 * (namespace flux-system, labels `app.kubernetes.io/part-of: flux`).
 *
 * `applyAsFlux` then plays kustomize-controller's part on a real API server,
 * since no controller runs here: every object server-side applied with field
 * manager `kustomize-controller` and Flux's ownership labels, and each
 * Kustomization's `status.inventory` written as Flux writes it (`id`, `v`).
 *
 * Fails (never skips) when the modules cannot be downloaded.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { parseAllDocuments } from "yaml";
import type { KubeClient } from "../../src/kube/client.ts";
import { inventoryId, NAME_LABEL, NAMESPACE_LABEL, parseInventoryId, refOf } from "../../src/kube/objects.ts";
import type { KubeObject } from "../../src/kube/schema.ts";
import { findBinary } from "./kube.ts";

/** Keep in step with scripts/provision/75-flux-modules.sh. */
export const FLUX_MODULES = {
  kustomize: "github.com/fluxcd/kustomize-controller@v1.9.6",
  source: "github.com/fluxcd/source-controller@v1.9.6",
} as const;

export const FLUX_FIELD_MANAGER = "kustomize-controller";
const STATUS_MANAGER = "gotk-kustomize-controller";
const FLUX_FINALIZER = "finalizers.fluxcd.io";

function cacheDir(): string {
  return (
    process.env.SHIPMATE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "shipmate")
  );
}

function goBinary(): string {
  for (const d of [...(process.env.PATH ?? "").split(delimiter), "/usr/local/go/bin"]) {
    try {
      execFileSync(join(d, "go"), ["version"], { stdio: "ignore" });
      return join(d, "go");
    } catch {}
  }
  throw new Error("go not found on PATH or in /usr/local/go/bin: Flux's modules cannot be downloaded");
}

/** The module directories, downloaded once (go mod download is idempotent and cached). */
export function fluxModuleDirs(): { kustomize: string; source: string } {
  const work = mkdtempSync(join(tmpdir(), "shipmate-flux-mod-"));
  let out: string;
  try {
    out = execFileSync(
      goBinary(),
      ["mod", "download", "-json", FLUX_MODULES.kustomize, FLUX_MODULES.source],
      {
        cwd: work,
        encoding: "utf8",
        env: {
          ...process.env,
          GOTOOLCHAIN: "local",
          GOMODCACHE: join(cacheDir(), "gomod"),
          GOFLAGS: "-mod=mod",
        },
      },
    );
  } catch (err) {
    throw new Error(
      `go mod download of Flux's modules failed (run scripts/provision/75-flux-modules.sh): ${(err as Error).message}`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  // `-json` prints one object per module, concatenated.
  const dirs = new Map<string, string>();
  for (const m of out.matchAll(/\{[^{}]*\}/g)) {
    const j = JSON.parse(m[0]) as { Path: string; Version: string; Dir?: string; Error?: string };
    if (j.Error || !j.Dir) throw new Error(`go mod download ${j.Path}@${j.Version}: ${j.Error ?? "no Dir"}`);
    dirs.set(`${j.Path}@${j.Version}`, j.Dir);
  }
  const kustomize = dirs.get(FLUX_MODULES.kustomize);
  const source = dirs.get(FLUX_MODULES.source);
  if (!kustomize || !source)
    throw new Error(`go mod download did not report ${JSON.stringify(FLUX_MODULES)}`);
  return { kustomize, source };
}

let rendered: string | undefined;

/** gotk-components.yaml: Flux's Namespace, CRDs, controllers and their RBAC, rendered by the real kustomize. */
export function gotkComponents(): string {
  if (rendered) return rendered;
  const mods = fluxModuleDirs();
  const dir = mkdtempSync(join(tmpdir(), "shipmate-flux-render-"));
  try {
    const parts: string[] = [];
    for (const [name, mod] of [
      ["kustomize-controller", mods.kustomize],
      ["source-controller", mods.source],
    ] as const) {
      for (const sub of ["crd", "manager", "rbac"]) {
        mkdirSync(join(dir, name), { recursive: true });
        // Module files are read-only; the copy must be removable.
        execFileSync("cp", ["-r", join(mod, "config", sub), join(dir, name, sub)]);
        parts.push(`${name}/${sub}`);
      }
    }
    execFileSync("chmod", ["-R", "u+w", dir]);
    writeFileSync(
      join(dir, "namespace.yaml"),
      [
        "apiVersion: v1",
        "kind: Namespace",
        "metadata:",
        "  name: flux-system",
        "  labels:",
        "    pod-security.kubernetes.io/warn: restricted",
        "    pod-security.kubernetes.io/warn-version: latest",
        "",
      ].join("\n"),
    );
    writeFileSync(
      join(dir, "kustomization.yaml"),
      [
        "apiVersion: kustomize.config.k8s.io/v1beta1",
        "kind: Kustomization",
        "namespace: flux-system",
        "labels:",
        "  - pairs:",
        "      app.kubernetes.io/instance: flux-system",
        "      app.kubernetes.io/part-of: flux",
        "      app.kubernetes.io/version: v2.7.5",
        "resources:",
        "  - namespace.yaml",
        ...parts.map((p) => `  - ${p}`),
        "",
      ].join("\n"),
    );
    const out = execFileSync(findBinary("kustomize"), ["build", dir], { encoding: "utf8" });
    rendered = `# This manifest was generated by flux. DO NOT EDIT.\n# Flux Version: v2.7.5\n# Components: source-controller,kustomize-controller\n---\n${out}`;
    return rendered;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** gotk-sync.yaml as flux bootstrap writes it for `--path clusters/<env>`. */
export function gotkSync(clusterPath: string, url: string, branch = "main"): string {
  return [
    "# This manifest was generated by flux. DO NOT EDIT.",
    "---",
    "apiVersion: source.toolkit.fluxcd.io/v1",
    "kind: GitRepository",
    "metadata:",
    "  name: flux-system",
    "  namespace: flux-system",
    "spec:",
    "  interval: 1m0s",
    "  ref:",
    `    branch: ${branch}`,
    "  secretRef:",
    "    name: flux-system",
    `  url: ${url}`,
    "---",
    "apiVersion: kustomize.toolkit.fluxcd.io/v1",
    "kind: Kustomization",
    "metadata:",
    "  name: flux-system",
    "  namespace: flux-system",
    "spec:",
    "  interval: 10m0s",
    `  path: ./${clusterPath}`,
    "  prune: true",
    "  sourceRef:",
    "    kind: GitRepository",
    "    name: flux-system",
    "",
  ].join("\n");
}

/** The files `flux bootstrap --path <clusterPath>` commits, by repository-relative path. */
export function fluxBootstrapFiles(
  clusterPath: string,
  url: string,
  branch = "main",
): Record<string, string> {
  return {
    [`${clusterPath}/flux-system/gotk-components.yaml`]: gotkComponents(),
    [`${clusterPath}/flux-system/gotk-sync.yaml`]: gotkSync(clusterPath, url, branch),
    [`${clusterPath}/flux-system/kustomization.yaml`]: [
      "apiVersion: kustomize.config.k8s.io/v1beta1",
      "kind: Kustomization",
      "resources:",
      "- gotk-components.yaml",
      "- gotk-sync.yaml",
      "",
    ].join("\n"),
  };
}

export function parseDocs(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => Boolean(o?.kind));
}

function pathOf(obj: KubeObject, plural: string, status = false): string {
  const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/") : ["", obj.apiVersion];
  const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
  const ns = obj.metadata.namespace ? `/namespaces/${obj.metadata.namespace}` : "";
  return `${base}${ns}/${plural}/${obj.metadata.name}${status ? "/status" : ""}`;
}

/** Plurals of the kinds the fixtures hold (no discovery needed for a fixed set). */
const PLURAL: Record<string, string> = {
  Namespace: "namespaces",
  CustomResourceDefinition: "customresourcedefinitions",
  ServiceAccount: "serviceaccounts",
  ClusterRole: "clusterroles",
  ClusterRoleBinding: "clusterrolebindings",
  Role: "roles",
  RoleBinding: "rolebindings",
  Service: "services",
  Deployment: "deployments",
  ConfigMap: "configmaps",
  GitRepository: "gitrepositories",
  Kustomization: "kustomizations",
  NetworkPolicy: "networkpolicies",
};

const ORDER = ["CustomResourceDefinition", "Namespace"];

async function ok(res: Promise<{ code: number; body: unknown }>, what: string): Promise<unknown> {
  const r = await res;
  if (r.code < 200 || r.code > 299) throw new Error(`${what}: ${r.code} ${JSON.stringify(r.body)}`);
  return r.body;
}

/**
 * What kustomize-controller does for one Kustomization: every object
 * server-side applied with its field manager and ownership labels (CRDs and
 * Namespaces first, CRDs waited for), Flux's finalizer on Flux objects, then
 * `status.inventory` and a Ready condition written through the status
 * subresource with its status manager. Returns the inventory.
 */
export async function applyAsFlux(
  client: KubeClient,
  ks: { name: string; namespace: string },
  objects: KubeObject[],
  revision: string,
): Promise<{ id: string; v: string }[]> {
  const sorted = [...objects].sort((a, b) => {
    const ra = ORDER.indexOf(a.kind) < 0 ? 9 : ORDER.indexOf(a.kind);
    const rb = ORDER.indexOf(b.kind) < 0 ? 9 : ORDER.indexOf(b.kind);
    return ra - rb;
  });
  for (const obj of sorted) {
    const plural = PLURAL[obj.kind];
    if (!plural) throw new Error(`applyAsFlux: no plural for ${obj.kind}`);
    const fluxKind = obj.apiVersion.includes(".toolkit.fluxcd.io/");
    const body = {
      ...obj,
      metadata: {
        ...obj.metadata,
        labels: { ...obj.metadata.labels, [NAME_LABEL]: ks.name, [NAMESPACE_LABEL]: ks.namespace },
      },
    };
    await ok(
      client.raw({
        method: "PATCH",
        path: pathOf(obj, plural),
        body,
        contentType: "application/apply-patch+yaml",
        query: { fieldManager: FLUX_FIELD_MANAGER, force: "true" },
      }),
      `apply ${obj.kind} ${obj.metadata.name} as Flux`,
    );
    if (fluxKind)
      // Flux's controllers add their finalizer with a plain patch of their own.
      await ok(
        client.raw({
          method: "PATCH",
          path: pathOf(obj, plural),
          body: { metadata: { finalizers: [FLUX_FINALIZER] } },
          contentType: "application/merge-patch+json",
          query: { fieldManager: STATUS_MANAGER },
        }),
        `finalizer on ${obj.kind} ${obj.metadata.name}`,
      );
    if (obj.kind === "CustomResourceDefinition") {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const r = await client.raw({ method: "GET", path: pathOf(obj, plural) });
        const conds = (r.body as { status?: { conditions?: { type: string; status: string }[] } }).status
          ?.conditions;
        if (conds?.some((c) => c.type === "Established" && c.status === "True")) break;
        if (Date.now() > deadline) throw new Error(`CRD ${obj.metadata.name} not established`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
  const entries = objects
    .map((o) => ({ id: inventoryId(refOf(o)), v: refOf(o).version }))
    .sort((a, b) => a.id.localeCompare(b.id));
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  await ok(
    client.raw({
      method: "PATCH",
      path: `/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/${ks.namespace}/kustomizations/${ks.name}/status`,
      body: {
        status: {
          inventory: { entries },
          lastAppliedRevision: revision,
          lastAttemptedRevision: revision,
          conditions: [
            {
              type: "Ready",
              status: "True",
              reason: "ReconciliationSucceeded",
              message: `Applied revision: ${revision}`,
              lastTransitionTime: now,
            },
          ],
        },
      },
      contentType: "application/merge-patch+json",
      query: { fieldManager: STATUS_MANAGER },
    }),
    `status of Kustomization ${ks.namespace}/${ks.name}`,
  );
  return entries;
}

/** Writes a Deployment's readyReplicas through the status subresource, as the deployment controller would. */
export async function setReadyReplicas(
  client: KubeClient,
  namespace: string,
  name: string,
  readyReplicas: number,
): Promise<void> {
  await ok(
    client.raw({
      method: "PATCH",
      path: `/apis/apps/v1/namespaces/${namespace}/deployments/${name}/status`,
      body: { status: { readyReplicas, replicas: readyReplicas, availableReplicas: readyReplicas } },
      contentType: "application/merge-patch+json",
    }),
    `status of Deployment ${namespace}/${name}`,
  );
}

/** The API path of an inventory entry's object (plural: the kind lowercased, `y` → `ies`, else `s`). */
export function pathOfInventoryId(id: string, v: string): string {
  const ref = parseInventoryId(id, v);
  if (!ref) throw new Error(`bad inventory id ${id}`);
  const k = ref.kind.toLowerCase();
  const plural = k.endsWith("y") ? `${k.slice(0, -1)}ies` : `${k}s`;
  const base = ref.group ? `/apis/${ref.group}/${ref.version}` : `/api/${ref.version}`;
  return `${base}${ref.namespace ? `/namespaces/${ref.namespace}` : ""}/${plural}/${ref.name}`;
}

/**
 * Whether an inventory id is one of the components gotk-components.yaml
 * holds besides its Namespace and CRDs (controllers, their Services and
 * RBAC): in flux-system, or cluster-scoped.
 */
export function isFluxComponentId(id: string): boolean {
  return /^(flux-system)?_[^_]+_[^_]*_(Deployment|Service|ServiceAccount|Role|RoleBinding|ClusterRole|ClusterRoleBinding)$/.test(
    id,
  );
}
