/**
 * `shipmate bootstrap --from-flux` on a real Flux installation: a fleet
 * repository shaped exactly like `flux bootstrap` output (gotk-components.yaml
 * rendered from Flux's own Go modules, test/infra/flux.ts) on a real Gitea,
 * applied to a real kube-apiserver the way kustomize-controller applies it
 * (field manager `kustomize-controller`, ownership labels, finalizers,
 * `status.inventory`). No controller or kubelet runs: Flux's Deployments
 * exist but never run pods, and a test writes their readyReplicas when it
 * needs them "live". The agent then runs `--once` with the args bootstrap
 * put into its Deployment.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/client.ts";
import { type ApiJson, adminClient, getObject, ksStatus } from "../agent/helpers.ts";
import { runCli } from "../helpers/cli.ts";
import { waitFor } from "../helpers/wait.ts";
import {
  applyAsFlux,
  fluxBootstrapFiles,
  isFluxComponentId,
  parseDocs,
  pathOfInventoryId,
  setReadyReplicas,
} from "../infra/flux.ts";
import { type GiteaServer, startGitea } from "../infra/gitea.ts";
import { findBinary, type KubeCluster, startKube } from "../infra/kube.ts";

let gitea: GiteaServer;
let kube: KubeCluster;
let client: KubeClient;
let work: string;
let cloneUrl: string;
const dirs: string[] = [];
const CP = "clusters/staging";
const KS_API = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations";
const DEPLOY_API = "/apis/apps/v1/namespaces/flux-system/deployments";

function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "flux",
      GIT_AUTHOR_EMAIL: "flux@example.com",
      GIT_COMMITTER_NAME: "flux",
      GIT_COMMITTER_EMAIL: "flux@example.com",
    },
  }).trim();
}
function commit(files: Record<string, string>, message: string): string {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(work, path)), { recursive: true });
    writeFileSync(join(work, path), content);
  }
  git(work, "add", "-A");
  git(work, "commit", "-qm", message);
  git(work, "push", "-q", "origin", "HEAD:main");
  return git(work, "rev-parse", "HEAD");
}
const remoteHead = (): string => git(work, "ls-remote", "origin", "refs/heads/main").split("\t")[0] ?? "";

const APPS = (data: string) => `apiVersion: v1
kind: Namespace
metadata:
  name: podinfo
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: podinfo-config
  namespace: podinfo
data:
  greeting: ${data}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: podinfo
spec:
  replicas: 2
  selector:
    matchLabels: {app: podinfo}
  template:
    metadata:
      labels: {app: podinfo}
    spec:
      containers:
        - name: podinfo
          image: ghcr.io/stefanprodan/podinfo:6.7.0
`;
const APPS_KS = `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m0s
  path: ./apps/staging
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
`;

const args = (extra: string[]) => [
  "bootstrap",
  "--from-flux",
  "--forge",
  "gitea",
  "--forge-url",
  gitea.url,
  "--owner",
  gitea.admin.username,
  "--repository",
  "fleet",
  "--kubeconfig",
  kube.kubeconfig,
  ...extra,
];
const env = () => ({ GITEA_TOKEN: gitea.token, SHIPMATE_FORGE_TOKEN: "" });

interface Snapshot {
  uid: string;
  v: string;
}
/** Every object Flux's inventories list, by inventory id. */
const before = new Map<string, Snapshot>();
let fluxRevision = "";

async function agentOnce(): Promise<{ code: number; summary: ApiJson; stderr: string }> {
  const deployment = await getObject(
    client,
    "/apis/apps/v1/namespaces/shipmate-system/deployments/shipmate-agent",
  );
  const container = deployment?.spec.template.spec.containers[0];
  const workdir = mkdtempSync(join(tmpdir(), "shipmate-fromflux-agent-"));
  dirs.push(workdir);
  const r = await runCli(
    [
      ...container.args,
      "--once",
      "--json",
      `--kubeconfig=${kube.kubeconfig}`,
      `--workdir=${workdir}`,
      "--log-level=warn",
    ],
    // The pod reads the token from the Secret bootstrap created; the same token here.
    { env: { GIT_TOKEN: gitea.token } },
  );
  return { code: r.code, summary: r.stdout ? (JSON.parse(r.stdout) as ApiJson) : {}, stderr: r.stderr };
}

