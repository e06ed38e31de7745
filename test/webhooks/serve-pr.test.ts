/**
 * `shipmate serve` delivering by pull request: environments in
 * pull-request mode get a request on the forge (the OpenAPI-validated fake
 * GitHub over the real git remote), updated in place by the next push,
 * while the branch itself is left alone.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GitBackedGitHubState } from "../app/github.ts";
import { FLEET_YAML, fleetFiles } from "../helpers/fleet.ts";
import { type GitHttpServer, git, show, startGitHttpServer, tempDir } from "../infra/git.ts";
import { type OpenApiFake, startFakeGitHub } from "../infra/openapi-forge.ts";
import { seedTags, startRegistry, type TestRegistry } from "../infra/registry.ts";
import { freePort, type ServeProcess, spawnServe } from "./helpers.ts";

const SECRET = randomBytes(16).toString("hex");
const TOKEN = randomBytes(12).toString("hex");

let registry: TestRegistry;
let gitServer: GitHttpServer;
let fake: OpenApiFake;
let st: GitBackedGitHubState;
let serve: ServeProcess;
let endpoint: string;
let bare: string;
let image: string;

beforeAll(async () => {
  registry = await startRegistry();
  await seedTags(registry, "team/app", ["1.0.0", "1.1.0"]);
  image = `${registry.host}/team/app`;
  gitServer = await startGitHttpServer({ user: "x-access-token", password: TOKEN });
  // Staging, too, is delivered by pull request in this fleet.
  const files = {
    ...fleetFiles(image),
    "shipmate.yaml": FLEET_YAML.replace("mode: push", "mode: pull-request"),
  };
  const url = gitServer.createRepo("fleet", files);
  bare = join(gitServer.root, "fleet.git");
  st = new GitBackedGitHubState("acme", "fleet", bare);
  fake = await startFakeGitHub(st);
  const port = await freePort();
  endpoint = `http://127.0.0.1:${port}/hooks/registry`;
  serve = spawnServe(
    [
      "--repo",
      url,
      "--listen",
      `127.0.0.1:${port}`,
      "--no-cache",
      "--forge",
      "github",
      "--forge-url",
      fake.url,
      "--forge-repo",
      "acme/fleet",
    ],
    {
      SHIPMATE_WEBHOOK_SECRET: SECRET,
      SHIPMATE_GIT_TOKEN: TOKEN,
      GITHUB_TOKEN: `ghs_${TOKEN}`,
      XDG_CACHE_HOME: tempDir("shipmate-serve-cache-"),
    },
  );
  await serve.waitFor((l) => l.msg === "listening for registry webhooks");
});

afterAll(async () => {
  await serve?.stop();
  await fake?.close();
  await registry?.stop();
  await gitServer?.close();
});

async function notify(tag: string): Promise<void> {
  const from = serve.lines.length;
  const res = await fetch(endpoint, {
    method: "POST",
    headers: {
      authorization: `Bearer ${SECRET}`,
      "content-type": "application/vnd.docker.distribution.events.v1+json",
    },
    body: JSON.stringify({
      events: [{ action: "push", target: { repository: "team/app", tag }, request: { host: registry.host } }],
    }),
  });
  expect(res.status).toBe(202);
  await serve.waitFor((l) => /^refreshed|refresh failed/.test(l.msg), 15_000, from);
}

describe("shipmate serve, pull-request mode", () => {
  it("a pushed tag opens one request, the next one updates it; the branch is left alone", async () => {
    const main = git(bare, ["rev-parse", "main"]).trim();
    await notify("1.1.0");
    expect(st.pulls).toHaveLength(1);
    expect(st.pulls[0]).toMatchObject({ head: "shipmate/update-main", base: "main", state: "open" });
    expect(show(bare, "shipmate/update-main", "apps/staging/app/deployment.yaml")).toContain(
      `${image}:1.1.0 #`,
    );

    await seedTags(registry, "team/app", ["1.2.0"]);
    await notify("1.2.0");
    expect(st.pulls).toHaveLength(1);
    expect(st.pulls[0]?.title).toContain("1.2.0");
    expect(show(bare, "shipmate/update-main", "apps/staging/app/deployment.yaml")).toContain(
      `${image}:1.2.0 #`,
    );
    expect(git(bare, ["rev-parse", "main"]).trim()).toBe(main);
    expect(serve.lines.filter((l) => /^refresh failed/.test(l.msg))).toEqual([]);
    expect(fake.violations).toEqual([]);
  });
});
