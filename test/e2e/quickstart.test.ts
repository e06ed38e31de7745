/**
 * The Flux quick start, done with shipmate on 127.0.0.1, end to end: a real
 * Gitea holds the fleet repository and podinfo's repository, a real
 * kube-apiserver is the cluster, a real registry serves podinfo's image.
 * The agent runs as the installed Deployment would (test/e2e/kubelet.ts).
 * Each `it` is one step of issue 8, in order; steps build on each other.
 * Waits are driven by `shipmate reconcile` (what a person would type), so
 * the whole flow takes seconds per step, not intervals.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import type { KubeClient } from "../../src/kube/client.ts";
import { adminClient, getObject, ksStatus } from "../agent/helpers.ts";
import { runCli } from "../helpers/cli.ts";
import { type GiteaServer, startGitea } from "../infra/gitea.ts";
import { type KubeCluster, startKube } from "../infra/kube.ts";
import { seedTags, startRegistry, type TestRegistry } from "../infra/registry.ts";
import { APP, Checkout, podinfoFiles, podinfoPolicies } from "./fixtures.ts";
import { type PodProcess, runDeployment } from "./kubelet.ts";

let gitea: GiteaServer;
let kube: KubeCluster;
let reg: TestRegistry;
let client: KubeClient;
let pod: PodProcess | undefined;
let fleet: Checkout;
let app: Checkout;
const ENV = "staging";
let image: string;

beforeAll(async () => {
  [gitea, kube, reg] = await Promise.all([
    startGitea(),
    startKube({ name: "e2e" }),
    startRegistry({ auth: "none" }),
  ]);
  client = adminClient(kube);
  image = `${reg.host}/demo/podinfo`;
  await seedTags(reg, "demo/podinfo", ["6.0.0"]);
}, 180_000);
afterAll(async () => {
  await pod?.stop();
  client?.close();
  fleet?.remove();
  app?.remove();
  await Promise.all([gitea?.stop(), kube?.stop(), reg?.stop()]);
});

const env = () => ({ GITEA_TOKEN: gitea.token, SHIPMATE_FORGE_TOKEN: "" });
const authed = (repo: string) =>
  `http://${gitea.admin.username}:${gitea.token}@${new URL(gitea.url).host}/${gitea.admin.username}/${repo}.git`;

/** `shipmate ...` as a person types it; fails the step with what the CLI said. */
async function shipmate(...argv: string[]): Promise<string> {
  // In-process, the CLI cannot take $KUBECONFIG from its io.env, so the cluster is named on the command line.
  const r = await runCli(argv[0] === "update" ? argv : [...argv, `--kubeconfig=${kube.kubeconfig}`], {
    env: env(),
  });
  if (r.code !== 0)
    throw new Error(
      `shipmate ${argv.join(" ")} exited ${r.code}\n${r.stdout}\n${r.stderr}\n${pod?.logs.slice(-40).join("\n")}`,
    );
  return r.stdout;
}

const path = {
  deployment: `/apis/apps/v1/namespaces/default/deployments/${APP}`,
  service: `/api/v1/namespaces/default/services/${APP}`,
  hpa: `/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/${APP}`,
  ks: `/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/shipmate-system/kustomizations/${APP}`,
};
const imageOf = async () =>
  (await getObject(client, path.deployment))?.spec.template.spec.containers[0].image as string | undefined;

/** The fleet's Kustomization file for podinfo, as `create kustomization --export` printed it. */
let ksFile = "";
const KS_PATH = `clusters/${ENV}/${APP}-kustomization.yaml`;
const SOURCE_PATH = `clusters/${ENV}/${APP}-source.yaml`;