beforeAll(async () => {
  [gitea, kube] = await Promise.all([startGitea(), startKube({ name: "fromflux" })]);
  client = adminClient(kube);
  const repo = await gitea.createRepo("fleet");
  cloneUrl = `${gitea.url}/${repo.fullName}.git`;
  work = mkdtempSync(join(tmpdir(), "shipmate-fromflux-work-"));
  dirs.push(work);
  execFileSync("git", ["clone", "-q", repo.authedCloneUrl, work]);
  // What flux bootstrap pushes, then an app the way the Flux guides add one.
  const head = commit(
    {
      ...fluxBootstrapFiles(CP, `ssh://git@${new URL(gitea.url).host}/${repo.fullName}`),
      [`${CP}/apps.yaml`]: APPS_KS,
      "apps/staging/podinfo.yaml": APPS('"hello"'),
    },
    "Add Flux sync manifests",
  );
  fluxRevision = `main@sha1:${head}`;
  // kustomize-controller's part: the root renders clusters/staging (no kustomization.yaml there,
  // so Flux lists flux-system/ and apps.yaml), then apps renders apps/staging.
  const kustomize = findBinary("kustomize");
  const rootObjects = [
    ...parseDocs(execFileSync(kustomize, ["build", join(work, CP, "flux-system")], { encoding: "utf8" })),
    ...parseDocs(APPS_KS),
  ];
  const root = await applyAsFlux(
    client,
    { name: "flux-system", namespace: "flux-system" },
    rootObjects,
    fluxRevision,
  );
  const apps = await applyAsFlux(
    client,
    { name: "apps", namespace: "flux-system" },
    parseDocs(APPS('"hello"')),
    fluxRevision,
  );
  for (const e of [...root, ...apps]) {
    const obj = await getObject(client, pathOfInventoryId(e.id, e.v));
    if (!obj) throw new Error(`${e.id} was not applied`);
    before.set(e.id, { uid: obj.metadata.uid, v: e.v });
  }
  // A commit Flux had not applied yet when it was stopped: the agent applies it, over Flux's ownership.
  commit({ "apps/staging/podinfo.yaml": APPS('"hello from shipmate"') }, "podinfo: new greeting");
}, 240_000);

afterAll(async () => {
  client?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await Promise.all([gitea?.stop(), kube?.stop()]);
});

describe("the agent refuses to run beside live Flux controllers", () => {
  const agentArgs = () => [
    "agent",
    `--repo=${cloneUrl}`,
    `--path=${CP}`,
    "--name=flux-system",
    "--namespace=flux-system",
    "--once",
    `--kubeconfig=${kube.kubeconfig}`,
    "--token-env=GIT_TOKEN",
  ];

  it("Flux's Deployments scaled to 1, one with a ready replica: one line naming them, exit 1, nothing written", async () => {
    await setReadyReplicas(client, "flux-system", "kustomize-controller", 1);
    const rv = (await getObject(client, `${KS_API}/flux-system`))?.metadata.resourceVersion;
    const r = await runCli(agentArgs(), { env: { GIT_TOKEN: gitea.token } });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toEqual([
      "shipmate agent: Flux controllers are running in this cluster: Deployment flux-system/kustomize-controller (replicas 1, ready 1), Deployment flux-system/source-controller (replicas 1, ready 0); the agent does not run beside them (both would apply and prune the same objects). Move this cluster over with 'shipmate bootstrap --from-flux', or scale them down (kubectl -n flux-system scale deployment kustomize-controller source-controller --replicas=0) and wait until they have no ready replicas",
    ]);
    expect((await getObject(client, `${KS_API}/flux-system`))?.metadata.resourceVersion).toBe(rv);
    expect(await getObject(client, "/api/v1/namespaces/shipmate-system")).toBeUndefined();
  });

  it("a plain bootstrap says to use --from-flux, before anything is written", async () => {
    const r = await runCli(
      [
        "bootstrap",
        "--forge",
        "gitea",
        "--forge-url",
        gitea.url,
        "--owner",
        gitea.admin.username,
        "--repository",
        "fleet",
        "--personal",
        "--path",
        CP,
        "--kubeconfig",
        kube.kubeconfig,
      ],
      { env: env() },
    );
    expect([r.code, r.stderr.trim()]).toEqual([
      1,
      "shipmate bootstrap: Flux controllers are running in this cluster: Deployment flux-system/kustomize-controller (replicas 1, ready 1), Deployment flux-system/source-controller (replicas 1, ready 0): run bootstrap with --from-flux to move this cluster to the agent (nothing was changed)",
    ]);
  });
});

