/**
 * Notifications of runs (shipmate.yaml `notifications:`), for a team with
 * no cluster: an update pushed through runUpdate — the one engine the CLI,
 * the Action and the App call — posts a Slack-style message and a generic
 * webhook to receivers on 127.0.0.1, each provider getting only the events
 * it lists; a provider whose address variable is unset is one warning, the
 * run's outcome stands; an inline webhook address is refused with its line.
 * Real registry, real git over smart HTTP.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { parseFleet } from "../../src/config/fleet.ts";
import { ConfigError } from "../../src/errors.ts";
import { promoteEvents } from "../../src/notify/run.ts";
import type { PromoteResult } from "../../src/promote/index.ts";
import { runUpdate } from "../../src/run/update.ts";
import { runCli } from "../helpers/cli.ts";
import { FLEET_YAML, fleetFiles } from "../helpers/fleet.ts";
import { type GitHttpServer, startGitHttpServer, tempDir } from "../infra/git.ts";
import { seedTags, startRegistry, type TestRegistry } from "../infra/registry.ts";
import { type Receiver, startReceiver } from "./receiver.ts";
import { SlackIncomingWebhook } from "./slack-schema.ts";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const TOKEN = randomBytes(12).toString("hex");
let registry: TestRegistry;
let gitServer: GitHttpServer;
let rx: Receiver;
let image: string;

beforeAll(async () => {
  [registry, gitServer, rx] = await Promise.all([
    startRegistry(),
    startGitHttpServer({ user: "x-access-token", password: TOKEN }),
    startReceiver(),
  ]);
  await seedTags(registry, "team/app", ["1.0.0", "1.1.0"]);
  image = `${registry.host}/team/app`;
});

afterAll(async () => {
  await Promise.all([registry?.stop(), gitServer?.close(), rx?.close()]);
});

const NOTIFICATIONS = `  notifications:
    providers:
      - name: team-chat
        type: slack
        channel: "#deploys"
        address: { env: TEAM_SLACK_URL }
        events: [bump-pushed, promoted]
      - name: audit
        type: generic-hmac
        address: { env: AUDIT_URL }
        token: { env: AUDIT_KEY }
        events: [request-opened]
      - name: teams
        type: msteams
        address: { env: TEAMS_URL_NOT_SET }
`;

describe("shipmate.yaml notifications", () => {
  it("an update pushed: the providers that want it hear of it; an unusable one is a warning", async () => {
    const files = fleetFiles(image);
    files["shipmate.yaml"] = `${FLEET_YAML}${NOTIFICATIONS}`;
    const url = gitServer.createRepo("notify-fleet", files);
    const result = await runUpdate({
      repo: url,
      branch: "main",
      policies: { kind: "repo" },
      dryRun: false,
      scan: { cacheDir: false },
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        SHIPMATE_GIT_TOKEN: TOKEN,
        XDG_CACHE_HOME: join(tempDir("shipmate-notify-cache-"), "cache"),
        TEAM_SLACK_URL: `${rx.url}/services/T1/B1/team-secret-path`,
        AUDIT_URL: `${rx.url}/audit`,
        AUDIT_KEY: "audit-hmac-key",
      },
    });
    expect(result.push?.pushed).toBe(true);
    const commit = result.push?.commit as string;

    // Only the bump: the audit provider wants request-opened, which did not happen.
    expect(rx.requests.map((r) => r.path)).toEqual(["/services/T1/B1/team-secret-path"]);
    const body = SlackIncomingWebhook.parse(rx.requests[0]?.json);
    expect(body).toMatchObject({ channel: "#deploys", username: "shipmate" });
    expect(body.attachments?.[0]).toMatchObject({
      author_name: "fleet/fleet.shipmate",
      color: "good",
      fields: [{ title: "revision", value: `main@sha1:${commit}`, short: false }],
    });
    expect(body.attachments?.[0]?.text).toBe(
      `Pushed ${commit.slice(0, 7)} to main\n- flux-system:app-staging: ${image}:1.0.0 → ${image}:1.1.0 (apps/staging/app/deployment.yaml)`,
    );

    // The unusable provider: one warning of shipmate.yaml, naming the variable, not failing the run.
    expect(result.notifications).toEqual({
      sent: 1,
      warnings: ["shipmate.yaml notifications teams: address: $TEAMS_URL_NOT_SET is not set"],
    });
    expect(result.problems.filter((p) => p.severity === "error")).toEqual([]);
    expect(result.problems.find((p) => p.kind === "notification")).toMatchObject({
      file: "shipmate.yaml",
      severity: "warning",
    });
  });

  it("the CLI: the same message, and the unusable provider as one warning line on stderr", async () => {
    rx.requests.length = 0;
    const files = fleetFiles(image);
    files["shipmate.yaml"] = `${FLEET_YAML}${NOTIFICATIONS}`;
    const url = gitServer.createRepo("notify-fleet-cli", files);
    const r = await runCli(["update", "--repo", url, "--push", "--no-cache"], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        SHIPMATE_GIT_TOKEN: TOKEN,
        XDG_CACHE_HOME: join(tempDir("shipmate-notify-cache-"), "cache"),
        TEAM_SLACK_URL: `${rx.url}/services/T1/B1/team-secret-path`,
      },
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      "warning: shipmate.yaml: shipmate.yaml notifications teams: address: $TEAMS_URL_NOT_SET is not set\n",
    );
    expect(r.stdout + r.stderr).not.toContain("team-secret-path");
    expect(rx.requests.map((q) => q.path)).toEqual(["/services/T1/B1/team-secret-path"]);
    expect(SlackIncomingWebhook.parse(rx.requests[0]?.json).attachments?.[0]?.text).toMatch(
      /^Pushed [0-9a-f]{7} to main\n/,
    );
  });

  it("a promotion pushed and a promotion request opened, as events", () => {
    const fleet = parseFleet(`${FLEET_YAML}${NOTIFICATIONS}`);
    const base: PromoteResult = {
      from: "staging",
      to: "production",
      revision: "abc",
      mode: "push",
      changes: [
        {
          app: "app",
          image: "reg/app",
          repository: "reg/app",
          from: "1.0.0",
          to: "1.1.0",
          files: ["a.yaml"],
        },
      ],
      skipped: [],
      problems: [],
      gates: [],
      gateState: "passed",
      status: "pushed",
      commit: "0123456789abcdef0123456789abcdef01234567",
      requests: [],
      forgeRequests: 0,
    };
    expect(
      promoteEvents(fleet, base).map((e) => [e.name, e.event.reason, e.event.message, e.event.metadata]),
    ).toEqual([
      [
        "promoted",
        "Promoted",
        "Promoted staging → production (0123456)\n- app: reg/app 1.0.0 → 1.1.0",
        { revision: "sha1:0123456789abcdef0123456789abcdef01234567" },
      ],
    ]);
    const proposed = promoteEvents(fleet, {
      ...base,
      mode: "pull-request",
      status: "proposed",
      requests: [
        {
          branch: "shipmate/promote-production",
          apps: [],
          outcome: "opened",
          number: 7,
          url: "http://forge/pr/7",
        },
        { branch: "shipmate/promote-production-x", apps: [], outcome: "updated", number: 8 },
        { branch: "shipmate/promote-production-y", apps: [], outcome: "opened", number: 9, merged: true },
      ],
    });
    expect(proposed.map((e) => [e.name, e.event.message])).toEqual([
      [
        "request-opened",
        "Opened promotion staging → production: #7 http://forge/pr/7\n- app: reg/app 1.0.0 → 1.1.0",
      ],
      ["request-opened", "Opened promotion staging → production: #9\n- app: reg/app 1.0.0 → 1.1.0"],
      ["request-merged", "Merged promotion staging → production: #9\n- app: reg/app 1.0.0 → 1.1.0"],
    ]);
  });

  it.each([
    [
      "an inline webhook address is refused (it is a secret)",
      "      - name: chat\n        type: slack\n        address: https://hooks.slack.com/services/T/B/x\n",
      "a slack address is a secret",
    ],
    [
      "an unknown provider type",
      "      - name: chat\n        type: telegram\n        address: { env: X }\n",
      "type",
    ],
    [
      "an unknown event",
      "      - name: chat\n        type: slack\n        address: { env: X }\n        events: [deployed]\n",
      "events",
    ],
    ["an unknown field", "      - name: chat\n        type: slack\n        webhook: { env: X }\n", "webhook"],
  ])("%s", (_name, entry, text) => {
    let err: unknown;
    try {
      parseFleet(`${FLEET_YAML}  notifications:\n    providers:\n${entry}`);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(text);
    expect((err as Error).message).not.toContain("hooks.slack.com");
  });

  it("a repository URL may be written as it is for commit-status providers", () => {
    const fleet = parseFleet(
      `${FLEET_YAML}  notifications:\n    providers:\n      - name: status\n        type: gitea\n        address: https://gitea.example.com/org/fleet\n        token: { file: /run/secrets/gitea }\n`,
    );
    expect(fleet.spec.notifications?.providers[0]?.address).toBe("https://gitea.example.com/org/fleet");
  });
});
