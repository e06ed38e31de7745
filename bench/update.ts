/**
 * Update benchmark: a generated fleet repository of 10,000 YAML files holding
 * 20,000 Flux markers (200 images), updated by `shipmate update --set …` in a
 * child process (wall time and peak RSS), side by side in the same run with
 * Renovate (`--platform=local --dry-run=full`) computing the same updates from
 * a local registry (Debian's docker-registry on 127.0.0.1) that holds the new
 * tag of each image.
 *
 * Run: `npm run bench -- update` (or `node bench/update.ts [files] [images]`).
 * Renovate is installed on first use into $SHIPMATE_CACHE/renovate (outside
 * the repository), the same install bench/scan.ts uses.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { seedFleet, startRegistry } from "../test/infra/registry.ts";

const FILES = Number(process.argv[2] ?? 10_000);
const IMAGES = Number(process.argv[3] ?? 200);
const MARKERS_PER_FILE = 2;
const root = new URL("..", import.meta.url).pathname;
const cacheRoot = process.env.SHIPMATE_CACHE ?? join(os.homedir(), ".cache", "shipmate");

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  return new Promise<{ ms: number; code: number; out: string; peakRssMb: number }>((resolve, reject) => {
    const start = performance.now();
    // /usr/bin/time reports the child's peak RSS (kB) on the last stderr line.
    const child = spawn("/usr/bin/time", ["-f", "%M", cmd, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      err += d;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const kb = Number(err.trim().split("\n").at(-1));
      resolve({ ms: performance.now() - start, code: code ?? 1, out: out + err, peakRssMb: kb / 1024 });
    });
  });
}

function ensureRenovate(): string {
  const dir = join(cacheRoot, "renovate");
  const bin = join(dir, "node_modules", ".bin", "renovate");
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    console.error(`installing renovate into ${dir} …`);
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", "renovate@44"], {
      cwd: dir,
      stdio: "inherit",
    });
  }
  return bin;
}

function git(cwd: string, args: string[]) {
  execFileSync("git", ["-c", "user.name=bench", "-c", "user.email=bench@localhost", ...args], {
    cwd,
    stdio: "ignore",
  });
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

async function main() {
  if (!existsSync("/usr/bin/time"))
    throw new Error("bench/update.ts needs /usr/bin/time (Debian package 'time')");
  const renovate = ensureRenovate();
  const reg = await startRegistry({ auth: "none" });
  const work = mkdtempSync(join(os.tmpdir(), "shipmate-bench-update-"));
  try {
    const names = await seedFleet(reg, { repos: IMAGES, tags: 2, via: "storage" });
    const host = new URL(reg.url).host;
    const shipFleet = join(work, "shipmate-fleet");
    const renoFleet = join(work, "renovate-fleet");
    const genStart = performance.now();
    mkdirSync(shipFleet);
    writeFleet(shipFleet, host, names);
    git(shipFleet, ["init", "-q", "-b", "main"]);
    git(shipFleet, ["add", "-A"]);
    git(shipFleet, ["commit", "-qm", "fleet"]);
    execFileSync("cp", ["-a", shipFleet, renoFleet]);
    writeFileSync(
      join(renoFleet, "renovate.json"),
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
    git(renoFleet, ["add", "-A"]);
    git(renoFleet, ["commit", "-qm", "renovate config"]);
    const genMs = performance.now() - genStart;

    // The same selections Renovate will find in the registry: every image's newest tag, 1.0.1.
    const sets = names.flatMap((name, k) => ["--set", `flux-system:app-${k}=${host}/${name}:1.0.1`]);
    const ship = await run(process.execPath, [
      join(root, "src/cli/index.ts"),
      "update",
      "--repo",
      shipFleet,
      "--json",
      ...sets,
    ]);
    if (ship.code !== 0) throw new Error(`shipmate update failed:\n${ship.out.slice(0, 2000)}`);
    const report = JSON.parse(ship.out.slice(0, ship.out.lastIndexOf("}") + 1)) as {
      files: Record<string, unknown[]>;
    };
    const shipFiles = Object.keys(report.files).length;
    const shipChanges = Object.values(report.files).reduce((n, c) => n + c.length, 0);
    const sample = readFileSync(join(shipFleet, "apps", "team-0", "app-0.yaml"), "utf8");
    if (!sample.includes(":1.0.1 #")) throw new Error("shipmate did not write the update");

    const rr = await run(renovate, ["--platform=local", "--dry-run=full"], {
      cwd: renoFleet,
      env: {
        LOG_LEVEL: "debug",
        LOG_FORMAT: "json",
        RENOVATE_BASE_DIR: join(work, "renovate-cache"),
        RENOVATE_HOST_RULES: JSON.stringify([{ matchHost: host, insecureRegistry: true }]),
        RENOVATE_ONBOARDING: "false",
        RENOVATE_REQUIRE_CONFIG: "optional",
        RENOVATE_X_IGNORE_RE2: "true",
      },
    });
    writeFileSync(join(cacheRoot, "bench-update-renovate.log"), rr.out);
    const wouldCommit = (rr.out.match(/Would commit files to branch/g) ?? []).length;
    const updatedFiles = new Set(rr.out.match(/"packageFile":"apps\/[^"]+"/g) ?? []).size;

    const cpu = os.cpus()[0]?.model ?? "unknown cpu";
    console.log(
      [
        `machine: ${cpu}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}, ${os.platform()}`,
        `fleet: ${FILES} files, ${FILES * MARKERS_PER_FILE} markers, ${IMAGES} images (generated and committed in ${(genMs / 1000).toFixed(1)} s)`,
        `shipmate update: ${(ship.ms / 1000).toFixed(2)} s wall (process start included), peak RSS ${ship.peakRssMb.toFixed(0)} MB, ${shipFiles} files / ${shipChanges} changes written`,
        `renovate --platform=local --dry-run=full: ${(rr.ms / 1000).toFixed(2)} s wall, exit ${rr.code}, peak RSS ${rr.peakRssMb.toFixed(0)} MB, "would commit" branches: ${wouldCommit}, package files seen: ${updatedFiles} (log: ${join(cacheRoot, "bench-update-renovate.log")})`,
        `ratio: shipmate is ${(rr.ms / ship.ms).toFixed(1)}× faster`,
      ].join("\n"),
    );
  } finally {
    await reg.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