describe("bad input: one line, nothing changed", () => {
  const other = (repo: string, extra: string[] = []) =>
    args(["--dry-run", ...extra]).map((a) => (a === "fleet" ? repo : a));
  it("a repository that does not exist", async () => {
    const r = await runCli(other("no-such-fleet"), { env: env() });
    expect([r.code, r.stderr.trim()]).toEqual([
      1,
      `shipmate bootstrap: ${gitea.admin.username}/no-such-fleet does not exist (or the token cannot see it): --from-flux moves the repository flux bootstrap made (nothing was changed)`,
    ]);
  });
  it("a repository flux bootstrap did not make", async () => {
    await gitea.createRepo("plain");
    const r = await runCli(other("plain"), { env: env() });
    expect([r.code, r.stderr.trim()]).toEqual([
      2,
      `shipmate bootstrap: no <path>/flux-system/gotk-components.yaml in ${gitea.admin.username}/plain on main: is it a repository flux bootstrap made?`,
    ]);
    const withPath = await runCli(other("plain", ["--path", CP]), { env: env() });
    expect([withPath.code, withPath.stderr.trim()]).toEqual([
      2,
      `shipmate bootstrap: ${CP}/flux-system/gotk-sync.yaml not found: --from-flux needs a repository made by flux bootstrap (--path is the folder given to it)`,
    ]);
  });
});

