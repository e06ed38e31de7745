/**
 * `shipmate bootstrap` against a real Gitea and a real kube-apiserver on
 * 127.0.0.1. No kubelet runs, so the installed Deployment is run by the
 * kubelet stand-in (test/e2e/kubelet.ts) with its own args, Secret and
 * ServiceAccount token: bootstrap's wait sees exactly what it would see with
 * a real pod. The bad-input cases run first and prove nothing was created
 * anywhere (no repository on the forge, no namespace or CRD in the cluster).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootstrap } from "../../src/bootstrap/bootstrap.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { adminClient, getObject, ksStatus } from "../agent/helpers.ts";
import { type PodProcess, runDeployment } from "../e2e/kubelet.ts";
import { runCli } from "../helpers/cli.ts";
import { waitFor } from "../helpers/wait.ts";
import { type GiteaServer, startGitea } from "../infra/gitea.ts";
import { freePort, type KubeCluster, startKube } from "../infra/kube.ts";

let gitea: GiteaServer;
let kube: KubeCluster;
let client: KubeClient;
const pods: PodProcess[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  [gitea, kube] = await Promise.all([startGitea(), startKube({ name: "bootstrap" })]);
  client = adminClient(kube);
}, 180_000);
afterAll(async () => {
  for (const p of pods) await p.stop();
  client?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await Promise.all([gitea?.stop(), kube?.stop()]);
});

const owner = () => gitea.admin.username;
const args = (repo: string, extra: string[] = []) => [
  "bootstrap",
  "--forge",
  "gitea",
  "--forge-url",
  gitea.url,
  "--owner",
  owner(),
  "--repository",
  repo,
  "--personal",
  "--path",
  "clusters/staging",
  "--kubeconfig",
  kube.kubeconfig,
  ...extra,
];
const env = () => ({ GITEA_TOKEN: gitea.token, SHIPMATE_FORGE_TOKEN: "" });

async function repoExists(name: string): Promise<boolean> {
  const res = await fetch(`${gitea.url}/api/v1/repos/${owner()}/${name}`, {
    headers: { authorization: `token ${gitea.token}` },
  });
  return res.status === 200;
}
/** A reconcile request makes the agent fetch at once, so its failure shows in status too. */
async function shipmateReconcileRequest(): Promise<void> {
  await client.raw({
    method: "PATCH",
    path: "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/shipmate-system/kustomizations/shipmate-system",
    body: { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "gone" } } },
    contentType: "application/merge-patch+json",
  });
  await waitFor(async () => (await ksStatus(client, "shipmate-system")).ready?.reason === "ArtifactFailed", {
    ms: 30_000,
    every: 200,
    what: "the root to report the fetch failure",
  });
}

async function clusterUntouched(): Promise<void> {
  expect(await getObject(client, "/api/v1/namespaces/shipmate-system")).toBeUndefined();
  expect(
    await getObject(
      client,
      "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/kustomizations.kustomize.toolkit.fluxcd.io",
    ),
  ).toBeUndefined();
}
function clone(repo: string): string {
  const dir = mkdtempSync(join(tmpdir(), "shipmate-bootstrap-clone-"));
  dirs.push(dir);
  execFileSync("git", [
    "clone",
    "-q",
    `http://${owner()}:${gitea.token}@${new URL(gitea.url).host}/${owner()}/${repo}.git`,
    dir,
  ]);
  return dir;
}

