/**
 * `npm run bench -- images-cluster [repositories] [intervalS] [intervals]`:
 * one in-process agent (`--image-automation`) serving N ImageRepository + N
 * ImagePolicy objects (default 500, Flux's CRDs on a real kube-apiserver)
 * against Debian's docker-registry behind a counting proxy, plus one
 * ImageUpdateAutomation and a generic-hmac Receiver on the agent's HTTP
 * server.
 *
 * Figures: registry requests per repository per interval in steady state
 * (target ≤ 1.0), the agent's CPU and peak RSS over those intervals (this
 * process: the agent plus a thin loop; the API server and registry are
 * processes of their own), and the time from a tag push — announced by a
 * signed Receiver request — to the commit on the git remote (target < 5 s).
 *
 * Flux's image-reflector-controller and image-automation-controller are not
 * run beside it: their Go modules are refused by the module proxy here
 * (bench/RESULTS.md says how that was checked).
 */
import { createHmac } from "node:crypto";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { webhookPath } from "../src/agent/receiver/rules.ts";
import { serve } from "../src/agent/server.ts";
import { adminClient, FleetRepo, installFluxCrds, makeAgent } from "../test/agent/helpers.ts";
import { git, gitAsync, startGitHttpServer } from "../test/infra/git.ts";
import { startKube } from "../test/infra/kube.ts";
import { countingProxy } from "../test/infra/proxy.ts";
import { pool, seedFleet, seedImage, startRegistry } from "../test/infra/registry.ts";

const N = Number(process.argv[2] ?? 500);
const INTERVAL_S = Number(process.argv[3] ?? 10);
const INTERVALS = Number(process.argv[4] ?? 10);
const NS = "bench-images";
const IMG = "/apis/image.toolkit.fluxcd.io/v1";

