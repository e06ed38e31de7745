/**
 * Update benchmark: a generated fleet repository of 10,000 YAML files holding
 * 20,000 Flux markers (200 images).
 *
 * 1. `shipmate update --set …` on a local checkout, in a child process (wall
 *    time, CPU time, peak RSS): the engine figure the issue targets.
 * 2. Delivery side by side on a real forge (Gitea on 127.0.0.1): shipmate
 *    `--push-branch` from a fresh clone, and Renovate (`--platform=gitea`)
 *    finding the same updates in a local registry (Debian's docker-registry
 *    holding tag 1.0.1 of every image) and pushing its branch.
 * 3. Renovate `--platform=local --dry-run=full`, the offline mode the issue
 *    asked for: it looks the updates up but never writes them (see RESULTS.md).
 *
 * Run: `npm run bench -- update` (or `node bench/update.ts [files] [images]`;
 * BENCH_UPDATE_RUNS sets the local runs, 5 by default, BENCH_SKIP_PEERS=1 runs
 * shipmate's local update alone; BENCH_UPDATE_BASELINE=DIR runs another
 * checkout's CLI — e.g. `git archive` of an older commit with node_modules
 * linked — after each local run, on a fresh copy of its own, so a before/after
 * comparison shares the machine's load).
 * Renovate is installed on first use into $SHIPMATE_CACHE/renovate (outside
 * the repository), the same install bench/scan.ts uses.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { startGitea } from "../test/infra/gitea.ts";
import { seedFleet, startRegistry } from "../test/infra/registry.ts";
import { cacheRoot, ensureRenovate, timed } from "./_lib.ts";

const FILES = Number(process.argv[2] ?? 10_000);
const IMAGES = Number(process.argv[3] ?? 200);
const MARKERS_PER_FILE = 2;
/** Runs of shipmate's local update; BENCH_SKIP_PEERS=1 stops after them (no Gitea delivery, no Renovate). */
const RUNS = Number(process.env.BENCH_UPDATE_RUNS ?? 5);
const root = new URL("..", import.meta.url).pathname;
/** Another checkout whose CLI runs in alternation with this one's local update (a before/after on a shared machine). */
const baseline = process.env.BENCH_UPDATE_BASELINE;

function git(cwd: string, args: string[]) {
  execFileSync(
    "git",
    ["-c", "user.name=bench", "-c", "user.email=bench@localhost", "-c", "gc.auto=0", ...args],
    {
      cwd,
      stdio: "ignore",
    },
  );
}

/** The fleet: FILES Deployments, each with MARKERS_PER_FILE marked containers spread over IMAGES images. */
function writeFleet(dir: string, host: string, names: string[]): void {
  for (let i = 0; i < FILES; i++) {
    const team = `team-${i % 50}`;
    const containers: string[] = [];
    for (let m = 0; m < MARKERS_PER_FILE; m++) {
      const k = (i * MARKERS_PER_FILE + m) % names.length;
      containers.push(
        `        - name: c${m}`,
        `          image: ${host}/${names[k]}:1.0.0 # {"$imagepolicy": "flux-system:app-${k}"}`,
        "          ports:",
        `            - containerPort: ${8080 + m}`,
      );
    }
    const path = join(dir, "apps", team, `app-${i}.yaml`);
    if (i < 50) mkdirSync(join(dir, "apps", team), { recursive: true });
    writeFileSync(
      path,
      [
        "# generated for the update benchmark",
        "apiVersion: apps/v1",
        "kind: Deployment",
        "metadata:",
        `  name: app-${i}`,
        `  namespace: ${team}`,
        "  labels:",
        `    app.kubernetes.io/name: app-${i}`,
        "spec:",
        "  replicas: 2",
        "  selector:",
        `    matchLabels: {app: app-${i}}`,
        "  template:",
        "    metadata:",
        `      labels: {app: app-${i}}`,
        "    spec:",
        "      containers:",
        ...containers,
        "",
      ].join("\n"),
    );
  }
}

const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const RENOVATE_TIMEOUT_MS = Number(process.env.BENCH_RENOVATE_TIMEOUT_S ?? 1200) * 1000;

