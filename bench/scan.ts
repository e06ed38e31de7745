/**
 * Scan benchmark: 200 repositories × 300 tags on the local registry (Debian's
 * docker-registry on 127.0.0.1), first scan and steady-state rescan, side by
 * side in the same run with Renovate (`--platform=local --dry-run=lookup` over
 * a repository whose manifests reference the same 200 images).
 *
 * Both tools reach the registry through the same counting proxy, so their
 * request counts are measured the same way. Run: `npm run bench -- scan`
 * (or `node bench/scan.ts [repos] [tags]`). Renovate is installed on first use
 * into $SHIPMATE_CACHE/renovate (outside the repository).
 *
 * BENCH_SKIP_PEERS=1 leaves Renovate out; BENCH_SCAN_ROUNDS=N repeats
 * shipmate's pair (first scan, rescan) N times and reports the median;
 * BENCH_SCAN_BASELINE=DIR times another checkout's CLI (e.g. `git archive`
 * of an older commit with node_modules linked) in alternation with this one,
 * so a before/after comparison shares the machine's load.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { join } from "node:path";
import { seedFleet, startRegistry } from "../test/infra/registry.ts";
import { ensureRenovate, machine, timed } from "./_lib.ts";

const REPOS = Number(process.argv[2] ?? 200);
const TAGS = Number(process.argv[3] ?? 300);
const root = new URL("..", import.meta.url).pathname;
/** Another checkout whose CLI is timed in alternation with this one (a before/after on a shared machine). */
const baseline = process.env.BENCH_SCAN_BASELINE;
const ROUNDS = Math.max(1, Number(process.env.BENCH_SCAN_ROUNDS ?? 1));

