/**
 * `shipmate init --layout repo-per-team`, synced by the real agent into a
 * real kube-apiserver with RBAC on: the platform repository onboards each
 * team (namespace, `reconciler` ServiceAccount, `admin` in that namespace
 * only) and each team's Kustomization runs as that account, so a team's
 * repository cannot write outside its namespace. `shipmate add team`
 * onboards one more the same way.
 */
import { execFile } from "node:child_process";
import { appendFile, readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { parseAllDocuments } from "yaml";
import { Agent, type PassSummary } from "../../src/agent/agent.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { add, init } from "../../src/scaffold/scaffold.ts";
import {
  adminClient,
  aggregateClusterRoles,
  getObject,
  rollOutWhenCreated,
  silent,
} from "../agent/helpers.ts";
import { type KubeCluster, startKube } from "../infra/kube.ts";
import { tempDirs } from "./helpers.ts";

vi.setConfig({ testTimeout: 240_000 });

const tmp = tempDirs();
const run = promisify(execFile);
let kube: KubeCluster;
let client: KubeClient;
const agents: Agent[] = [];

beforeAll(async () => {
  kube = await startKube({ name: "teams" });
  client = adminClient(kube);
  await aggregateClusterRoles(client);
}, 120_000);
afterAll(async () => {
  for (const a of agents) a.close();
  client?.close();
  await kube?.stop();
});

const git = (cwd: string, ...args: string[]) =>
  run("git", args, {
    cwd,
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@example.com",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@example.com",
    },
  });

/** The agent as the scaffolded Deployment runs it: its flags are read from the rendered manifest. */
async function agentPass(out: string, waitFor: string[]): Promise<PassSummary> {
  const manifest = await readFile(
    join(out, "fleet/clusters/staging/shipmate-system/deployment.yaml"),
    "utf8",
  );
  const args: string[] = parseAllDocuments(manifest)[0]?.toJS().spec.template.spec.containers[0].args;
  const agent = new Agent(
    kube.kubeConfig(),
    {
      repo: `file://${join(out, "fleet")}`,
      branch: "main",
      path: "clusters/staging",
      intervalMs: 60_000,
      name: "shipmate-system",
      namespace: "shipmate-system",
      workdir: await tmp(),
      pollMs: 200,
      healthPollMs: 200,
      noCrossNamespaceRefs: args.includes("--no-cross-namespace-refs"),
      noRemoteBases: args.includes("--no-remote-bases"),
    },
    silent,
  );
  agents.push(agent);
  const running = agent.once();
  // No controller-manager runs: play its part for each team's app.
  await Promise.all(waitFor.map((p) => rollOutWhenCreated(client, p)));
  return await running;
}

const byKey = (s: PassSummary) =>
  Object.fromEntries(s.reconciled.map((k) => [`${k.namespace}/${k.name}`, k]));
const deployment = (ns: string, name: string) => `/apis/apps/v1/namespaces/${ns}/deployments/${name}`;

describe("repo-per-team: each team is reconciled as its own ServiceAccount", () => {
  it("teams sync their apps into their namespaces; add team onboards another; a team writing outside its namespace fails alone", async () => {
    const out = await tmp();
    await init({
      layout: "repo-per-team",
      out,
      teams: ["alpha", "beta"],
      apps: ["web@alpha", "api@beta"],
      gitUrl: `file://${join(out, "fleet")}`,
    });
    const sync = await readFile(join(out, "fleet/teams/staging/alpha.yaml"), "utf8");
    expect(sync).toContain("serviceAccountName: reconciler");
    for (const args of [
      ["apply", "--server-side", "-f", join(out, "fleet/clusters/staging/shipmate-system/crds.yaml")],
      ["apply", "--server-side", "-k", join(out, "fleet/clusters/staging/shipmate-system")],
    ])
      await run("kubectl", ["--kubeconfig", kube.kubeconfig, ...args]);

    const first = byKey(await agentPass(out, [deployment("alpha", "web"), deployment("beta", "api")]));
    for (const k of ["shipmate-system/teams", "alpha/apps", "beta/apps"])
      expect([k, first[k]?.ready, first[k]?.message]).toEqual([k, true, first[k]?.message]);
    expect(await getObject(client, "/api/v1/namespaces/alpha/serviceaccounts/reconciler")).toBeDefined();

    // Onboarding one more team: the platform change is committed as the README says, and the team syncs.
    await add("team", "gamma", { repo: join(out, "fleet") });
    await add("app", "worker", { repo: join(out, "fleet"), team: "gamma" });
    const tenantDocs = parseAllDocuments(
      await readFile(join(out, "fleet/teams/base/gamma/tenant.yaml"), "utf8"),
    ).map((d) => d.toJS());
    expect(tenantDocs.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual([
      "Namespace/gamma",
      "ServiceAccount/reconciler",
      "RoleBinding/team-admin",
    ]);
    for (const dir of ["fleet", "fleet-gamma"]) {
      await git(join(out, dir), "add", "-A");
      await git(join(out, dir), "commit", "-qm", "onboard gamma");
    }
    const second = byKey(await agentPass(out, [deployment("gamma", "worker")]));
    expect(second["gamma/apps"]).toMatchObject({ ready: true });
    expect(await getObject(client, deployment("gamma", "worker"))).toBeDefined();

    // Team alpha's repository reaches for the cluster: only alpha fails, with nothing of it written.
    const alphaRepo = join(out, "fleet-alpha");
    await appendFile(join(alphaRepo, "apps/staging/kustomization.yaml"), "  - grab.yaml\n");
    await appendFile(
      join(alphaRepo, "apps/staging/grab.yaml"),
      "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: alpha-grab\nrules: []\n",
    );
    await git(alphaRepo, "add", "-A");
    await git(alphaRepo, "commit", "-qm", "grab");
    const third = byKey(await agentPass(out, []));
    expect(third["alpha/apps"]).toMatchObject({ ready: false, reason: "ReconciliationFailed" });
    expect(third["alpha/apps"]?.message).toContain(
      'ClusterRole/alpha-grab: clusterroles.rbac.authorization.k8s.io is forbidden: User "system:serviceaccount:alpha:reconciler"',
    );
    expect(third["beta/apps"]).toMatchObject({ ready: true });
    expect(
      await getObject(client, "/apis/rbac.authorization.k8s.io/v1/clusterroles/alpha-grab"),
    ).toBeUndefined();
  });
});
