/**
 * The agent's BuildFailed message: one line, paths relative to the source
 * root (never the agent's working directories), bounded in length, with the
 * real kustomize binary.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildFailureMessage, Renderer } from "../../src/agent/render.ts";
import { tempDir } from "../infra/git.ts";

function checkout(files: Record<string, string>): { root: string; scratch: string } {
  const base = tempDir("shipmate-agent-work-");
  const root = join(base, "checkout");
  const scratch = join(base, "scratch");
  mkdirSync(scratch, { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return { root, scratch };
}

async function failure(
  files: Record<string, string>,
  spec: Record<string, unknown>,
): Promise<{ message: string; root: string; scratch: string }> {
  const { root, scratch } = checkout(files);
  const err = await new Renderer()
    .render({ root, scratch, name: "web", namespace: "flux-system", spec }, async () => undefined)
    .catch((e: Error) => e);
  expect(err).toBeInstanceOf(Error);
  return { message: (err as Error).message, root, scratch };
}

describe("BuildFailed: one line, relative paths, bounded", () => {
  it.each<[string, Record<string, string>, Record<string, unknown>, RegExp]>([
    [
      "a missing resource names it relative to the source root",
      { "apps/web/kustomization.yaml": "resources:\n  - deployment.yaml\n" },
      { path: "./apps/web" },
      /^kustomize build failed: apps\/web\/deployment\.yaml does not exist$/,
    ],
    [
      "an invalid resource inside an overlay the agent generated",
      {
        "apps/web/kustomization.yaml": "resources:\n  - bad.yaml\n",
        "apps/web/bad.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: [${'"v",'.repeat(4000)}\n`,
      },
      { path: "./apps/web", targetNamespace: "web" },
      /^kustomize build failed: .+/,
    ],
  ])("%s", async (_rule, files, spec, want) => {
    const { message, root, scratch } = await failure(files, spec);
    expect(message).toMatch(want);
    expect(message).not.toContain("\n");
    expect(message).not.toContain(root);
    expect(message).not.toContain(scratch);
    expect(message).not.toMatch(/\/tmp\//);
    expect(message.length).toBeLessThanOrEqual(300);
  });

  it.each<[string, string, string]>([
    [
      "klog wrapping and the working directory are dropped",
      "E1206 10:00:00.000000 1 run.go:72] \"command failed\" err=<\n\terror: accumulating resources from '/w/src/apps/x.yaml': open /w/src/apps/x.yaml: no such file\n>\n",
      "kustomize build failed: accumulating resources from 'apps/x.yaml': open apps/x.yaml: no such file",
    ],
    [
      "an overlay folder of the agent's scratch is named as the overlay",
      "Error: trouble configuring builtin PatchTransformer: /w/scratch/overlay-ns-web/kustomization.yaml: bad patch\n",
      "kustomize build failed: trouble configuring builtin PatchTransformer: (generated overlay)/kustomization.yaml: bad patch",
    ],
    [
      "a page of text is one bounded line",
      `Error: ${"word ".repeat(500)}`,
      `kustomize build failed: ${"word ".repeat(57).slice(0, 275)}…`,
    ],
  ])("message: %s", (_rule, stderr, want) => {
    expect(buildFailureMessage(stderr, "/w/src", "/w/scratch")).toBe(want);
  });
});