async function main() {
  const [kube, registry, server] = await Promise.all([
    startKube({ name: "bench-images" }),
    startRegistry({ auth: "none" }),
    startGitHttpServer(),
  ]);
  const proxy = await countingProxy(registry.host);
  const fleet = FleetRepo.create();
  const client = adminClient(kube);
  try {
    await installFluxCrds(client, [
      "image.toolkit.fluxcd.io_imagerepositories.yaml",
      "image.toolkit.fluxcd.io_imagepolicies.yaml",
      "image.toolkit.fluxcd.io_imageupdateautomations.yaml",
      "notification.toolkit.fluxcd.io_receivers.yaml",
    ]);
    const names = await seedFleet(registry, { repos: N, tags: 20, prefix: "bench/img", via: "storage" });
    const post = async (path: string, body: object) => {
      const res = await client.raw({ method: "POST", path, body });
      if (res.code !== 201) throw new Error(`POST ${path}: ${res.code} ${JSON.stringify(res.body)}`);
    };
    fleet.commit({
      "clusters/test/empty.yaml": stringify({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "bench", namespace: NS },
        data: { a: "b" },
      }),
    });
    const agent = makeAgent(kube, fleet, { name: "bench-images", imageAutomation: true, pollMs: 1000 });
    await agent.setup();
    await post("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
    const repoUrl = server.createRepo("fleet", {
      "apps/app.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: ${NS}}
spec:
  template:
    spec:
      containers:
        - name: app
          image: ${proxy.host}/${names[0]}:1.1.9 # {"$imagepolicy": "${NS}:img-0"}
`,
    });
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    await post(`/api/v1/namespaces/${NS}/secrets`, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "git-auth", namespace: NS },
      data: { username: b64(server.user), password: b64(server.password) },
    });
    const token = "bench-receiver-token";
    await post(`/api/v1/namespaces/${NS}/secrets`, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "receiver", namespace: NS },
      data: { token: b64(token) },
    });
    await pool(
      names.map((n, i) => ({ n, i })),
      16,
      async ({ n, i }) => {
        await post(`${IMG}/namespaces/${NS}/imagerepositories`, {
          apiVersion: "image.toolkit.fluxcd.io/v1",
          kind: "ImageRepository",
          metadata: { name: `img-${i}`, namespace: NS },
          spec: { image: `${proxy.host}/${n}`, interval: `${INTERVAL_S}s`, insecure: true },
        });
        await post(`${IMG}/namespaces/${NS}/imagepolicies`, {
          apiVersion: "image.toolkit.fluxcd.io/v1",
          kind: "ImagePolicy",
          metadata: { name: `img-${i}`, namespace: NS },
          spec: { imageRepositoryRef: { name: `img-${i}` }, policy: { semver: { range: ">=1.0.0" } } },
        });
      },
    );
    await post(`/apis/source.toolkit.fluxcd.io/v1/namespaces/${NS}/gitrepositories`, {
      apiVersion: "source.toolkit.fluxcd.io/v1",
      kind: "GitRepository",
      metadata: { name: "fleet", namespace: NS },
      spec: { interval: "1h", url: repoUrl, ref: { branch: "main" }, secretRef: { name: "git-auth" } },
    });
    await post(`${IMG}/namespaces/${NS}/imageupdateautomations`, {
      apiVersion: "image.toolkit.fluxcd.io/v1",
      kind: "ImageUpdateAutomation",
      metadata: { name: "fleet", namespace: NS },
      spec: {
        interval: "1h",
        sourceRef: { kind: "GitRepository", name: "fleet" },
        git: { commit: { author: { email: "bench@example.com" } }, push: { branch: "main" } },
        update: { path: "./apps", strategy: "Setters" },
      },
    });
    await post(`/apis/notification.toolkit.fluxcd.io/v1/namespaces/${NS}/receivers`, {
      apiVersion: "notification.toolkit.fluxcd.io/v1",
      kind: "Receiver",
      metadata: { name: "registry", namespace: NS },
      spec: {
        type: "generic-hmac",
        secretRef: { name: "receiver" },
        resources: [{ kind: "ImageRepository", name: "img-0" }],
      },
    });

    const http = await serve("127.0.0.1:0", agent.metrics, agent.probes());
    const signal = new AbortController().signal;
    try {
      let t = performance.now();
      await agent.once();
      const firstS = (performance.now() - t) / 1000;
      const firstRequests = proxy.log.length;

      // Steady state: the agent's loop, woken every second, over INTERVALS intervals.
      proxy.log.length = 0;
      const cpu0 = process.cpuUsage();
      let peakRss = process.memoryUsage().rss;
      const end = Date.now() + INTERVALS * INTERVAL_S * 1000;
      let passes = 0;
      while (Date.now() < end) {
        const started = Date.now();
        await agent.pass(signal);
        passes++;
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
        await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - started))));
      }
      const cpu = process.cpuUsage(cpu0);
      const steady = proxy.log.length;
      const perRepoPerInterval = steady / (N * INTERVALS);

      // Tag push → Receiver → scan → policy → commit on the remote.
      const bare = join(server.root, "fleet.git");
      const before = git(bare, ["rev-parse", "refs/heads/main"]).trim();
      await seedImage(registry, { repository: names[0] ?? "", tags: ["9.0.0"], salt: "bench" });
      const body = JSON.stringify({ repository: names[0], tag: "9.0.0" });
      const signature = `sha256=${createHmac("sha256", token).update(body).digest("hex")}`;
      t = performance.now();
      const answer = await fetch(`${http.url}${webhookPath(token, "registry", NS)}`, {
        method: "POST",
        body,
        headers: { "x-signature": signature },
      });
      if (answer.status !== 200) throw new Error(`receiver: ${answer.status} ${await answer.text()}`);
      // The remote is watched on its own: the commit lands in the pass's first phase (requested
      // repositories first), while the rest of the fleet's due scans go on.
      let after = before;
      const passes2 = (async () => {
        while (after === before && performance.now() - t < 60_000) await agent.pass(signal);
      })();
      while (after === before && performance.now() - t < 60_000) {
        await new Promise((r) => setTimeout(r, 25));
        after = (await gitAsync(bare, ["rev-parse", "refs/heads/main"])).trim();
      }
      const pushToCommitS = (performance.now() - t) / 1000;
      await passes2;
      if (after === before) throw new Error("no commit within 60 s of the tag push");

      console.log(
        `machine: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}`,
      );
      console.log(
        `objects: ${N} ImageRepository (20 tags each) + ${N} ImagePolicy + 1 ImageUpdateAutomation + 1 Receiver; interval ${INTERVAL_S}s × ${INTERVALS}\n`,
      );
      console.log("| figure | shipmate agent |");
      console.log("| --- | --- |");
      console.log(
        `| first pass (every repository scanned, every policy resolved) | ${firstS.toFixed(1)} s, ${firstRequests} registry requests |`,
      );
      console.log(
        `| steady state: registry requests per repository per interval | ${perRepoPerInterval.toFixed(2)} (${steady} requests, ${passes} passes) |`,
      );
      console.log(
        `| agent CPU over ${INTERVALS} intervals | ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s (${(((cpu.user + cpu.system) / 1e6 / (INTERVALS * INTERVAL_S)) * 100).toFixed(1)} % of one core) |`,
      );
      console.log(`| agent peak RSS | ${(peakRss / 2 ** 20).toFixed(0)} MiB |`);
      console.log(`| tag push → Receiver → commit on the remote | ${pushToCommitS.toFixed(2)} s |`);
    } finally {
      http.server.closeAllConnections();
      http.server.close();
      agent.close();
    }
  } finally {
    client.close();
    fleet.remove();
    await proxy.close();
    await Promise.all([registry.stop(), server.close(), kube.stop()]);
  }
}

await main();
