/**
 * `shipmate create` (applied, not exported), `reconcile` and `get sources
 * git` against a real kube-apiserver with the agent running, and their bad
 * input: a source URL that does not resolve, a ref it does not have, a
 * Kustomization pointing at a missing source.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../src/agent/agent.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { adminClient, configMap, FleetRepo, getObject, makeAgent } from "../agent/helpers.ts";
import { runCli } from "../helpers/cli.ts";
import { waitFor } from "../helpers/wait.ts";
import { type KubeCluster, startKube } from "../infra/kube.ts";

let kube: KubeCluster;
let client: KubeClient;
let fleet: FleetRepo;
let app: FleetRepo;
let agent: Agent;
const stop = new AbortController();
let running: Promise<unknown>;

beforeAll(async () => {
  kube = await startKube({ name: "create" });
  client = adminClient(kube);
  fleet = FleetRepo.create();
  fleet.commit({
    "clusters/test/ns.yaml": [{ apiVersion: "v1", kind: "Namespace", metadata: { name: "c-app" } }],
  });
  app = FleetRepo.create();
  app.commit({ "kustomize/config.yaml": [configMap("first", "c-app", { v: "1" })] });
  agent = makeAgent(kube, fleet, { name: "c-root" });
  running = agent.run(stop.signal, false);
  // The agent installs the CRDs as it starts; commands may only run once they are served.
  await waitFor(
    async () =>
      (await client.raw({ method: "GET", path: "/apis/source.toolkit.fluxcd.io/v1/gitrepositories" }))
        .code === 200,
    { ms: 60_000, every: 200, what: "the agent to install its CRDs" },
  );
}, 120_000);
afterAll(async () => {
  stop.abort();
  await running?.catch(() => undefined);
  agent?.close();
  client?.close();
  fleet?.remove();
  app?.remove();
  await kube?.stop();
});

const cli = (...argv: string[]) => runCli([...argv, `--kubeconfig=${kube.kubeconfig}`]);

describe("create, applied to the cluster", () => {
  it("create source git: applied, fetched by the agent, shown by get sources git", async () => {
    const r = await cli("create", "source", "git", "app", `--url=${app.url}`, "--branch=main");
    expect(r.stderr).toMatch(/^✔ file:\/\/.* resolves: main@sha1:[0-9a-f]{40}\n$/);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toBe("GitRepository shipmate-system/app created");
    expect(lines[1]).toMatch(/^NAMESPACE\s+NAME\s+REVISION\s+SUSPENDED\s+READY\s+MESSAGE$/);
    expect(lines[2]?.split(/\s+/).slice(0, 5)).toEqual([
      "shipmate-system",
      "app",
      expect.stringMatching(/^main@sha1:/),
      "False",
      "True",
    ]);
    expect(r.code).toBe(0);

    const got = await cli("get", "sources", "git", "app", "--json");
    expect(JSON.parse(got.stdout)).toEqual([
      expect.objectContaining({ name: "app", url: app.url, ready: "True", reason: "Succeeded" }),
    ]);
    const again = await cli("create", "source", "git", "app", `--url=${app.url}`, "--branch=main");
    expect(again.stdout.split("\n")[0]).toBe("GitRepository shipmate-system/app unchanged");
  }, 60_000);

  it("create kustomization: applied, reconciled from the app's source, Ready", async () => {
    const r = await cli(
      "create",
      "kustomization",
      "app",
      "--source=app",
      "--path=./kustomize",
      "--prune",
      "--interval=10m",
      "--target-namespace=c-app",
    );
    expect(r.stdout.split("\n")[0]).toBe("Kustomization shipmate-system/app created");
    expect(r.code).toBe(0);
    expect((await getObject(client, "/api/v1/namespaces/c-app/configmaps/first"))?.data).toEqual({ v: "1" });
  }, 60_000);

  it("reconcile kustomization --with-source fetches the app's new commit first, then applies it", async () => {
    const commit = app.commit({
      "kustomize/config.yaml": [configMap("second", "c-app", { v: "2" })],
    });
    const r = await cli("reconcile", "kustomization", "app", "--with-source");
    expect(r.stdout).toContain("► annotating GitRepository shipmate-system/app");
    expect(r.stdout).toContain(`main@sha1:${commit}`);
    expect(r.code).toBe(0);
    expect(await getObject(client, "/api/v1/namespaces/c-app/configmaps/first")).toBeUndefined();
    expect((await getObject(client, "/api/v1/namespaces/c-app/configmaps/second"))?.data).toEqual({ v: "2" });

    const src = await cli("reconcile", "source", "git", "app");
    expect(src.code).toBe(0);
    expect(src.stdout).toMatch(new RegExp(`app\\s+main@sha1:${commit}\\s+False\\s+True`));
  }, 60_000);
});

describe("bad input", () => {
  it("a source URL that does not resolve: one line, exit 1, nothing written", async () => {
    const r = await cli(
      "create",
      "source",
      "git",
      "nowhere",
      "--url=http://127.0.0.1:9/none.git",
      "--branch=main",
    );
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(
      /^shipmate create: source URL http:\/\/127\.0\.0\.1:9\/none\.git does not resolve: fatal: unable to access .*$/,
    );
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(
      await getObject(
        client,
        "/apis/source.toolkit.fluxcd.io/v1/namespaces/shipmate-system/gitrepositories/nowhere",
      ),
    ).toBeUndefined();
  });

  it.each([
    ["--branch=nope", `has no branch "nope"`],
    ["--tag=v9.9.9", `has no tag "v9.9.9"`],
    ["--semver=>=1.0.0", `matches semver range ">=1.0.0"`],
  ])("a ref the repository does not have (%s), even with --export", async (flag, message) => {
    const r = await cli("create", "source", "git", "x", `--url=${app.url}`, flag, "--export");
    expect([r.code, r.stdout]).toEqual([1, ""]);
    expect(r.stderr).toContain(message);
  });

  it("a kustomization pointing at a missing source: refused before it is created", async () => {
    const r = await cli("create", "kustomization", "orphan", "--source=missing", "--path=./k");
    expect([r.code, r.stderr.trim()]).toEqual([
      1,
      "shipmate create: GitRepository shipmate-system/missing not found: create it first (shipmate create source git missing --url …)",
    ]);
    expect(
      await getObject(
        client,
        "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/shipmate-system/kustomizations/orphan",
      ),
    ).toBeUndefined();
  });

  it.each([
    [["create", "source", "git", "x", "--url=https://h/x.git"], /give the ref to follow/],
    [
      ["create", "kustomization", "x", "--source=s", "--path=../up"],
      /--path "\.\.\/up" escapes the repository/,
    ],
    [["create", "kustomization", "x", "--path=./k"], /--source is required/],
    [
      ["create", "source", "git", "x", "--url=https://h/x.git", "--branch=main", "--prune"],
      /--prune does not apply to create source git/,
    ],
    [["create", "source", "oci", "x"], /only "git" and "helm" sources/],
    [["create", "kustomization", "Bad_Name", "--source=s", "--path=./k"], /not a valid object name/],
    [["reconcile", "kustomization"], /usage: shipmate reconcile/],
    [["reconcile", "source", "git", "x", "--with-source"], /--with-source applies to kustomizations/],
    [["get", "sources", "helmrepo"], /only "git", "oci", "bucket", "helm" and "chart" sources/],
    [
      ["reconcile", "source", "oci", "x", "--with-source"],
      /--with-source applies to kustomizations and helmreleases/,
    ],
    [["suspend", "source", "ftp", "x"], /usage: shipmate suspend kustomization\|helmrelease\|receiver NAME/],
    [["resume", "receiver"], /usage: shipmate resume/],
  ])("usage: %j (exit 2)", async (argv, message) => {
    const r = await cli(...argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it("reconcile of a Kustomization that does not exist", async () => {
    const r = await cli("reconcile", "kustomization", "ghost");
    expect([r.code, r.stderr.trim()]).toEqual([
      1,
      "shipmate reconcile: Kustomization shipmate-system/ghost not found",
    ]);
  });
});