describe("bad input: one line, nothing created anywhere", () => {
  it("a repository the token cannot write is refused before the cluster is touched", async () => {
    await gitea.createRepo("someone-elses-fleet");
    const reader = await gitea.createUser("reader", "write:repository,read:user");
    const r = await runCli(args("someone-elses-fleet"), { env: { GITEA_TOKEN: reader.token } });
    expect([r.code, r.stderr.trim()]).toEqual([
      1,
      `shipmate bootstrap: Gitea ${owner()}/someone-elses-fleet: the token ($GITEA_TOKEN) cannot push to this repository; give it write access (nothing was changed)`,
    ]);
    expect(r.stderr).not.toContain(reader.token);
    await clusterUntouched();
  });

  it("an unreachable cluster: one line, and no repository is created", async () => {
    const dead = join(mkdtempSync(join(tmpdir(), "shipmate-kc-")), "kubeconfig");
    dirs.push(join(dead, ".."));
    writeFileSync(
      dead,
      readFileSync(kube.kubeconfig, "utf8").replace(
        /server: https:\/\/127\.0\.0\.1:\d+/,
        `server: https://127.0.0.1:${await freePort()}`,
      ),
    );
    const r = await runCli(args("never-made", ["--kubeconfig", dead]), { env: env() });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(
      /^shipmate bootstrap: GET \/version: API server 127\.0\.0\.1:\d+ unreachable \(ECONNREFUSED\)/,
    );
    expect(await repoExists("never-made")).toBe(false);
  });

  it("a kubeconfig whose user may not install the agent: refused before anything is written", async () => {
    const r = await runCli(args("never-made", ["--kubeconfig", kube.kubeconfigFor(kube.userToken, "dev")]), {
      env: env(),
    });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(
      /^shipmate bootstrap: the kubeconfig's user may not create namespaces, create customresourcedefinitions\.apiextensions\.k8s\.io, .* \(installing the agent needs cluster-admin\); nothing was changed$/,
    );
    expect(await repoExists("never-made")).toBe(false);
    await clusterUntouched();
  });

  it.each([
    ["../outside", /--path "\.\.\/outside" escapes the repository/],
    ["clusters/../../etc", /escapes the repository/],
    ["/abs/clusters/x", /must be relative to the repository root/],
    ["apps/staging", /must be clusters\/<env>/],
    ["clusters/Bad_Name", /not a DNS-1123 label/],
  ])("--path %s is a usage error (exit 2)", async (path, message) => {
    const argv = args("never-made");
    argv[argv.indexOf("clusters/staging")] = path;
    const r = await runCli(argv, { env: env() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(await repoExists("never-made")).toBe(false);
  });

  it("no token: says which variables it looked at (exit 2)", async () => {
    const r = await runCli(args("never-made"), {
      env: { GITEA_TOKEN: "", FORGEJO_TOKEN: "", SHIPMATE_FORGE_TOKEN: "" },
    });
    expect([r.code, r.stderr.trim()]).toEqual([
      2,
      "shipmate bootstrap: no gitea token: set $SHIPMATE_FORGE_TOKEN or $GITEA_TOKEN or $FORGEJO_TOKEN",
    ]);
  });

  it("--personal with another user's name is refused before anything is written", async () => {
    const argv = args("never-made");
    argv[argv.indexOf(owner())] = "somebody-else";
    const r = await runCli(argv, { env: env() });
    expect([r.code, r.stderr.trim()]).toEqual([
      2,
      `shipmate bootstrap: --personal: the token belongs to ${owner()}, not somebody-else`,
    ]);
    await clusterUntouched();
  });
});

describe("bootstrap into an empty cluster", () => {
  let first: { commit: string; revision: string };

  it("creates the repository, pushes the cluster folder, installs the agent and waits until it synced itself", async () => {
    // Plays the Deployment's pod once bootstrap has created it.
    const pod = runDeployment(kube, client, {
      namespace: "shipmate-system",
      name: "shipmate-agent",
      extra: ["--interval=20s", "--poll-interval=300ms"],
    });
    const r = await runCli(args("fleet", ["--timeout", "90s"]), { env: env() });
    pods.push(await pod);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const head = execFileSync("git", ["rev-parse", "HEAD"], { cwd: clone("fleet"), encoding: "utf8" }).trim();
    first = { commit: head, revision: `main@sha1:${head}` };
    expect(r.stdout).toContain(`✔ repository ${owner()}/fleet created (private)`);
    expect(r.stdout).toContain(`✔ the agent applied ${first.revision}`);

    // The repository: the agent's own manifests, no credential anywhere in git.
    const dir = clone("fleet");
    const files = execFileSync("git", ["ls-files", "clusters"], { cwd: dir, encoding: "utf8" })
      .trim()
      .split("\n");
    expect(files.sort()).toEqual(
      ["crds", "deployment", "kustomization", "namespace", "rbac", "sync"].map(
        (f) => `clusters/staging/shipmate-system/${f}.yaml`,
      ),
    );
    // git grep exits 1 when nothing matches.
    expect(spawnSync("git", ["grep", "-q", gitea.token], { cwd: dir }).status).toBe(1);
  }, 180_000);

  it("leaves the cluster as the agent keeps it: Ready at the pushed revision, Secret, self-owned objects", async () => {
    const root = await ksStatus(client, "shipmate-system");
    expect(root.ready).toMatchObject({ status: "True", reason: "ReconciliationSucceeded" });
    expect(root.ks?.status.lastAppliedRevision).toBe(first.revision);
    expect(root.inventory.map((e) => e.id)).toEqual(
      expect.arrayContaining([
        "shipmate-system_shipmate-agent_apps_Deployment",
        "_kustomizations.kustomize.toolkit.fluxcd.io_apiextensions.k8s.io_CustomResourceDefinition",
        "_shipmate-agent-cluster-admin_rbac.authorization.k8s.io_ClusterRoleBinding",
        "shipmate-system_shipmate-system_source.toolkit.fluxcd.io_GitRepository",
      ]),
    );
    const source = await getObject(
      client,
      "/apis/source.toolkit.fluxcd.io/v1/namespaces/shipmate-system/gitrepositories/shipmate-system",
    );
    expect(source?.spec.secretRef).toEqual({ name: "shipmate-git" });
    expect(source?.status.artifact.revision).toBe(first.revision);
    const secret = await getObject(client, "/api/v1/namespaces/shipmate-system/secrets/shipmate-git");
    expect(Buffer.from(secret?.data.password, "base64").toString()).toBe(gitea.token);
    const deployment = await getObject(
      client,
      "/apis/apps/v1/namespaces/shipmate-system/deployments/shipmate-agent",
    );
    const container = deployment?.spec.template.spec.containers[0];
    expect(container.args).toEqual(
      expect.arrayContaining([
        `--repo=${gitea.url}/${owner()}/fleet.git`,
        "--path=clusters/staging",
        "--token-env=GIT_TOKEN",
      ]),
    );
    // Everything the agent owns is owned by its field manager alone: it took bootstrap's objects over without a conflict.
    const managers = deployment?.metadata.managedFields.map((m: { manager: string }) => m.manager);
    expect(managers).toEqual(["shipmate"]);
  });

  it("running it again changes nothing and returns at once", async () => {
    const started = Date.now();
    const r = await runCli(args("fleet", ["--timeout", "60s"]), { env: env() });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`✔ repository ${owner()}/fleet exists (private)`);
    expect(r.stdout).toContain(`✔ clusters/staging already up to date at ${first.commit.slice(0, 12)}`);
    expect(r.stdout).toContain("✔ agent installed (already up to date)");
    expect(r.stdout).toContain(`✔ the agent applied ${first.revision}`);
    expect(Date.now() - started).toBeLessThan(30_000);
    const json = await runCli(args("fleet", ["--json"]), { env: env() });
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      repository: `${owner()}/fleet`,
      created: false,
      pushed: false,
      changed: [],
      commit: first.commit,
      revision: first.revision,
      ready: { name: "shipmate-system", ready: "True", lastAppliedRevision: first.revision },
    });
    expect(json.stderr).toContain("✔ agent installed (already up to date)");
  }, 90_000);

  it("a newer shipmate upgrades the agent through git, and the running agent applies it", async () => {
    const lines: string[] = [];
    const result = await bootstrap({
      forge: "gitea",
      forgeUrl: gitea.url,
      owner: owner(),
      repository: "fleet",
      branch: "main",
      path: "clusters/staging",
      personal: true,
      private: true,
      token: gitea.token,
      tokenSource: "$GITEA_TOKEN",
      kubeconfig: kube.kubeconfig,
      author: { name: "ops", email: "ops@example.test" },
      timeoutMs: 90_000,
      wait: true,
      env: process.env,
      version: "9.9.9",
      progress: (l) => lines.push(l),
    });
    expect(result.changed).toEqual(["clusters/staging/shipmate-system/deployment.yaml"]);
    expect(result.ready?.lastAppliedRevision).toBe(result.revision);
    const deployment = await getObject(
      client,
      "/apis/apps/v1/namespaces/shipmate-system/deployments/shipmate-agent",
    );
    expect(deployment?.spec.template.spec.containers[0].image).toBe("ghcr.io/shipmate-dev/shipmate:9.9.9");
  }, 120_000);

  it("with the forge gone, the agent says so in its logs and status, never with the token", async () => {
    await gitea.stop();
    await shipmateReconcileRequest();
    const pod = pods[0];
    const log = readFileSync(pod?.logFile ?? "", "utf8");
    expect(log).toMatch(/"repo":"http:\/\/\*\*\*@127\.0\.0\.1:\d+\/shipmate-admin\/fleet\.git"/);
    expect(log).not.toContain(gitea.token);
    const root = await ksStatus(client, "shipmate-system");
    expect(root.ready).toMatchObject({ status: "False", reason: "ArtifactFailed" });
    expect(JSON.stringify(root.ks)).not.toContain(gitea.token);
  }, 60_000);
});