describe("bootstrap --from-flux", () => {
  let tipBefore = "";
  it("--dry-run prints the plan and writes nothing, in git or in the cluster", async () => {
    tipBefore = remoteHead();
    const deployRv = (await getObject(client, `${DEPLOY_API}/kustomize-controller`))?.metadata
      .resourceVersion;
    const r = await runCli(args(["--dry-run"]), { env: env() });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toContain(`plan (dry run, nothing is changed) for ${gitea.admin.username}/fleet main:`);
    expect(out).toContain(`  remove:\n    ${CP}/flux-system/gotk-components.yaml\n`);
    for (const f of [
      "flux-system/flux-crds.yaml",
      "flux-system/kustomization.yaml",
      "shipmate-system/deployment.yaml",
    ])
      expect(out).toContain(`    ${CP}/${f}\n`);
    expect(out).toContain("    Deployment flux-system/kustomize-controller (replicas 1 → 0)\n");
    expect(out).toContain("    Deployment/flux-system/source-controller\n");
    expect(out).toContain("    CustomResourceDefinition/kustomizations.kustomize.toolkit.fluxcd.io\n");
    expect(out).toContain("    Kustomization flux-system/apps: 3 object(s) in its inventory kept\n");
    expect(remoteHead()).toBe(tipBefore);
    expect((await getObject(client, `${DEPLOY_API}/kustomize-controller`))?.metadata.resourceVersion).toBe(
      deployRv,
    );
    expect(await getObject(client, "/api/v1/namespaces/shipmate-system")).toBeUndefined();
  }, 60_000);

  it("scales Flux down (waiting for its pods to stop), pushes one commit, installs the agent", async () => {
    const run = runCli(args(["--no-wait", "--timeout", "60s"]), { env: env() });
    // The deployment controller's part: once scaled to 0, the pod stops and readyReplicas drops.
    await waitFor(
      async () => (await getObject(client, `${DEPLOY_API}/kustomize-controller`))?.spec.replicas === 0,
      {
        ms: 60_000,
        every: 100,
        what: "kustomize-controller to be scaled to 0",
      },
    );
    expect(remoteHead()).toBe(tipBefore); // nothing pushed while a Flux pod is still ready
    await setReadyReplicas(client, "flux-system", "kustomize-controller", 0);
    const r = await run;
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("► scaling Flux's controllers to 0");
    git(work, "pull", "-q", "origin", "main");
    const files = git(work, "ls-files", CP).split("\n").sort();
    expect(files).toEqual([
      `${CP}/apps.yaml`,
      `${CP}/flux-system/flux-crds.yaml`,
      `${CP}/flux-system/gotk-sync.yaml`,
      `${CP}/flux-system/kustomization.yaml`,
      `${CP}/shipmate-system/deployment.yaml`,
      `${CP}/shipmate-system/kustomization.yaml`,
      `${CP}/shipmate-system/namespace.yaml`,
      `${CP}/shipmate-system/rbac.yaml`,
    ]);
    expect(
      git(work, "grep", "-c", "kind: CustomResourceDefinition", `${CP}/flux-system/flux-crds.yaml`),
    ).not.toBe("0");
    // Flux's finalizer released (nobody would once Flux is gone), the objects themselves untouched.
    for (const path of [`${KS_API}/flux-system`, `${KS_API}/apps`]) {
      const ks = await getObject(client, path);
      expect(ks?.metadata.finalizers ?? []).not.toContain("finalizers.fluxcd.io");
    }
    expect(r.stdout).toContain("✔ released Flux's finalizer (finalizers.fluxcd.io) on 3 object(s)");
    for (const name of ["kustomize-controller", "source-controller"])
      expect((await getObject(client, `${DEPLOY_API}/${name}`))?.spec.replicas).toBe(0);
    const agent = await getObject(
      client,
      "/apis/apps/v1/namespaces/shipmate-system/deployments/shipmate-agent",
    );
    expect(agent?.spec.template.spec.containers[0].args).toEqual(
      expect.arrayContaining([
        "--name=flux-system",
        "--namespace=flux-system",
        `--path=${CP}`,
        "--token-env=GIT_TOKEN",
      ]),
    );
  }, 120_000);

  it("the agent's first pass adopts Flux's objects: nothing deleted or re-created, ownership taken over, Flux's controllers pruned", async () => {
    const { code, summary, stderr } = await agentOnce();
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(summary.reconciled.map((k: ApiJson) => [k.namespace, k.name, k.ready])).toEqual([
      ["flux-system", "flux-system", true],
      ["flux-system", "apps", true],
    ]);
    const leaving = [...before.keys()].filter(isFluxComponentId);
    expect(leaving).toEqual(
      expect.arrayContaining([
        "flux-system_kustomize-controller_apps_Deployment",
        "flux-system_source-controller_apps_Deployment",
        "flux-system_source-controller__Service",
        "_kustomize-manager-role_rbac.authorization.k8s.io_ClusterRole",
      ]),
    );
    for (const [id, snap] of before) {
      const obj = await getObject(client, pathOfInventoryId(id, snap.v));
      if (isFluxComponentId(id)) {
        expect(obj, `${id} pruned`).toBeUndefined();
        continue;
      }
      expect(obj, `${id} still there`).toBeDefined();
      expect(obj?.metadata.uid, `${id} not re-created`).toBe(snap.uid);
      const managers = (obj?.metadata.managedFields ?? [])
        .filter((m: ApiJson) => !m.subresource)
        .map((m: ApiJson) => `${m.manager}/${m.operation}`);
      expect(managers, id).not.toContain("kustomize-controller/Apply");
      expect(managers, id).toContain("shipmate/Apply");
    }
    // The commit Flux never applied is applied, over kustomize-controller's ownership.
    const cm = await getObject(client, "/api/v1/namespaces/podinfo/configmaps/podinfo-config");
    expect(cm?.data).toEqual({ greeting: "hello from shipmate" });
    // Inventories kept and carried on: apps lists the same objects, the root adds the agent and drops Flux.
    const apps = await ksStatus(client, "apps", "flux-system");
    expect(apps.inventory.map((e) => e.id).sort()).toEqual([
      "_podinfo__Namespace",
      "podinfo_podinfo-config__ConfigMap",
      "podinfo_podinfo_apps_Deployment",
    ]);
    const root = await ksStatus(client, "flux-system", "flux-system");
    const ids = root.inventory.map((e) => e.id);
    expect(ids).toEqual(
      expect.arrayContaining([
        "_kustomizations.kustomize.toolkit.fluxcd.io_apiextensions.k8s.io_CustomResourceDefinition",
        "_flux-system__Namespace",
        "flux-system_apps_kustomize.toolkit.fluxcd.io_Kustomization",
        "flux-system_flux-system_source.toolkit.fluxcd.io_GitRepository",
        "shipmate-system_shipmate-agent_apps_Deployment",
      ]),
    );
    for (const id of leaving) expect(ids).not.toContain(id);
    expect(root.ks?.status.lastAppliedRevision).toBe(`main@sha1:${git(work, "rev-parse", "HEAD")}`);
  }, 120_000);

  it("a second pass writes nothing", async () => {
    const { code, summary } = await agentOnce();
    expect(code).toBe(0);
    expect(summary.writes).toBe(0);
  }, 60_000);

  it("running --from-flux again changes nothing in git", async () => {
    const tip = remoteHead();
    const r = await runCli(args(["--no-wait"]), { env: env() });
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(r.stdout).toContain(`✔ ${CP} already moved at ${tip.slice(0, 12)}`);
    expect(remoteHead()).toBe(tip);
    expect(readFileSync(join(work, CP, "flux-system", "gotk-sync.yaml"), "utf8")).toContain(
      "name: flux-system",
    );
  }, 60_000);
});
