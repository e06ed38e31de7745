import { describe, expect, it } from "vitest";
import { annotations, batches, checkSummary, touchesFleet } from "../../src/app/checks.ts";
import { type AppCommand, mayCommand, parseCommand } from "../../src/app/commands.ts";
import { renderDashboard } from "../../src/app/dashboard.ts";
import { promotionReply } from "../../src/app/service.ts";
import type { PromoteResult } from "../../src/promote/index.ts";

describe("comment commands", () => {
  it.each<[string, string, AppCommand | undefined]>([
    ["rescan", "/shipmate rescan", { kind: "rescan" }],
    ["promote names the target", "/shipmate promote production", { kind: "promote", to: "production" }],
    [
      "the command may follow other lines",
      "LGTM\n\n  /shipmate promote prod-eu  ",
      { kind: "promote", to: "prod-eu" },
    ],
    ["only the first command counts", "/shipmate rescan\n/shipmate promote production", { kind: "rescan" }],
    ["a mention in a sentence is no command", "thanks, /shipmate rescan would help", undefined],
    ["another bot's prefix is no command", "/shipmates rescan", undefined],
    ["nothing after /shipmate asks for help", "/shipmate", { kind: "help" }],
    ["help", "/shipmate help", { kind: "help" }],
    [
      "rescan takes no arguments",
      "/shipmate rescan now",
      { kind: "help", problem: "`rescan` takes no arguments" },
    ],
    [
      "promote needs an environment",
      "/shipmate promote",
      { kind: "help", problem: "`promote` needs the environment to promote into" },
    ],
    [
      "environments are DNS labels",
      "/shipmate promote Prod",
      { kind: "help", problem: "`Prod` is not an environment name" },
    ],
    [
      "one environment at a time",
      "/shipmate promote a b",
      { kind: "help", problem: "`a b` is not an environment name" },
    ],
    ["unknown verbs are named", "/shipmate deploy", { kind: "help", problem: "unknown command `deploy`" }],
  ])("%s", (_name, body, command) => {
    expect(parseCommand(body)).toEqual(command);
  });

  it.each([
    ["admin", true],
    ["maintain", true],
    ["write", true],
    ["triage", false],
    ["read", false],
    ["none", false],
  ])("permission %s may command: %s", (permission, ok) => {
    expect(mayCommand(permission)).toBe(ok);
  });
});

describe("check run", () => {
  it.each<[string, string[], boolean]>([
    ["YAML manifests", ["apps/staging/app/deployment.yaml"], true],
    [".yml files", ["shipmate.yml"], true],
    ["files named Kustomization", ["apps/base/Kustomization"], true],
    ["code and docs only", ["src/main.go", "README.md"], false],
    ["nothing", [], false],
  ])("a change touching %s is validated: %s", (_name, files, yes) => {
    expect(touchesFleet(files)).toBe(yes);
  });

  it("annotations: 50 per request, files without a line point at line 1", () => {
    const findings = Array.from({ length: 120 }, (_, i) => ({
      file: `f${i}.yaml`,
      ...(i % 2 ? { line: i } : {}),
      message: `m${i}`,
    }));
    const all = annotations(findings, "shipmate validate");
    expect(all[0]).toEqual({
      path: "f0.yaml",
      start_line: 1,
      end_line: 1,
      annotation_level: "failure",
      message: "m0",
      title: "shipmate validate",
    });
    expect(all[1]?.start_line).toBe(1);
    expect(batches(all).map((b) => b.length)).toEqual([50, 50, 20]);
    expect(checkSummary(findings, "stats").title).toBe("120 problems in 120 files");
    expect(checkSummary([], "stats")).toEqual({ title: "The fleet repository is valid", summary: "stats" });
  });
});

describe("dashboard", () => {
  it("renders tracked images per environment, open requests and errors", () => {
    expect(
      renderDashboard({
        environments: ["staging", "production"],
        images: [
          {
            image: "docker.io/library/nginx",
            policies: ["flux-system:nginx: semver 1.x"],
            deployed: { staging: ["1.27.1"], production: ["1.27.0", "1.26.3"] },
            available: { version: "1.27.2" },
          },
          {
            image: "ghcr.io/acme/api",
            policies: ["apps:api: newest build"],
            deployed: {},
            available: { error: "no tags | none" },
          },
          {
            image: "ghcr.io/acme/web",
            policies: ["apps:web: digest of latest"],
            deployed: { staging: ["latest@sha256:ab"] },
          },
        ],
        requests: [
          {
            number: 12,
            url: "https://github.example.test/acme/fleet/pull/12",
            title: "Promote staging to production",
          },
        ],
        errors: ["apps:api: no tags"],
        updatedAt: "2026-01-01T00:00:00.000Z",
      }),
    ).toMatchSnapshot();
  });
});

describe("promotion replies", () => {
  const base: PromoteResult = {
    from: "staging",
    to: "production",
    revision: "abc",
    mode: "pull-request",
    changes: [
      {
        app: "web",
        image: "ghcr.io/acme/web",
        repository: "ghcr.io/acme/web",
        from: "1.0.0",
        to: "1.1.0",
        files: ["a.yaml"],
      },
    ],
    skipped: [],
    problems: [],
    gates: [],
    gateState: "passed",
    status: "proposed",
    requests: [
      {
        branch: "shipmate/promote-production",
        apps: ["web"],
        outcome: "opened",
        number: 3,
        url: "https://x.test/pull/3",
      },
    ],
    forgeRequests: 2,
  };
  it.each<[string, Partial<PromoteResult>, string]>([
    [
      "proposed",
      {},
      "**Promotion staging → production**: proposed in [#3](https://x.test/pull/3) (opened).\n\n- web: `ghcr.io/acme/web` 1.0.0 → 1.1.0",
    ],
    [
      "nothing to promote",
      { status: "nothing-to-promote", changes: [] },
      "**Promotion staging → production**: nothing to promote, production already runs what staging runs.",
    ],
    [
      "waiting for a gate",
      {
        status: "waiting",
        gateState: "waiting",
        gates: [
          {
            gate: "soak",
            state: "waiting",
            message: "staging has run these versions for 10m; soak needs 1h (50m left)",
          },
        ],
      },
      "**Promotion staging → production** is waiting for its gates:\n\n- soak (waiting): staging has run these versions for 10m; soak needs 1h (50m left)",
    ],
    [
      "blocked by a gate",
      {
        status: "blocked",
        gateState: "failed",
        gates: [{ gate: "checks", state: "failed", message: "checks failed on abc: e2e" }],
      },
      "**Promotion staging → production** is blocked by a gate:\n\n- checks (failed): checks failed on abc: e2e",
    ],
  ])("%s", (_name, over, reply) => {
    expect(promotionReply({ ...base, ...over })).toBe(reply);
  });
});
