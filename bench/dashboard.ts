/**
 * `shipmate dashboard` on a fleet of 500 apps × 5 environments: the server's
 * time to render the matrix page (median of 20 sequential requests over
 * loopback, as the client sees it), the page's weight compressed (HTML +
 * script + stylesheet, gzip), the time from a Kustomization's status change
 * in the API server to the browser showing it (median of 5, Debian's chromium
 * via playwright-core), and the dashboard process's RSS (VmRSS, VmHWM).
 *
 *   npm run bench -- dashboard
 *
 * The cluster is a real kube-apiserver with Flux's CRDs; the 5 Kustomizations
 * (one per environment) and the 500 Deployments of staging are written
 * directly (no agent), with the inventories pointing at them.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { KubeClient } from "../src/kube/client.ts";
import { installFluxCrds } from "../test/agent/helpers.ts";
import { seedBare } from "../test/infra/git.ts";
import { startKube } from "../test/infra/kube.ts";
import { freePort } from "../test/infra/net.ts";

const APPS = 500;
const ENVS = ["dev", "qa", "staging", "canary", "production"];
const CLI = join(import.meta.dirname, "../src/cli/index.ts");
const KS = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/shipmate-system/kustomizations";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const app = (i: number) => `app-${String(i).padStart(3, "0")}`;

const work = mkdtempSync(join(tmpdir(), "shipmate-bench-dashboard-"));
const kube = await startKube({ name: "bench-dashboard" });
const client = new KubeClient(kube.kubeConfig());
let child: ReturnType<typeof spawn> | undefined;
try {
  // The fleet: one overlay per app and environment, each pinning its image.
  const files: Record<string, string> = {
    "shipmate.yaml": `apiVersion: shipmate.dev/v1alpha1\nkind: Fleet\nmetadata: {name: bench}\nspec:\n  environments:\n${ENVS.map(
      (e, i) =>
        `    - name: ${e}\n      path: apps/${e}\n${i > 0 ? `      promoteFrom: ${ENVS[i - 1]}\n      gates: {health: true, soak: 1h}\n` : ""}`,
    ).join("")}`,
  };
  for (const [ei, env] of ENVS.entries())
    for (let i = 0; i < APPS; i++)
      files[`apps/${env}/${app(i)}/kustomization.yaml`] =
        `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../../base]\nimages:\n  - name: registry.example.com/acme/${app(i)}\n    newTag: "1.${4 - ei}.${i % 7}"\n`;
  seedBare(join(work, "fleet.git"), files);

  await installFluxCrds(client, [
    "kustomize.toolkit.fluxcd.io_kustomizations.yaml",
    "source.toolkit.fluxcd.io_gitrepositories.yaml",
  ]);
  const post = async (path: string, body: unknown) => {
    const r = await client.raw({ method: "POST", path, body });
    if (r.code !== 201) throw new Error(`POST ${path}: ${r.code} ${JSON.stringify(r.body).slice(0, 300)}`);
    return r.body as { metadata: { resourceVersion: string } };
  };
  for (const ns of ["shipmate-system", "bench-staging"])
    await post("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
  const created = Date.now();
  for (let i = 0; i < APPS; i++)
    await post("/apis/apps/v1/namespaces/bench-staging/deployments", {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: app(i) },
      spec: {
        selector: { matchLabels: { app: app(i) } },
        template: {
          metadata: { labels: { app: app(i) } },
          spec: { containers: [{ name: "app", image: `registry.example.com/acme/${app(i)}:1.2.${i % 7}` }] },
        },
      },
    });
  const deploymentsMs = Date.now() - created;
  const status = (env: string, reason: string, ready: "True" | "False") => ({
    status: {
      conditions: [
        {
          type: "Ready",
          status: ready,
          reason,
          message: `bench ${reason}`,
          lastTransitionTime: new Date().toISOString(),
          observedGeneration: 1,
        },
      ],
      lastAppliedRevision: "main@sha1:0000000000000000000000000000000000000000",
      inventory: {
        entries:
          env === "staging"
            ? Array.from({ length: APPS }, (_, i) => ({
                id: `bench-staging_${app(i)}_apps_Deployment`,
                v: "v1",
              }))
            : [],
      },
    },
  });
  const setStatus = async (env: string, reason: string, ready: "True" | "False") => {
    const r = await client.raw({
      method: "PATCH",
      path: `${KS}/${env}/status`,
      body: status(env, reason, ready),
      contentType: "application/merge-patch+json",
    });
    if (r.code !== 200) throw new Error(`status ${env}: ${r.code}`);
  };
  for (const env of ENVS) {
    await post(KS, {
      apiVersion: "kustomize.toolkit.fluxcd.io/v1",
      kind: "Kustomization",
      metadata: { name: env, namespace: "shipmate-system" },
      spec: {
        interval: "10m",
        path: `./apps/${env}`,
        prune: true,
        sourceRef: { kind: "GitRepository", name: "fleet" },
      },
    });
    await setStatus(env, "ReconciliationSucceeded", "True");
  }

  const port = await freePort();
  child = spawn(
    process.execPath,
    [
      CLI,
      "dashboard",
      "--repo",
      join(work, "fleet.git"),
      "--kubeconfig",
      kube.kubeconfig,
      "--listen",
      `127.0.0.1:${port}`,
      "--log-level",
      "warn",
    ],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  const base = `http://127.0.0.1:${port}/dashboard`;
  for (let i = 0; ; i++) {
    const ok = await fetch(`${base}/api/state`).then(
      async (r) => r.ok && ((await r.json()) as { rows?: unknown[] }).rows?.length === APPS,
      () => false,
    );
    if (ok) break;
    if (i > 600) throw new Error("the dashboard did not come up within 120 s");
    await new Promise((r) => setTimeout(r, 200));
  }
  // Until the cluster view has the staging Deployments in it.
  for (let i = 0; ; i++) {
    const html = await (await fetch(`${base}/`)).text();
    if (html.includes('<span class="label">cluster </span><code>1.2.0</code>')) break;
    if (i > 300) throw new Error("the cluster view never filled");
    await new Promise((r) => setTimeout(r, 200));
  }

  const renders: number[] = [];
  let html = 0;
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    const res = await fetch(`${base}/`, { headers: { "accept-encoding": "gzip" } });
    const body = await res.arrayBuffer();
    renders.push(performance.now() - t);
    html = body.byteLength;
  }
  // fetch decompresses: ask for the compressed sizes with a raw request.
  const { request } = await import("node:http");
  const gz = (path: string) =>
    new Promise<number>((resolve, reject) => {
      const req = request(`${base}${path}`, { headers: { "accept-encoding": "gzip" } }, (res) => {
        let n = 0;
        res.on("data", (c: Buffer) => {
          n += c.length;
        });
        res.on("end", () => resolve(n));
      });
      req.on("error", reject);
      req.end();
    });
  const pageGz = await gz("/");
  const jsGz = await gz("/assets/dashboard.js");
  const cssGz = await gz("/assets/dashboard.css");

  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const latencies: number[] = [];
  try {
    const page = await browser.newPage();
    await page.goto(`${base}/`);
    await page.waitForFunction(
      () => (globalThis as unknown as { EventSource?: unknown }).EventSource !== undefined,
    );
    await new Promise((r) => setTimeout(r, 1000));
    for (let i = 0; i < 5; i++) {
      const reason = `BenchChange${i}`;
      const t = Date.now();
      await setStatus("staging", reason, "False");
      await page.waitForFunction(
        (r) =>
          (
            globalThis as unknown as { document: { body: { textContent: string } } }
          ).document.body.textContent.includes(r),
        reason,
        { timeout: 30_000, polling: 20 },
      );
      latencies.push(Date.now() - t);
    }
  } finally {
    await browser.close();
  }
  const proc = readFileSync(`/proc/${child.pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(proc)?.[1] ?? 0) / 1024;

  console.log(
    `machine: ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
  );
  console.log(
    `fleet: ${APPS} apps × ${ENVS.length} environments (${APPS * ENVS.length} overlays), ${APPS} Deployments in staging (written in ${(deploymentsMs / 1000).toFixed(1)} s)`,
  );
  console.log(
    `matrix page render (client-measured, loopback): median ${median(renders).toFixed(1)} ms (min ${Math.min(...renders).toFixed(1)}, max ${Math.max(...renders).toFixed(1)}); ${(html / 1024).toFixed(0)} KB uncompressed`,
  );
  console.log(
    `page weight gzip: HTML ${(pageGz / 1024).toFixed(1)} KB + JS ${(jsGz / 1024).toFixed(1)} KB + CSS ${(cssGz / 1024).toFixed(1)} KB = ${((pageGz + jsGz + cssGz) / 1024).toFixed(1)} KB`,
  );
  console.log(`status change → browser: median ${median(latencies)} ms (${latencies.join(", ")})`);
  console.log(`dashboard RSS: ${kb("VmRSS").toFixed(0)} MB now, peak ${kb("VmHWM").toFixed(0)} MB`);
} finally {
  child?.kill("SIGTERM");
  client.close();
  await kube.stop();
  rmSync(work, { recursive: true, force: true });
}
