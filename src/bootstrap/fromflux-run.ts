/**
 * `shipmate bootstrap --from-flux`: a cluster and repository Flux
 * bootstrapped move to the agent without losing an object. In order, and
 * nothing written anywhere before every check passed:
 *
 * 1. the forge (the repository exists and the token may push), the cluster
 *    (reachable, installing allowed), Flux's root Kustomization present;
 * 2. the plan, from the branch tip (./fromflux.ts) and the cluster: printed,
 *    and with `--dry-run` that is all;
 * 3. Flux's controllers scaled to 0, so none of them applies the commit that
 *    removes them (on a failure further on they are scaled back);
 * 4. one commit: gotk-components.yaml out, flux-crds.yaml and the agent in;
 * 5. the agent installed, owned by Flux's root Kustomization, which it
 *    adopts with its inventory; then the wait for it to apply the commit.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listFluxControllers, refusal } from "../agent/fluxguard.ts";
import { findKustomize } from "../agent/render.ts";
import { ClusterError, ForgeError, UsageError } from "../errors.ts";
import { ForgePermissionError } from "../forge/errors.ts";
import { PROVIDERS } from "../forge/index.ts";
import { checkBranchName } from "../git/workspace.ts";
import type { Change } from "../kube/apply.ts";
import { apiError, KubeClient as Client, type KubeClient, loadKubeConfig } from "../kube/client.ts";
import { getKustomization, type KustomizationRow, requestReconcile, waitReadyAt } from "../kube/control.ts";
import { KUSTOMIZATION_API_VERSION, KubeList, KustomizationObject } from "../kube/schema.ts";
import { SHIPMATE_VERSION } from "../scaffold/scaffold.ts";
import type { BootstrapOptions } from "./bootstrap.ts";
import { commitClusterFolder, readBranch } from "./commit.ts";
import {
  type ClusterFacts,
  COMPONENTS_FILE,
  CRDS_FILE,
  FLUX_DIR,
  type FromFluxPlan,
  formatPlan,
  type LiveKustomization,
  planCluster,
  planFromFlux,
} from "./fromflux.ts";
import { installAgent, preflightCluster } from "./install.ts";
import { AGENT_NAMESPACE, agentFiles, checkClusterPath } from "./layout.ts";
import { repositoryHost } from "./repository.ts";

export interface FromFluxOptions extends Omit<BootstrapOptions, "path" | "personal" | "private"> {
  /** The folder given to flux bootstrap; found in the repository when absent. */
  path?: string;
  dryRun: boolean;
}

export interface FromFluxResult {
  repository: string;
  cloneUrl: string;
  clusterPath: string;
  plan: string[];
  dryRun: boolean;
  commit: string;
  revision: string;
  changed: string[];
  pushed: boolean;
  scaled: string[];
  applied: Change[];
  ready: KustomizationRow | undefined;
}

/** Cluster folders holding what flux bootstrap writes (`<path>/flux-system/gotk-components.yaml`), or a moved one. */
export function findFluxFolders(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string, depth: number) => {
    if (depth > 6) return;
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      if (!e.isDirectory() || e.name === ".git") continue;
      const sub = rel ? `${rel}/${e.name}` : e.name;
      if (
        e.name === FLUX_DIR &&
        (existsSync(join(dir, sub, COMPONENTS_FILE)) || existsSync(join(dir, sub, CRDS_FILE)))
      )
        out.push(rel || ".");
      else walk(sub, depth + 1);
    }
  };
  walk("", 0);
  return out.sort();
}

function reader(dir: string): (rel: string) => string | undefined {
  return (rel) => {
    const full = join(dir, rel);
    return existsSync(full) ? readFileSync(full, "utf8") : undefined;
  };
}

function liveOf(ks: KustomizationObject): LiveKustomization {
  return {
    namespace: ks.metadata.namespace ?? "",
    name: ks.metadata.name ?? "",
    inventory: (ks.status?.inventory?.entries ?? []).map((e) => ({ id: e.id, v: e.v })),
  };
}

