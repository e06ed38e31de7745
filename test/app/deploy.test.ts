/**
 * What ships with the App: the manifest asks for the least the features
 * need and subscribes to exactly the events with handlers; deploy/app
 * builds with the real kustomize, validates against the Kubernetes schemas,
 * and starts the server this repository has.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { HANDLED_EVENTS } from "../../src/app/index.ts";
import { validateTree } from "../../src/validate/validate.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const manifest = parse(readFileSync(join(ROOT, "app.yml"), "utf8")) as {
  default_events: string[];
  default_permissions: Record<string, string>;
  hook_attributes: { url: string };
};

describe("app.yml", () => {
  it("subscribes to exactly the events the App handles (installation events come unasked)", () => {
    const handled = new Set(
      HANDLED_EVENTS.map((e) => e.split(".")[0]!).filter((e) => !e.startsWith("installation")),
    );
    expect([...manifest.default_events].sort()).toEqual([...handled].sort());
    expect(manifest.hook_attributes.url).toMatch(/\/api\/github\/webhooks$/);
  });

  it.each<[string, string, string]>([
    ["contents", "write", "staging bumps and bot branches are pushed"],
    ["pull_requests", "write", "update and promotion requests are opened, updated and closed"],
    ["issues", "write", "the dashboard issue and command replies"],
    ["checks", "write", "the validate check run (and reading checks for the promotion gate)"],
    ["statuses", "read", "commit statuses for the promotion gate"],
    ["packages", "read", "registry_package events"],
    ["metadata", "read", "collaborator permissions for commands"],
  ])("least privilege: %s is %s because %s", (permission, level) => {
    expect(manifest.default_permissions[permission]).toBe(level);
  });

  it("least privilege: nothing else is asked for", () => {
    expect(Object.keys(manifest.default_permissions).sort()).toEqual([
      "checks",
      "contents",
      "issues",
      "metadata",
      "packages",
      "pull_requests",
      "statuses",
    ]);
  });
});

describe("deploy/app", () => {
  it("builds with kustomize and every object matches its schema", async () => {
    const cache =
      process.env.SHIPMATE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "shipmate");
    const env = { ...process.env, PATH: `${join(cache, "bin")}:${process.env.PATH ?? ""}` };
    const report = await validateTree(join(ROOT, "deploy/app"), { env });
    expect(report.problems).toEqual([]);
    expect(report.stats.builds).toBeGreaterThan(0);
  });

  it("runs the App server of this repository with the settings it reads", () => {
    const docs = parseAllDocuments(readFileSync(join(ROOT, "deploy/app/deployment.yaml"), "utf8")).map((d) =>
      d.toJS(),
    );
    const container = docs[0].spec.template.spec.containers[0] as {
      command: string[];
      env: { name: string }[];
    };
    expect(container.command).toEqual(["node", "/app/src/app/server.ts"]);
    expect(existsSync(join(ROOT, "src/app/server.ts"))).toBe(true);
    const names = container.env.map((e) => e.name);
    for (const name of ["APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET", "SHIPMATE_WEBHOOK_SECRET", "HOST", "PORT"])
      expect(names).toContain(name);
  });
});
