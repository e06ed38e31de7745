/**
 * `shipmate bootstrap`: the fleet repository on its forge (created when
 * missing), the cluster folder written and pushed, the agent installed into
 * the cluster, and a wait until the agent has applied its own manifests
 * from git — from then on the agent manages itself. Everything that can be
 * checked is checked before anything is written anywhere: flags, the
 * token's right to push, the cluster being reachable and the kubeconfig's
 * user being allowed to install. Running it again changes nothing that is
 * already right, and upgrades the agent when shipmate is newer.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listFluxControllers, refusal } from "../agent/fluxguard.ts";
import { findKustomize } from "../agent/render.ts";
import { ClusterError, UsageError } from "../errors.ts";
import { ForgePermissionError } from "../forge/errors.ts";
import { PROVIDERS } from "../forge/index.ts";
import type { ForgeKind } from "../forge/types.ts";
import { checkBranchName, type Identity } from "../git/workspace.ts";
import type { Change } from "../kube/apply.ts";
import { KubeClient, loadKubeConfig } from "../kube/client.ts";
import { type KustomizationRow, requestReconcile, waitReadyAt } from "../kube/control.ts";
import { SHIPMATE_VERSION } from "../scaffold/scaffold.ts";
import { commitClusterFolder } from "./commit.ts";
import { installAgent, preflightCluster } from "./install.ts";
import { AGENT_NAMESPACE, agentFiles, checkClusterPath, ROOT_NAME } from "./layout.ts";
import { repositoryHost } from "./repository.ts";

export interface BootstrapOptions {
  forge: ForgeKind;
  forgeUrl?: string;
  owner: string;
  repository: string;
  branch: string;
  /** `clusters/<env>` */
  path: string;
  personal: boolean;
  private: boolean;
  token: string;
  /** Where the token came from, for messages (`$GITEA_TOKEN`). */
  tokenSource: string;
  kubeconfig?: string;
  author: Identity;
  /** How long to wait for the agent to apply the pushed revision. */
  timeoutMs: number;
  wait: boolean;
  env: NodeJS.ProcessEnv;
  /** shipmate version the agent image is pinned to (default: this shipmate's). */
  version?: string;
  /** One line per step, for a person. */
  progress(line: string): void;
  /** Forge HTTP client (tests). */
  fetch?: typeof fetch;
}

export interface BootstrapResult {
  repository: string;
  cloneUrl: string;
  created: boolean;
  commit: string;
  revision: string;
  /** Repository-relative files written by this run (empty: already up to date). */
  changed: string[];
  pushed: boolean;
  applied: Change[];
  /** The root Kustomization once Ready at `revision` (when waited for). */
  ready: KustomizationRow | undefined;
}

