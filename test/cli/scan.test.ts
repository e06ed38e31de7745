import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { seedTags, startRegistry, type TestRegistry } from "../infra/registry.ts";

const flux = (name: string, image: string, policy: string) => `apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: ${name}
spec:
  image: ${image}
  interval: 5m
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: ${name}
spec:
  imageRepositoryRef:
    name: ${name}
  policy:
${policy}
`;

describe("shipmate scan", () => {
  let reg: TestRegistry;
  let dir: string;
  beforeAll(async () => {
    reg = await startRegistry({ auth: "none" });
    await seedTags(reg, "demo/podinfo", ["6.0.0", "6.1.0", "6.1.1", "7.0.0-rc.1"]);
    dir = mkdtempSync(join(tmpdir(), "shipmate-cli-scan-"));
  });
  afterAll(async () => {
    await reg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const write = (name: string, text: string) => {
    const d = mkdtempSync(join(dir, "case-"));
    writeFileSync(join(d, name), text);
    return d;
  };

  it("prints a table of selections and the request count, exit 0", async () => {
    const d = write(
      "podinfo.yaml",
      flux("podinfo", `${reg.host}/demo/podinfo`, "    semver:\n      range: 6.x"),
    );
    const r = await runCli(["scan", "--policies", d, "--no-cache"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^POLICY\s+SELECTED\s+DIGEST$/m);
    expect(r.stdout).toContain(`flux-system:podinfo  ${reg.host}/demo/podinfo:6.1.1`);
    expect(r.stdout).toMatch(/1 of 1 policies selected; 1 registry requests/);
  });

  it("--json prints the selections, with digests when asked", async () => {
    const d = write(
      "podinfo.yaml",
      flux("podinfo", `${reg.host}/demo/podinfo`, "    semver:\n      range: '>=6.0.0'"),
    );
    const r = await runCli(["scan", "--policies", d, "--no-cache", "--json", "--digest"]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toEqual([
      {
        policy: "flux-system:podinfo",
        image: `${reg.host}/demo/podinfo`,
        tag: "6.1.1",
        digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
      },
    ]);
  });

  it("exits 1 when a policy selects nothing, saying why", async () => {
    const d = write(
      "podinfo.yaml",
      flux("podinfo", `${reg.host}/demo/podinfo`, "    semver:\n      range: ^9"),
    );
    const r = await runCli(["scan", "--policies", d, "--no-cache"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("no selection:");
  });

  it("exits 2 with one line naming the file and line for an invalid range", async () => {
    const d = write(
      "bad.yaml",
      flux("podinfo", `${reg.host}/demo/podinfo`, "    semver:\n      range: '>>1.0'"),
    );
    const r = await runCli(["scan", "--policies", d, "--no-cache"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/bad\.yaml:\d+/);
  });

  it("exits 2 for a missing policies directory", async () => {
    const r = await runCli(["scan", "--policies", join(dir, "nope")]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("nope");
  });

  it("exits 2 on unknown flags", async () => {
    const r = await runCli(["scan", "--frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--frobnicate");
  });
});