/** Seconds from Renovate's first log record to the first record whose message matches `re`. */
function logSpan(log: string, re: RegExp): number | undefined {
  const times: number[] = [];
  let hit: number | undefined;
  for (const line of log.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const rec = JSON.parse(line) as { time?: string; msg?: string };
      if (!rec.time) continue;
      const t = Date.parse(rec.time);
      times.push(t);
      if (hit === undefined && rec.msg && re.test(rec.msg)) hit = t;
    } catch {
      // not a log record
    }
  }
  const first = times[0];
  return first !== undefined && hit !== undefined ? (hit - first) / 1000 : undefined;
}

async function main() {
  if (!existsSync("/usr/bin/time"))
    throw new Error("bench/update.ts needs /usr/bin/time (Debian package 'time')");
  // Renovate is installed only when the peers run (BENCH_SKIP_PEERS=1 never needs it).
  const renovate = process.env.BENCH_SKIP_PEERS ? "" : ensureRenovate();
  const reg = await startRegistry({ auth: "none" });
  // Gitea starts after shipmate's local runs: its processing of the fleet's push (10,000 files) would
  // otherwise share the disk with them.
  let gitea: Awaited<ReturnType<typeof startGitea>> | undefined;
  const work = mkdtempSync(join(os.tmpdir(), "shipmate-bench-update-"));
  const lines: string[] = [];
  try {
    const names = await seedFleet(reg, { repos: IMAGES, tags: 2, via: "storage" });
    const host = new URL(reg.url).host;
    const fleet = join(work, "fleet");
    const genStart = performance.now();
    mkdirSync(fleet);
    writeFleet(fleet, host, names);
    writeFileSync(
      join(fleet, "renovate.json"),
      JSON.stringify({
        kubernetes: { managerFilePatterns: ["/^apps/.+\\.yaml$/"] },
        enabledManagers: ["kubernetes"],
        // One branch with every update, like shipmate's one commit; no limits that would skip work.
        packageRules: [{ matchManagers: ["kubernetes"], groupName: "images" }],
        prHourlyLimit: 0,
        prConcurrentLimit: 0,
        branchConcurrentLimit: 0,
      }),
    );
    git(fleet, ["init", "-q", "-b", "main"]);
    git(fleet, ["add", "-A"]);
    git(fleet, ["commit", "-qm", "fleet"]);
    const genMs = performance.now() - genStart;
    const cpu = os.cpus()[0]?.model ?? "unknown cpu";
    lines.push(
      `machine: ${cpu}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}, ${os.platform()}, load average ${os.loadavg()[0]?.toFixed(1)} at start`,
      `fleet: ${FILES} files, ${FILES * MARKERS_PER_FILE} markers, ${IMAGES} images (generated and committed in ${secs(genMs)})`,
    );

    // The same selections Renovate finds in the registry: every image's newest tag, 1.0.1.
    const sets = names.flatMap((name, k) => ["--set", `flux-system:app-${k}=${host}/${name}:1.0.1`]);
    const cli = join(root, "src/cli/index.ts");
    // Several runs, each on a fresh copy of the fleet (as a CI job clones it): the median is the figure,
    // the range shows the noise. Copies are never reset or deleted between runs: this machine's ext4 has
    // no journal, and there a new inode skips every inode freed in its group in the last minutes (up to
    // five while the inode table is dirty), so a tree rewritten right after thousands of files were
    // deleted near it pays that scan on each of its atomic replacements (measured: 4-7 s instead of
    // 1.5-2 s when the runs shared one checkout reset with git checkout).
    const runs: { ms: number; cpuS: number; peakRssMb: number; out: string }[] = [];
    const baselineRuns: typeof runs = [];
    let checkout = "";
    for (let i = 0; i < RUNS; i++) {
      checkout = join(work, `checkout-${i}`);
      execFileSync("cp", ["-a", fleet, checkout]);
      // A settled copy: its writeback is the copy's cost, not the update's.
      execFileSync("sync");
      await new Promise((r) => setTimeout(r, 2000));
      const run = await timed(process.execPath, [cli, "update", "--repo", checkout, "--json", ...sets]);
      if (run.code !== 0) throw new Error(`shipmate update failed:\n${run.out.slice(0, 2000)}`);
      runs.push(run);
      if (baseline) {
        const other = join(work, `baseline-${i}`);
        execFileSync("cp", ["-a", fleet, other]);
        execFileSync("sync");
        await new Promise((r) => setTimeout(r, 2000));
        const b = await timed(process.execPath, [
          join(baseline, "src/cli/index.ts"),
          "update",
          "--repo",
          other,
          "--json",
          ...sets,
        ]);
        if (b.code !== 0) throw new Error(`baseline update (${baseline}) failed:\n${b.out.slice(0, 2000)}`);
        baselineRuns.push(b);
      }
    }
    const byWall = [...runs].sort((a, b) => a.ms - b.ms);
    const local = byWall[Math.floor((byWall.length - 1) / 2)] as (typeof runs)[number];
    const report = JSON.parse(local.out.slice(0, local.out.lastIndexOf("}") + 1)) as {
      files: Record<string, unknown[]>;
      timings: {
        walkMs: number;
        pipelineMs: number;
        readMs: number;
        rewriteMs: number;
        writeMs: number;
        writers: number;
      };
    };
    const t = report.timings;
    const changes = Object.values(report.files).reduce((n, c) => n + c.length, 0);
    if (!readFileSync(join(checkout, "apps", "team-0", "app-0.yaml"), "utf8").includes(":1.0.1 #"))
      throw new Error("shipmate did not write the update");
    const peak = Math.max(...runs.map((r) => r.peakRssMb));
    lines.push(
      `shipmate update (local checkout, files only), median of ${RUNS} runs: ${secs(local.ms)} wall (range ${secs(byWall[0]?.ms ?? 0)}–${secs(byWall.at(-1)?.ms ?? 0)}), ${local.cpuS.toFixed(2)} s CPU, peak RSS ${local.peakRssMb.toFixed(0)} MB (highest of all runs ${peak.toFixed(0)} MB), ${Object.keys(report.files).length} files / ${changes} changes written`,
      `  of which: walk ${t.walkMs} ms, then ${t.pipelineMs} ms reading (${t.readMs} ms) and rewriting (${t.rewriteMs} ms) here while ${t.writers} writer threads replaced the files atomically (${t.writeMs} ms summed over them); the rest is process start, policy load and JSON output`,
    );
    // Each run's own timings (walk / read / rewrite ms, writes summed over the writers), where its JSON has them.
    const parts = (r: (typeof runs)[number]) => {
      try {
        const { timings: x } = JSON.parse(r.out.slice(0, r.out.lastIndexOf("}") + 1)) as typeof report;
        return `${x.walkMs}/${x.readMs}/${x.rewriteMs}/${x.writeMs}`;
      } catch {
        return "-";
      }
    };
    const runsLine = (label: string, rs: typeof runs) =>
      `${label}: wall ${rs.map((r) => secs(r.ms)).join(", ")}; CPU ${rs.map((r) => r.cpuS.toFixed(2)).join(", ")} s; peak RSS ${rs.map((r) => r.peakRssMb.toFixed(0)).join(", ")} MB; walk/read/rewrite/write ms ${rs.map(parts).join(", ")}`;
    if (baseline)
      lines.push(
        runsLine("  this checkout, run by run", runs),
        runsLine(`  baseline ${baseline}`, baselineRuns),
      );
    if (process.env.BENCH_SKIP_PEERS) {
      console.log(lines.join("\n"));
      return;
    }
    gitea = await startGitea();
    const repo = await gitea.createRepo("fleet");
    git(fleet, ["push", "-q", "--force", repo.authedCloneUrl, "main:main"]);

    const auth = { SHIPMATE_GIT_TOKEN: gitea.token, SHIPMATE_GIT_USERNAME: gitea.admin.username };
    const cloneUrl = `${gitea.url}/${repo.fullName}.git`;
    const pushed = await timed(
      process.execPath,
      [cli, "update", "--repo", cloneUrl, "--push-branch", "shipmate/images", "--json", ...sets],
      {
        env: auth,
      },
    );
    if (pushed.code !== 0) throw new Error(`shipmate --push-branch failed:\n${pushed.out.slice(0, 2000)}`);
    lines.push(
      `shipmate update --push-branch (clone from Gitea, update, commit, push): ${secs(pushed.ms)} wall, ${pushed.cpuS.toFixed(2)} s CPU, peak RSS ${pushed.peakRssMb.toFixed(0)} MB`,
    );

    const renovateEnv: Record<string, string> = {
      LOG_LEVEL: "debug",
      LOG_FORMAT: "json",
      RENOVATE_BASE_DIR: join(work, "renovate-cache"),
      RENOVATE_HOST_RULES: JSON.stringify([{ matchHost: host, insecureRegistry: true }]),
      RENOVATE_ONBOARDING: "false",
      RENOVATE_REQUIRE_CONFIG: "optional",
      RENOVATE_X_IGNORE_RE2: "true",
      RENOVATE_GIT_AUTHOR: "Renovate Bot <renovate@example.test>",
    };
    const rg = await timed(
      renovate,
      ["--platform=gitea", `--endpoint=${gitea.url}/api/v1`, `--token=${gitea.token}`, repo.fullName],
      { cwd: work, env: renovateEnv, timeoutMs: RENOVATE_TIMEOUT_MS },
    );
    writeFileSync(join(cacheRoot, "bench-update-renovate-gitea.log"), rg.out);
    const branches = await gitea.api<{ name: string }[]>("GET", `/repos/${repo.fullName}/branches?limit=50`);
    const renoBranch = branches.map((b) => b.name).find((b) => b.startsWith("renovate/"));
    let renoApplied = "no branch";
    if (renoBranch) {
      const raw = await fetch(
        `${gitea.url}/api/v1/repos/${repo.fullName}/raw/apps/team-0/app-0.yaml?ref=${encodeURIComponent(renoBranch)}`,
        {
          headers: { authorization: `token ${gitea.token}` },
        },
      );
      renoApplied = (await raw.text()).includes(":1.0.1")
        ? `branch ${renoBranch} carries the update`
        : `branch ${renoBranch} without the update`;
    }
    // Renovate logs when the updated contents of every file are ready in memory ("Updated N package files"):
    // the same work as shipmate's rewrite, whatever happens to its commit afterwards.
    const toContents = logSpan(rg.out, /^Updated \d+ package files/);
    const timedOut = rg.ms >= RENOVATE_TIMEOUT_MS;
    lines.push(
      `renovate --platform=gitea (clone, lookup, update, commit, push): ${secs(rg.ms)} wall${timedOut ? ` (stopped at the ${RENOVATE_TIMEOUT_MS / 1000} s limit)` : ""}, exit ${rg.code}, ${rg.cpuS.toFixed(2)} s CPU, peak RSS ${rg.peakRssMb.toFixed(0)} MB, ${renoApplied}`,
      `  renovate had the updated contents of all files after ${toContents === undefined ? "(never)" : `${toContents.toFixed(1)} s`} (log: ${join(cacheRoot, "bench-update-renovate-gitea.log")})`,
      renoBranch && !timedOut
        ? `ratio (delivery to a branch on the same Gitea): shipmate is ${(rg.ms / pushed.ms).toFixed(1)}× faster`
        : `ratio (delivery): Renovate did not deliver within ${secs(rg.ms)}; shipmate delivered in ${secs(pushed.ms)} (≥ ${(rg.ms / pushed.ms).toFixed(1)}×)`,
      toContents === undefined
        ? "ratio (updated contents): n/a"
        : `ratio (updated contents: Renovate's log mark vs shipmate's whole local run): shipmate is ${((toContents * 1000) / local.ms).toFixed(1)}× faster`,
    );

    const rl = await timed(renovate, ["--platform=local", "--dry-run=full"], {
      cwd: fleet,
      env: renovateEnv,
    });
    writeFileSync(join(cacheRoot, "bench-update-renovate-local.log"), rl.out);
    const branchified = /"msg":"Returning (\d+) branch\(es\)"/.exec(rl.out)?.[1] ?? "?";
    const wrote =
      execFileSync("git", ["status", "--porcelain"], { cwd: fleet, encoding: "utf8" }).trim() !== "";
    lines.push(
      `renovate --platform=local --dry-run=full: ${secs(rl.ms)} wall, exit ${rl.code}, peak RSS ${rl.peakRssMb.toFixed(0)} MB, ${branchified} branch(es) planned, files written: ${wrote ? "yes" : "none"}`,
    );
    console.log(lines.join("\n"));
  } catch (err) {
    console.log(lines.join("\n"));
    throw err;
  } finally {
    await gitea?.stop();
    await reg.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