describe("the Flux quick start with shipmate, on loopback", () => {
  it("1. bootstrap: the agent runs and is Ready at the pushed revision", async () => {
    const podinfo = await gitea.createRepo(APP);
    expect(podinfo.defaultBranch).toBe("main");
    app = new Checkout(authed(APP));
    app.commit(podinfoFiles(`${image}:6.0.0`), "podinfo's kustomize folder");

    const running = runDeployment(kube, client, {
      namespace: "shipmate-system",
      name: "shipmate-agent",
      extra: ["--interval=30s", "--poll-interval=300ms"],
    });
    const out = await shipmate(
      "bootstrap",
      "--forge=gitea",
      `--forge-url=${gitea.url}`,
      `--owner=${gitea.admin.username}`,
      "--repository=fleet",
      "--personal",
      `--path=clusters/${ENV}`,
      "--timeout=90s",
    );
    pod = await running;
    fleet = new Checkout(authed("fleet"));
    const pushed = fleet.git("rev-parse", "HEAD");
    expect(out).toContain(`✔ the agent applied main@sha1:${pushed}`);
    expect((await ksStatus(client, "shipmate-system")).ks?.status.lastAppliedRevision).toBe(
      `main@sha1:${pushed}`,
    );
    const ready = await fetch(`${await pod.url}/readyz`);
    expect([ready.status, await ready.text()]).toEqual([200, "ok: leader\n"]);
  }, 180_000);

  it("2. create source git + create kustomization --export, pushed: podinfo runs, both Kustomizations Ready", async () => {
    const url = `${gitea.url}/${gitea.admin.username}/${APP}.git`;
    const source = await shipmate(
      "create",
      "source",
      "git",
      APP,
      `--url=${url}`,
      "--branch=main",
      "--interval=1m",
      "--export",
    );
    ksFile = await shipmate(
      "create",
      "kustomization",
      APP,
      `--source=GitRepository/${APP}`,
      "--path=./kustomize",
      "--prune",
      "--interval=1m",
      "--target-namespace=default",
      "--export",
    );
    expect(parse(ksFile)).toEqual({
      apiVersion: "kustomize.toolkit.fluxcd.io/v1",
      kind: "Kustomization",
      metadata: { name: APP, namespace: "shipmate-system" },
      spec: {
        interval: "1m",
        path: "./kustomize",
        prune: true,
        sourceRef: { kind: "GitRepository", name: APP },
        targetNamespace: "default",
      },
    });
    const fleetCommit = fleet.commit({ [SOURCE_PATH]: source, [KS_PATH]: ksFile }, "Add podinfo");
    const appCommit = app.git("rev-parse", "HEAD");

    await shipmate("reconcile", "kustomization", "shipmate-system", "--with-source");
    await shipmate("reconcile", "kustomization", APP, "--with-source");
    expect(await imageOf()).toBe(`${image}:6.0.0`);
    expect((await getObject(client, path.service))?.spec.ports[0].port).toBe(9898);
    expect((await getObject(client, path.hpa))?.spec.minReplicas).toBe(2);

    const table = (await shipmate("get", "kustomizations")).trim().split("\n");
    expect(table[0]).toMatch(/^NAMESPACE\s+NAME\s+REVISION\s+SUSPENDED\s+READY\s+OBJECTS\s+MESSAGE$/);
    const rows = table.slice(1).map((l) => l.split(/\s+/).slice(0, 5));
    expect(rows).toEqual([
      ["shipmate-system", APP, `main@sha1:${appCommit}`, "False", "True"],
      ["shipmate-system", "shipmate-system", `main@sha1:${fleetCommit}`, "False", "True"],
    ]);
    const sources = (await shipmate("get", "sources", "git")).trim().split("\n").slice(1);
    expect(sources.map((l) => l.split(/\s+/).slice(0, 5))).toEqual([
      ["shipmate-system", APP, `main@sha1:${appCommit}`, "False", "True"],
      ["shipmate-system", "shipmate-system", `main@sha1:${fleetCommit}`, "False", "True"],
    ]);
  }, 120_000);

  it("3. a manifest deleted from the app repository is pruned; the Kustomization deleted from the fleet takes its objects", async () => {
    app.commit(
      { ...podinfoFiles(`${image}:6.0.0`, { hpa: false }), "kustomize/hpa.yaml": null },
      "drop the HPA",
    );
    await shipmate("reconcile", "kustomization", APP, "--with-source");
    expect(await getObject(client, path.hpa)).toBeUndefined();
    expect(await getObject(client, path.deployment)).toBeDefined();

    fleet.commit({ [KS_PATH]: null }, "Remove podinfo's Kustomization");
    await shipmate("reconcile", "kustomization", "shipmate-system", "--with-source");
    expect(await getObject(client, path.ks)).toBeUndefined();
    expect(await getObject(client, path.deployment)).toBeUndefined();
    expect(await getObject(client, path.service)).toBeUndefined();

    // Back as it was, for the steps that follow.
    app.commit(podinfoFiles(`${image}:6.0.0`), "restore the HPA");
    fleet.commit({ [KS_PATH]: ksFile }, "Add podinfo's Kustomization again");
    await shipmate("reconcile", "kustomization", "shipmate-system", "--with-source");
    await shipmate("reconcile", "kustomization", APP, "--with-source");
    expect((await getObject(client, path.hpa))?.spec.minReplicas).toBe(2);
  }, 120_000);

  const editImage = (to: string) =>
    client.raw({
      method: "PATCH",
      path: path.deployment,
      query: { fieldManager: "kubectl-edit" },
      contentType: "application/strategic-merge-patch+json",
      body: { spec: { template: { spec: { containers: [{ name: "podinfod", image: to }] } } } },
    });

  it("4. kubectl edit of the Deployment is reverted at the next reconcile", async () => {
    expect((await editImage("nginx:edited-by-hand")).code).toBe(200);
    expect(await imageOf()).toBe("nginx:edited-by-hand");
    await shipmate("reconcile", "kustomization", APP);
    expect(await imageOf()).toBe(`${image}:6.0.0`);
  }, 60_000);

  it("5. suspended, a manual change stays; resumed, it is reverted", async () => {
    expect(await shipmate("suspend", "kustomization", APP)).toContain(
      `suspended Kustomization shipmate-system/${APP}`,
    );
    await editImage("nginx:while-suspended");
    // The agent makes full passes meanwhile (a root reconcile, with a fetch); podinfo is left alone.
    await shipmate("reconcile", "kustomization", "shipmate-system", "--with-source");
    const refused = await runCli(["reconcile", "kustomization", APP, `--kubeconfig=${kube.kubeconfig}`], {
      env: env(),
    });
    expect([refused.code, refused.stderr.trim()]).toEqual([
      1,
      `shipmate reconcile: Kustomization shipmate-system/${APP} is suspended: resume it first (shipmate resume kustomization ${APP})`,
    ]);
    expect(await imageOf()).toBe("nginx:while-suspended");
    const resumed = await shipmate("resume", "kustomization", APP);
    expect(resumed).toContain(`resumed Kustomization shipmate-system/${APP}`);
    expect(await imageOf()).toBe(`${image}:6.0.0`);
  }, 60_000);

  it("6. an in-line patches: entry setting the HPA's minReplicas to 3 is applied", async () => {
    const doc = parse(ksFile);
    doc.spec.patches = [
      {
        patch: "- op: replace\n  path: /spec/minReplicas\n  value: 3\n",
        target: { kind: "HorizontalPodAutoscaler", name: APP },
      },
    ];
    ksFile = `---\n${stringify(doc)}`;
    fleet.commit({ [KS_PATH]: ksFile }, "podinfo: at least 3 replicas in staging");
    await shipmate("reconcile", "kustomization", "shipmate-system", "--with-source");
    await shipmate("reconcile", "kustomization", APP);
    expect((await getObject(client, path.hpa))?.spec.minReplicas).toBe(3);
  }, 60_000);

  it("7. a new image tag in the registry: staging bumped by the update flow, then applied by the agent", async () => {
    // The automation a person adds once: policies, and a marker on the tag the Kustomization sets.
    ksFile = ksFile.replace(
      "  prune: true\n",
      `  prune: true\n  images:\n    - name: ${image}\n      newTag: 6.0.0 # {"$imagepolicy": "shipmate-system:${APP}:tag"}\n`,
    );
    fleet.commit(
      { [KS_PATH]: ksFile, [`policies/${ENV}/${APP}.yaml`]: podinfoPolicies(image) },
      "automate podinfo",
    );

    await seedTags(reg, "demo/podinfo", ["6.1.0", "7.0.0"]);
    const out = await shipmate(
      "update",
      `--repo=${gitea.url}/${gitea.admin.username}/fleet.git`,
      "--branch=main",
      "--push",
      "--token-env=GITEA_TOKEN",
    );
    expect(out).toMatch(
      new RegExp(`${KS_PATH}\\n\\s+\\d+: shipmate-system:${APP}:tag 6\\.0\\.0 -> 6\\.1\\.0`),
    );
    const bumped = /pushed ([0-9a-f]{40}) to main/.exec(out)?.[1];
    expect(bumped).toBeDefined();

    await shipmate("reconcile", "kustomization", "shipmate-system", "--with-source");
    await shipmate("reconcile", "kustomization", APP);
    expect(await imageOf()).toBe(`${image}:6.1.0`);
    expect((await ksStatus(client, "shipmate-system")).ks?.status.lastAppliedRevision).toBe(
      `main@sha1:${bumped}`,
    );
    // Earlier steps still hold: the in-line patch, and nothing left over from the suspension.
    expect((await getObject(client, path.hpa))?.spec.minReplicas).toBe(3);
  }, 120_000);
});