async function readDeployment(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<ClusterFacts["controllers"][number] | undefined> {
  const res = await client.raw({
    method: "GET",
    path: `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments/${encodeURIComponent(name)}`,
  });
  if (res.code === 404) return undefined;
  if (res.code !== 200) throw apiError(`Deployment ${namespace}/${name}`, res.code, res.body);
  const d = res.body as { spec?: { replicas?: number }; status?: { readyReplicas?: number } };
  return { namespace, name, replicas: d.spec?.replicas, readyReplicas: d.status?.readyReplicas };
}

/** The cluster as the plan needs it; refuses a cluster Flux did not bootstrap from this folder. */
async function clusterFacts(client: KubeClient, plan: FromFluxPlan): Promise<ClusterFacts> {
  const { root } = plan;
  const ks = await getKustomization(client, root.namespace, root.name);
  if (!ks)
    throw new ClusterError(
      `Kustomization ${root.namespace}/${root.name} is not in the cluster: --from-flux moves a cluster Flux bootstrapped from ${plan.clusterPath} (nothing was changed)`,
    );
  const list = await client.call(
    { method: "GET", path: `/apis/${KUSTOMIZATION_API_VERSION}/kustomizations` },
    KubeList,
    "list Kustomizations",
  );
  const others = (list.items ?? [])
    .map((i) =>
      KustomizationObject.safeParse({ apiVersion: KUSTOMIZATION_API_VERSION, kind: "Kustomization", ...i }),
    )
    .filter((p) => p.success)
    .map((p) => liveOf(p.data))
    .filter((k) => !(k.namespace === root.namespace && k.name === root.name))
    .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  const controllers: ClusterFacts["controllers"] = [];
  for (const r of plan.leaving.filter((l) => l.kind === "Deployment")) {
    const d = await readDeployment(client, r.namespace, r.name);
    if (d) controllers.push(d);
  }
  // Flux controllers this repository does not declare would keep running beside the agent.
  const declared = new Set(controllers.map((c) => `${c.namespace}/${c.name}`));
  const elsewhere = refusal(
    (await listFluxControllers(client)).filter((d) => !declared.has(`${d.namespace}/${d.name}`)),
  );
  if (elsewhere)
    throw new ClusterError(
      `${elsewhere.split(";")[0]}, and ${plan.clusterPath}/${FLUX_DIR}/${COMPONENTS_FILE} does not declare them: scale them down first (nothing was changed)`,
    );
  return { root: liveOf(ks), others, controllers };
}

async function setReplicas(
  client: KubeClient,
  namespace: string,
  name: string,
  replicas: number,
): Promise<void> {
  const res = await client.raw({
    method: "PATCH",
    path: `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments/${encodeURIComponent(name)}`,
    query: { fieldManager: "shipmate-bootstrap" },
    body: { spec: { replicas } },
    contentType: "application/merge-patch+json",
  });
  if (res.code === 404) return;
  if (res.code < 200 || res.code > 299)
    throw apiError(`scale Deployment ${namespace}/${name} to ${replicas}`, res.code, res.body);
}

/** Scales Flux's controllers to 0 and waits until none has a ready replica; returns how to undo it. */
async function scaleDown(
  client: KubeClient,
  controllers: ClusterFacts["controllers"],
  timeoutMs: number,
): Promise<() => Promise<void>> {
  const touched = controllers.filter((d) => (d.replicas ?? 1) > 0);
  for (const d of touched) await setReplicas(client, d.namespace, d.name, 0);
  const undo = async () => {
    for (const d of touched) await setReplicas(client, d.namespace, d.name, d.replicas ?? 1);
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ready: string[] = [];
    for (const d of controllers) {
      const now = await readDeployment(client, d.namespace, d.name);
      if ((now?.readyReplicas ?? 0) > 0) ready.push(`${d.namespace}/${d.name}`);
    }
    if (!ready.length) return undo;
    if (Date.now() > deadline) {
      await undo();
      throw new ClusterError(
        `Flux's controllers did not stop within ${Math.round(timeoutMs / 1000)}s (still ready: ${ready.join(", ")}); they were scaled back, nothing else was changed`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

const FLUX_FINALIZER = "finalizers.fluxcd.io";

/**
 * Removes Flux's finalizer from every object of Flux's CRDs, as `flux
 * uninstall` does: with its controllers gone nobody would ever release it,
 * and an object the agent prunes would stay Terminating. (The agent
 * garbage-collects a pruned Kustomization's objects itself; Flux adds the
 * finalizer back if it ever returns.) Returns how many objects changed.
 */
async function releaseFluxFinalizers(client: KubeClient, crds: string[]): Promise<number> {
  let released = 0;
  for (const name of crds) {
    const res = await client.raw({
      method: "GET",
      path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${encodeURIComponent(name)}`,
    });
    if (res.code === 404) continue;
    if (res.code !== 200) throw apiError(`CRD ${name}`, res.code, res.body);
    const crd = res.body as {
      spec: {
        group: string;
        names: { plural: string };
        versions: { name: string; served: boolean; storage: boolean }[];
      };
    };
    const version = crd.spec.versions.find((v) => v.storage) ?? crd.spec.versions.find((v) => v.served);
    if (!version) continue;
    const base = `/apis/${crd.spec.group}/${version.name}`;
    const list = await client.call(
      { method: "GET", path: `${base}/${crd.spec.names.plural}` },
      KubeList,
      `list ${name}`,
    );
    for (const item of list.items ?? []) {
      const m = item.metadata as {
        name?: string;
        namespace?: string;
        resourceVersion?: string;
        finalizers?: string[];
      };
      if (!m.finalizers?.includes(FLUX_FINALIZER)) continue;
      const ns = m.namespace ? `/namespaces/${encodeURIComponent(m.namespace)}` : "";
      const patch = await client.raw({
        method: "PATCH",
        path: `${base}${ns}/${crd.spec.names.plural}/${encodeURIComponent(m.name ?? "")}`,
        contentType: "application/json-patch+json",
        body: [
          { op: "test", path: "/metadata/resourceVersion", value: m.resourceVersion },
          {
            op: "replace",
            path: "/metadata/finalizers",
            value: m.finalizers.filter((f) => f !== FLUX_FINALIZER),
          },
        ],
      });
      if (patch.code < 200 || patch.code > 299)
        throw apiError(
          `release Flux's finalizer on ${crd.spec.names.plural} ${m.namespace ?? ""}/${m.name}`,
          patch.code,
          patch.body,
        );
      released++;
    }
  }
  return released;
}

export async function bootstrapFromFlux(o: FromFluxOptions): Promise<FromFluxResult> {
  checkBranchName(o.branch);
  if (o.path !== undefined) checkClusterPath(o.path);
  findKustomize(o.env);
  const host = repositoryHost({
    kind: o.forge,
    ...(o.forgeUrl ? { url: o.forgeUrl } : {}),
    owner: o.owner,
    name: o.repository,
    token: o.token,
    tokenSource: o.tokenSource,
    ...(o.fetch ? { fetch: o.fetch } : {}),
  });
  const client = new Client(loadKubeConfig(o.kubeconfig), { retryForMs: 5_000, requestTimeoutMs: 30_000 });
  const say = o.progress;
  try {
    say(`► checking ${host.fullName}`);
    const repo = await host.get();
    if (!repo)
      throw new ForgeError(
        `${host.fullName} does not exist (or the token cannot see it): --from-flux moves the repository flux bootstrap made (nothing was changed)`,
        404,
      );
    if (!repo.canPush && !o.dryRun)
      throw new ForgePermissionError(
        `${host.fullName}: the token (${o.tokenSource}) cannot push to this repository; give it write access (nothing was changed)`,
        403,
      );
    say(`► checking the cluster ${client.server.host}`);
    const version = await preflightCluster(client);
    say(`✔ cluster reachable (Kubernetes ${version}), installation allowed`);

    const credentials = { username: PROVIDERS[o.forge].gitUser, password: o.token };
    const git = { cloneUrl: repo.cloneUrl, branch: o.branch, credentials, env: o.env };
    let clusterPath = "";
    const files = (env: string) =>
      agentFiles({ env, repoUrl: repo.cloneUrl, branch: o.branch, version: o.version ?? SHIPMATE_VERSION });
    const planAt = (dir: string): FromFluxPlan =>
      planFromFlux({ clusterPath, read: reader(dir), agentFiles: files(checkClusterPath(clusterPath).env) });
    const plan = await readBranch(git, (dir, tip) => {
      if (!tip)
        throw new UsageError(`${host.fullName} has no branch ${o.branch}: nothing for --from-flux to move`);
      if (o.path !== undefined) clusterPath = checkClusterPath(o.path).path;
      else {
        const found = findFluxFolders(dir);
        if (found.length !== 1)
          throw new UsageError(
            found.length
              ? `${found.length} folders hold Flux's components (${found.join(", ")}): choose one with --path`
              : `no <path>/${FLUX_DIR}/${COMPONENTS_FILE} in ${host.fullName} on ${o.branch}: is it a repository flux bootstrap made?`,
          );
        clusterPath = checkClusterPath(found[0] as string).path;
      }
      return planAt(dir);
    });
    const facts = await clusterFacts(client, plan);
    const lines = formatPlan(plan, planCluster(plan, facts));
    say(`${o.dryRun ? "plan (dry run, nothing is changed)" : "plan"} for ${host.fullName} ${o.branch}:`);
    for (const l of lines) say(l);
    const result: FromFluxResult = {
      repository: host.fullName,
      cloneUrl: repo.cloneUrl,
      clusterPath,
      plan: lines,
      dryRun: o.dryRun,
      commit: "",
      revision: "",
      changed: [],
      pushed: false,
      scaled: [],
      applied: [],
      ready: undefined,
    };
    if (o.dryRun) return result;

    say("► scaling Flux's controllers to 0");
    const undo = await scaleDown(client, facts.controllers, o.timeoutMs);
    result.scaled = facts.controllers
      .filter((d) => (d.replicas ?? 1) > 0)
      .map((d) => `${d.namespace}/${d.name}`);
    const released = await releaseFluxFinalizers(
      client,
      plan.kept.filter((r) => r.kind === "CustomResourceDefinition").map((r) => r.name),
    );
    if (released) say(`✔ released Flux's finalizer (${FLUX_FINALIZER}) on ${released} object(s)`);
    const scratch = mkdtempSync(join(tmpdir(), "shipmate-bootstrap-"));
    try {
      say(`► cloning ${repo.cloneUrl} (branch ${o.branch})`);
      const committed = await commitClusterFolder({
        ...git,
        clusterPath,
        agentFiles: new Map(),
        author: o.author,
        message: `shipmate bootstrap --from-flux: the shipmate agent ${o.version ?? SHIPMATE_VERSION} replaces Flux's controllers in ${clusterPath}`,
        plan: (dir) => {
          const p = planAt(dir);
          return { write: p.write, remove: p.remove };
        },
        inspect: async (dir, r) => {
          say(
            r.pushed
              ? `✔ pushed ${r.commit.slice(0, 12)} to ${o.branch}: ${r.changed.join(", ")}`
              : `✔ ${clusterPath} already moved at ${r.commit.slice(0, 12)}`,
          );
          say(`► installing the agent into namespace ${AGENT_NAMESPACE}`);
          result.applied = await installAgent({
            client,
            checkoutDir: dir,
            clusterPath,
            scratch,
            credentials,
            owner: { name: plan.root.name, namespace: plan.root.namespace },
          });
        },
      });
      Object.assign(result, {
        commit: committed.commit,
        changed: committed.changed,
        pushed: committed.pushed,
      });
    } catch (err) {
      // Flux is the cluster's keeper until the agent is in: give it back its controllers.
      await undo().catch(() => undefined);
      throw err;
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
    const changes = result.applied.filter((c) => c.action !== "unchanged" && c.action !== "skipped");
    say(
      changes.length
        ? `✔ agent installed: ${changes.map((c) => `${c.ref.kind}/${c.ref.name} ${c.action}`).join(", ")}`
        : "✔ agent installed (already up to date)",
    );
    result.revision = `${o.branch}@sha1:${result.commit}`;
    const { root } = plan;
    await requestReconcile(client, "GitRepository", root.source.namespace, root.source.name);
    await requestReconcile(client, "Kustomization", root.namespace, root.name);
    if (o.wait) {
      say(`◎ waiting for the agent to apply ${result.revision}`);
      result.ready = await waitReadyAt(
        client,
        root.namespace,
        root.name,
        result.revision,
        o.timeoutMs,
        (row) => {
          if (row?.lastAttemptedRevision)
            say(`  ${row.ready === "True" ? "✔" : "◎"} ${row.message.split("\n")[0]}`);
        },
        1000,
        AGENT_NAMESPACE,
      );
      say(`✔ the agent applied ${result.revision}: it now manages ${clusterPath} in Flux's place`);
    }
    return result;
  } finally {
    client.close();
  }
}