export async function bootstrap(o: BootstrapOptions): Promise<BootstrapResult> {
  const cluster = checkClusterPath(o.path);
  checkBranchName(o.branch);
  // kustomize renders the agent folder before it is applied; find it before anything is written.
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
  const kc = loadKubeConfig(o.kubeconfig);
  // Fail fast on an unreachable cluster: a person is waiting, and nothing has been written yet.
  const client = new KubeClient(kc, { retryForMs: 5_000, requestTimeoutMs: 30_000 });
  const say = o.progress;
  try {
    const label = `${PROVIDERS[o.forge].label} ${host.fullName}`;
    say(`► checking ${label}`);
    let repo = await host.get();
    if (repo && !repo.canPush)
      throw new ForgePermissionError(
        `${label}: the token (${o.tokenSource}) cannot push to this repository; give it write access (nothing was changed)`,
        403,
      );
    if (!repo && o.personal) {
      const me = await host.whoami();
      if (me.toLowerCase() !== o.owner.toLowerCase())
        throw new UsageError(`--personal: the token belongs to ${me}, not ${o.owner}`);
    }
    say(`► checking the cluster ${client.server.host}`);
    const version = await preflightCluster(client);
    // The agent would refuse to start beside them; say so before anything is written.
    const flux = refusal(await listFluxControllers(client));
    if (flux)
      throw new ClusterError(
        `${flux.split(";")[0]}: run bootstrap with --from-flux to move this cluster to the agent (nothing was changed)`,
      );
    say(`✔ cluster reachable (Kubernetes ${version}), installation allowed`);

    let created = false;
    if (repo) say(`✔ repository ${host.fullName} exists (${repo.private ? "private" : "public"})`);
    else {
      // Without --personal the owner is an organisation, unless it is the token's own user.
      const personal = o.personal || (await host.whoami()).toLowerCase() === o.owner.toLowerCase();
      repo = await host.create({
        personal,
        private: o.private,
        branch: o.branch,
        description: "Fleet repository, kept in sync by the shipmate agent",
      });
      created = true;
      say(`✔ repository ${host.fullName} created (${o.private ? "private" : "public"})`);
    }

    const credentials = { username: PROVIDERS[o.forge].gitUser, password: o.token };
    const files = agentFiles({
      env: cluster.env,
      repoUrl: repo.cloneUrl,
      branch: o.branch,
      version: o.version ?? SHIPMATE_VERSION,
    });
    const scratch = mkdtempSync(join(tmpdir(), "shipmate-bootstrap-"));
    let applied: Change[] = [];
    say(`► cloning ${repo.cloneUrl} (branch ${o.branch})`);
    let result: Awaited<ReturnType<typeof commitClusterFolder>>;
    try {
      result = await commitClusterFolder({
        cloneUrl: repo.cloneUrl,
        branch: o.branch,
        credentials,
        env: o.env,
        clusterPath: cluster.path,
        agentFiles: files,
        author: o.author,
        message: `shipmate bootstrap: agent ${o.version ?? SHIPMATE_VERSION} for ${cluster.path}`,
        inspect: async (dir, r) => {
          say(
            r.pushed
              ? `✔ pushed ${r.commit.slice(0, 12)} to ${o.branch}: ${r.changed.join(", ") || "new branch"}`
              : `✔ ${cluster.path} already up to date at ${r.commit.slice(0, 12)}`,
          );
          say(`► installing the agent into namespace ${AGENT_NAMESPACE}`);
          applied = await installAgent({
            client,
            checkoutDir: dir,
            clusterPath: cluster.path,
            scratch,
            credentials,
          });
        },
      });
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
    const changes = applied.filter((c) => c.action !== "unchanged" && c.action !== "skipped");
    say(
      changes.length
        ? `✔ agent installed: ${changes.map((c) => `${c.ref.kind}/${c.ref.name} ${c.action}`).join(", ")}`
        : "✔ agent installed (already up to date)",
    );
    const revision = `${o.branch}@sha1:${result.commit}`;
    // A running agent fetches at its interval; ask for the new revision now.
    await requestReconcile(client, "GitRepository", AGENT_NAMESPACE, ROOT_NAME);
    await requestReconcile(client, "Kustomization", AGENT_NAMESPACE, ROOT_NAME);
    let ready: KustomizationRow | undefined;
    if (o.wait) {
      say(`◎ waiting for the agent to apply ${revision}`);
      ready = await waitReadyAt(client, AGENT_NAMESPACE, ROOT_NAME, revision, o.timeoutMs, (row) => {
        if (row?.lastAttemptedRevision)
          say(`  ${row.ready === "True" ? "✔" : "◎"} ${row.message.split("\n")[0]}`);
      });
      say(`✔ the agent applied ${revision}: it now manages itself from ${cluster.path}`);
    }
    return {
      repository: host.fullName,
      cloneUrl: repo.cloneUrl,
      created,
      commit: result.commit,
      revision,
      changed: result.changed,
      pushed: result.pushed,
      applied,
      ready,
    };
  } finally {
    client.close();
  }
}