/** A reverse proxy that counts every request it forwards. */
async function countingProxy(target: string) {
  let count = 0;
  const server = http.createServer((req, res) => {
    count++;
    const upstream = http.request(
      `${target}${req.url}`,
      { method: req.method, headers: { ...req.headers, host: new URL(target).host } },
      (up) => {
        const headers = { ...up.headers };
        // Keep the client talking to the proxy: rewrite absolute Location/Link targets.
        for (const h of ["location", "link"] as const) {
          const v = headers[h];
          if (typeof v === "string") headers[h] = v.replaceAll(target, `http://${host}`);
        }
        res.writeHead(up.statusCode ?? 502, headers);
        up.pipe(res);
      },
    );
    upstream.on("error", () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    take() {
      const n = count;
      count = 0;
      return n;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function main() {
  // Renovate is installed only when the peer runs (BENCH_SKIP_PEERS=1 never needs it).
  const renovate = process.env.BENCH_SKIP_PEERS ? "" : ensureRenovate();
  const reg = await startRegistry({ auth: "none" });
  const proxy = await countingProxy(reg.url);
  const work = mkdtempSync(join(os.tmpdir(), "shipmate-bench-scan-"));
  try {
    const seedStart = performance.now();
    const names = await seedFleet(reg, { repos: REPOS, tags: TAGS, via: "storage" });
    const seedMs = performance.now() - seedStart;
    const oldest = "1.0.0";

    // The same 200 images, as shipmate policies and as manifests Renovate reads.
    const policiesDir = join(work, "policies");
    const manifests = join(work, "fleet");
    mkdirSync(policiesDir);
    mkdirSync(join(manifests, "apps"), { recursive: true });
    const docs: string[] = [];
    names.forEach((name, i) => {
      docs.push(
        [
          "apiVersion: image.toolkit.fluxcd.io/v1",
          "kind: ImageRepository",
          `metadata: {name: app-${i}, namespace: flux-system}`,
          `spec: {image: ${proxy.host}/${name}, interval: 5m}`,
          "---",
          "apiVersion: image.toolkit.fluxcd.io/v1",
          "kind: ImagePolicy",
          `metadata: {name: app-${i}, namespace: flux-system}`,
          `spec: {imageRepositoryRef: {name: app-${i}}, policy: {semver: {range: ">=1.0.0"}}}`,
        ].join("\n"),
      );
      writeFileSync(
        join(manifests, "apps", `app-${i}.yaml`),
        [
          "apiVersion: apps/v1",
          "kind: Deployment",
          `metadata: {name: app-${i}}`,
          "spec:",
          "  template:",
          "    spec:",
          "      containers:",
          `        - name: app`,
          `          image: ${proxy.host}/${name}:${oldest}`,
          "",
        ].join("\n"),
      );
    });
    writeFileSync(join(policiesDir, "fleet.yaml"), `${docs.join("\n---\n")}\n`);
    writeFileSync(
      join(manifests, "renovate.json"),
      JSON.stringify({
        kubernetes: { managerFilePatterns: ["/^apps/.+\\.yaml$/"] },
        enabledManagers: ["kubernetes"],
        separateMajorMinor: false,
        separateMinorPatch: false,
      }),
    );
    execFileSync("git", ["init", "-q", "-b", "main"], { cwd: manifests });
    execFileSync("git", ["add", "-A"], { cwd: manifests });
    execFileSync("git", ["-c", "user.name=b", "-c", "user.email=b@localhost", "commit", "-qm", "fleet"], {
      cwd: manifests,
    });

    /** One contender's first scan (empty cache) and rescan (nothing new), from a checkout's CLI. */
    const scanPair = async (checkout: string, cacheDir: string) => {
      const once = (label: string) =>
        timed(process.execPath, [
          join(checkout, "src/cli/index.ts"),
          "scan",
          "--policies",
          policiesDir,
          "--cache-dir",
          cacheDir,
          "--json",
        ]).then((r) => {
          if (r.code !== 0)
            throw new Error(`shipmate ${label} (${checkout}) failed:\n${r.out.slice(0, 2000)}`);
          const selected = JSON.parse(r.out.slice(0, r.out.lastIndexOf("]") + 1)) as { tag: string }[];
          return { ...r, requests: proxy.take(), selected: selected.length };
        });
      return { first: await once("first scan"), rescan: await once("rescan") };
    };
    proxy.take();
    // This checkout, and (BENCH_SCAN_BASELINE=DIR) another checkout's CLI in alternation with it on the
    // same registry, so a before/after pair shares the machine's load; BENCH_SCAN_ROUNDS pairs each.
    type Pair = Awaited<ReturnType<typeof scanPair>>;
    const contenders = [root, ...(baseline ? [baseline] : [])];
    const pairs = new Map<string, Pair[]>(contenders.map((c) => [c, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, c] of contenders.entries()) {
        pairs.get(c)?.push(await scanPair(c, join(work, `shipmate-cache-${round}-${i}`)));
      }
    }
    const ours = pairs.get(root) ?? [];
    const mid = ours[ours.length >> 1];
    if (!mid) throw new Error("no scan ran");
    const { first, rescan } = mid;
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? 0;
    const summary = (label: string, runs: Pair[]) =>
      `${label}: first scan wall ${runs.map((r) => (r.first.ms / 1000).toFixed(2)).join(" ")} s (median ${(median(runs.map((r) => r.first.ms)) / 1000).toFixed(2)}), CPU ${runs.map((r) => r.first.cpuS.toFixed(2)).join(" ")} s (median ${median(runs.map((r) => r.first.cpuS)).toFixed(2)}); rescan wall median ${(median(runs.map((r) => r.rescan.ms)) / 1000).toFixed(2)} s, CPU median ${median(runs.map((r) => r.rescan.cpuS)).toFixed(2)} s; requests ${runs.map((r) => `${r.first.requests}/${r.rescan.requests}`).join(" ")}; peak RSS ${Math.max(...runs.map((r) => Math.max(r.first.peakRssMb, r.rescan.peakRssMb))).toFixed(0)} MB`;
    const comparison =
      baseline || ROUNDS > 1
        ? contenders.map((c) => summary(c === root ? "this checkout" : `baseline ${c}`, pairs.get(c) ?? []))
        : [];

    const lines = [
      `machine: ${machine()}`,
      `fleet: ${REPOS} repositories × ${TAGS} tags (seeded in ${(seedMs / 1000).toFixed(1)} s)`,
      `shipmate first scan: ${(first.ms / 1000).toFixed(2)} s, ${first.requests} requests (${(first.requests / REPOS).toFixed(3)}/repo), ${first.selected} policies selected, ${first.cpuS.toFixed(2)} s CPU, peak RSS ${first.peakRssMb.toFixed(0)} MB`,
      `shipmate rescan:     ${(rescan.ms / 1000).toFixed(2)} s, ${rescan.requests} requests (${(rescan.requests / REPOS).toFixed(3)}/repo), ${rescan.cpuS.toFixed(2)} s CPU, peak RSS ${rescan.peakRssMb.toFixed(0)} MB`,
      ...comparison,
    ];
    if (!renovate) {
      console.log(lines.join("\n"));
      return;
    }
    const renovateCache = join(work, "renovate-cache");
    const rr = await timed(renovate, ["--platform=local", "--dry-run=lookup"], {
      cwd: manifests,
      env: {
        LOG_LEVEL: "debug",
        RENOVATE_BASE_DIR: renovateCache,
        RENOVATE_HOST_RULES: JSON.stringify([{ matchHost: proxy.host, insecureRegistry: true }]),
        RENOVATE_ONBOARDING: "false",
        RENOVATE_REQUIRE_CONFIG: "optional",
        RENOVATE_X_IGNORE_RE2: "true",
      },
    });
    const renovateRequests = proxy.take();
    const updatesFound =
      new Set(rr.out.match(/"newVersion": "[^"]+"/g) ?? []).size +
      (rr.out.match(/"updateType": "(major|minor|patch)"/g) ?? []).length;
    if (rr.code !== 0) console.error(rr.out.slice(-4000));

    lines.push(
      `renovate ${rr.code === 0 ? "" : `(exit ${rr.code}) `}lookup: ${(rr.ms / 1000).toFixed(2)} s, ${renovateRequests} requests (${(renovateRequests / REPOS).toFixed(3)}/repo), ${rr.cpuS.toFixed(2)} s CPU, peak RSS ${rr.peakRssMb.toFixed(0)} MB, update records in its log: ${updatesFound}`,
      `ratio (first scan): shipmate is ${(rr.ms / first.ms).toFixed(1)}× faster, makes ${((first.requests / Math.max(1, renovateRequests)) * 100).toFixed(0)}% of Renovate's requests`,
    );
    console.log(lines.join("\n"));
  } finally {
    await proxy.close();
    await reg.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
