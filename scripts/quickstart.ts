/**
 * The quickstart's main job, on loopback: a local OCI registry (Debian's
 * docker-registry) seeded with tags, the example policies pointed at it, and
 * `shipmate scan` deciding what each policy selects.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { seedImage, seedTags, startRegistry } from "../test/infra/registry.ts";

const root = new URL("..", import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), "shipmate-quickstart-"));
const say = (text: string) => console.log(`\n\x1b[1m== ${text}\x1b[0m`);

function shipmate(...args: string[]): number {
  console.log(`$ shipmate ${args.join(" ")}`);
  const r = spawnSync(process.execPath, [join(root, "src/cli/index.ts"), ...args], {
    stdio: "inherit",
    cwd: work,
  });
  return r.status ?? 1;
}

const reg = await startRegistry({ auth: "none" });
try {
  say(`a local registry on ${reg.host}, seeded with tags`);
  await seedTags(reg, "demo/podinfo", ["6.0.0", "6.1.0", "6.5.4", "6.7.1", "7.0.0-rc.1", "latest"]);
  await seedTags(reg, "demo/nginx", ["1.25.5-alpine", "1.27.3-alpine", "1.27.3", "1.28.0-alpine-slim"]);
  const builds = [
    ["main-3f2a1c9-1767225600", "2026-01-01T00:00:00Z"],
    ["main-8be04d1-1772323200", "2026-03-01T00:00:00Z"],
    ["main-c01dbee-1769904000", "2026-02-01T00:00:00Z"],
  ];
  for (const [tag, created] of builds)
    await seedImage(reg, { repository: "demo/app", tags: [tag!], created: created!, salt: tag! });
  await seedImage(reg, {
    repository: "demo/redis",
    tags: ["7-alpine"],
    platforms: ["linux/amd64", "linux/arm64"],
  });
  console.log("demo/podinfo: 6.0.0 6.1.0 6.5.4 6.7.1 7.0.0-rc.1 latest");
  console.log("demo/nginx:   1.25.5-alpine 1.27.3-alpine 1.27.3 1.28.0-alpine-slim");
  console.log(`demo/app:     ${builds.map((b) => b[0]).join(" ")}`);
  console.log("demo/redis:   7-alpine (multi-arch)");

  say("the quickstart policies (scripts/quickstart-policies.yaml), pointed at that registry");
  const policies = join(work, "policies");
  const text = readFileSync(join(root, "scripts/quickstart-policies.yaml"), "utf8").replaceAll(
    "REGISTRY",
    reg.host,
  );
  rmSync(policies, { recursive: true, force: true });
  spawnSync("mkdir", ["-p", policies]);
  writeFileSync(join(policies, "policies.yaml"), text);
  console.log(text);

  say("shipmate scan: the newest image each policy allows");
  const code = shipmate("scan", "--policies", policies, "--cache-dir", join(work, "cache"), "--digest");
  say("the same scan again: the cache keeps a steady-state rescan at one request per repository");
  shipmate("scan", "--policies", policies, "--cache-dir", join(work, "cache"));
  say("--json, for scripts");
  shipmate("scan", "--policies", policies, "--cache-dir", join(work, "cache"), "--json");
  process.exitCode = code;
} finally {
  await reg.stop();
  rmSync(work, { recursive: true, force: true });
}
