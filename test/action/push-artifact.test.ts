/**
 * The Action's push-artifact command, run from dist/ as a runner does,
 * against Debian's docker-registry with htpasswd auth: the artifact lands
 * in Flux's format with the run's repository and commit as annotations.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { FLUX_CONTENT_MEDIA_TYPE } from "../../src/registry/artifact.ts";
import { envKey } from "../../src/registry/credentials.ts";
import { startRegistry, type TestRegistry } from "../infra/registry.ts";
import { runAction } from "./runner.ts";

vi.setConfig({ testTimeout: 60_000 });

let reg: TestRegistry;
const workspace = mkdtempSync(join(tmpdir(), "shipmate-action-artifact-"));
beforeAll(async () => {
  reg = await startRegistry({ auth: "htpasswd" });
  mkdirSync(join(workspace, "deploy"), { recursive: true });
  writeFileSync(
    join(workspace, "deploy", "app.yaml"),
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
  );
});
afterAll(async () => {
  await reg?.stop();
  rmSync(workspace, { recursive: true, force: true });
});

describe("action: push-artifact", () => {
  it("pushes the path folder with the run's repository and <branch>@sha1:<commit>, and outputs the digest", async () => {
    const env = {
      [`${envKey(reg.host)}_USERNAME`]: reg.admin.username,
      [`${envKey(reg.host)}_PASSWORD`]: reg.admin.password,
      GITHUB_SERVER_URL: "https://github.com",
      GITHUB_REPOSITORY: "org/fleet",
      GITHUB_REF_NAME: "main",
      GITHUB_SHA: "0123456789abcdef0123456789abcdef01234567",
    };
    const run = await runAction(
      { command: "push-artifact", artifact: `oci://${reg.host}/org/fleet-manifests:main`, path: "deploy" },
      { workspace, token: "t", env },
    );
    expect(run.code).toBe(0);
    const [change] = JSON.parse(run.outputs.changes ?? "[]");
    expect(change.artifact).toBe(`${reg.host}/org/fleet-manifests:main@${change.digest}`);
    const res = await fetch(`${reg.url}/v2/org/fleet-manifests/manifests/main`, {
      headers: { ...reg.authHeaders([]), Accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    expect(res.headers.get("docker-content-digest")).toBe(change.digest);
    const m = (await res.json()) as { layers: { mediaType: string }[]; annotations: Record<string, string> };
    expect(m.layers.map((l) => l.mediaType)).toEqual([FLUX_CONTENT_MEDIA_TYPE]);
    expect(m.annotations).toMatchObject({
      "org.opencontainers.image.source": "https://github.com/org/fleet",
      "org.opencontainers.image.revision": "main@sha1:0123456789abcdef0123456789abcdef01234567",
    });
  });

  it("without the artifact input the step fails with one line", async () => {
    const run = await runAction({ command: "push-artifact" }, { workspace, token: "t" });
    expect(run.code).not.toBe(0);
    const errors = run.commands.filter((c) => c.command === "error");
    expect(errors.map((e) => e.message)).toEqual([
      "push-artifact needs the artifact input, oci://HOST/REPO:TAG",
    ]);
  });
});
