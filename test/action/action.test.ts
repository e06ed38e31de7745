/**
 * The bundled Action (dist/index.js) run as a GitHub runner runs it, against
 * the real registry, a real git remote over smart HTTP (basic auth with the
 * token input) and, for pull requests, the OpenAPI-validated fake GitHub
 * over that same repository.
 */
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GitBackedGitHubState } from "../app/github.ts";
import { deployment, fleetFiles, fluxPolicy } from "../helpers/fleet.ts";
import { type GitHttpServer, git, show, startGitHttpServer, tempDir } from "../infra/git.ts";
import { type OpenApiFake, startFakeGitHub } from "../infra/openapi-forge.ts";
import { seedTags, startRegistry, type TestRegistry } from "../infra/registry.ts";
import { type ActionRun, runAction } from "./runner.ts";

const TOKEN = `ghs_${randomBytes(12).toString("hex")}`;

let registry: TestRegistry;
let gitServer: GitHttpServer;
let image: string;
const cleanup: string[] = [];
const fakes: OpenApiFake[] = [];

beforeAll(async () => {
  registry = await startRegistry();
  await seedTags(registry, "team/app", ["1.0.0", "1.1.0", "2.0.0-rc.1"]);
  image = `${registry.host}/team/app`;
  gitServer = await startGitHttpServer({ user: "x-access-token", password: TOKEN });
});

afterAll(async () => {
  for (const f of fakes) await f.close();
  await registry?.stop();
  await gitServer?.close();
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

afterEach(() => {
  for (const f of fakes) expect(f.violations.splice(0)).toEqual([]);
});

let repos = 0;
/** A fleet repository on the git server and a workspace cloned from it, as actions/checkout leaves one. */
function checkout(files: Record<string, string> = fleetFiles(image)) {
  const name = `fleet-${++repos}`;
  const url = gitServer.createRepo(name, files);
  const bare = join(gitServer.root, `${name}.git`);
  const parent = tempDir("shipmate-workspace-");
  cleanup.push(parent);
  const workspace = join(parent, "repo");
  // Cloned from the bare path: a synchronous git over HTTP would wait on this very process's server.
  git(parent, ["clone", "--quiet", bare, workspace]);
  // actions/checkout keeps no credentials in the URL either; the token input authenticates pushes.
  git(workspace, ["remote", "set-url", "origin", url]);
  return { name, url, bare, workspace };
}

async function fakeGitHub(bare: string) {
  const st = new GitBackedGitHubState("acme", "fleet", bare);
  const fake = await startFakeGitHub(st);
  fakes.push(fake);
  return { st, fake, env: { GITHUB_REPOSITORY: "acme/fleet", GITHUB_API_URL: `${fake.url}/api/v3` } };
}

/** The token may only ever appear in the line that asks the runner to mask it. */
function expectMasked(run: ActionRun): void {
  expect(run.commands.filter((c) => c.command === "add-mask").map((c) => c.message)).toEqual([TOKEN]);
  const elsewhere = `${run.stdout.replace(`::add-mask::${TOKEN}`, "")}${run.stderr}${run.summary}${JSON.stringify(run.outputs)}`;
  expect(elsewhere).not.toContain(TOKEN);
}

const errors = (run: ActionRun) => run.commands.filter((c) => c.command === "error");

describe("the Action (dist/index.js as the runner runs it)", () => {
  it("update: scans, pushes the new tag to the branch, and reports it", async () => {
    const repo = checkout();
    const run = await runAction(
      { command: "update", policies: "policies/staging" },
      { workspace: repo.workspace, token: TOKEN },
    );
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const head = git(repo.bare, ["rev-parse", "main"]).trim();
    expect(run.outputs.commit).toBe(head);
    expect(run.outputs["pull-request-url"]).toBe("");
    expect(JSON.parse(run.outputs.changes ?? "")).toEqual([
      {
        policy: "flux-system:app-staging",
        file: "apps/staging/app/deployment.yaml",
        line: 17,
        old: `${image}:1.0.0`,
        new: `${image}:1.1.0`,
        mode: "push",
      },
    ]);
    expect(show(repo.bare, "main", "apps/staging/app/deployment.yaml")).toContain(`${image}:1.1.0 #`);
    expect(show(repo.bare, "main", "apps/production/app/deployment.yaml")).toContain(`${image}:1.0.0 #`);
    expect(git(repo.bare, ["log", "-1", "--format=%an <%ae>", "main"]).trim()).toBe(
      "github-actions[bot] <41898282+github-actions[bot]@users.noreply.github.com>",
    );
    expect(run.summary).toContain("## shipmate update");
    expect(run.summary).toContain(
      `| \`flux-system:app-staging\` | apps/staging/app/deployment.yaml:17 | \`${image}:1.0.0\` | \`${image}:1.1.0\` | pushed |`,
    );
    expect(run.summary).toContain(`Pushed \`${head}\` to \`main\`.`);
    expectMasked(run);
  });

  it("update: without a policies input, only shipmate.yaml's first environment is scanned; a rerun changes nothing", async () => {
    const repo = checkout();
    const first = await runAction({ command: "update" }, { workspace: repo.workspace, token: TOKEN });
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(JSON.parse(first.outputs.changes ?? "").map((c: { policy: string }) => c.policy)).toEqual([
      "flux-system:app-staging",
    ]);
    const head = git(repo.bare, ["rev-parse", "main"]).trim();
    git(repo.workspace, ["pull", "--quiet", "--ff-only", repo.bare, "main"]);
    const again = await runAction({ command: "update" }, { workspace: repo.workspace, token: TOKEN });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.outputs).toMatchObject({ changes: "[]", commit: "" });
    expect(git(repo.bare, ["rev-parse", "main"]).trim()).toBe(head);
    expect(again.summary).toContain("Everything is up to date (1 policies scanned).");
  });

  it("update: a tree over the parallel threshold is updated on worker threads inside the bundle", async () => {
    // 2.4 MB of manifests with markers: the engine spreads them over worker threads (update-worker.js).
    const padding = `# ${"x".repeat(98)}\n`.repeat(60);
    const files: Record<string, string> = { ...fleetFiles(image) };
    for (let i = 0; i < 400; i++)
      files[`apps/staging/app/many/d${i}.yaml`] =
        padding + deployment(`app${i}`, "staging", image, "1.0.0", "app-staging");
    const repo = checkout(files);
    const run = await runAction(
      { command: "update", policies: "policies/staging" },
      { workspace: repo.workspace, token: TOKEN },
    );
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(JSON.parse(run.outputs.changes ?? "")).toHaveLength(401);
    expect(show(repo.bare, "main", "apps/staging/app/many/d399.yaml")).toContain(`${image}:1.1.0 #`);
    expect(run.outputs.commit).toBe(git(repo.bare, ["rev-parse", "main"]).trim());
  });

  it("update: dry-run reports the change and pushes nothing", async () => {
    const repo = checkout();
    const before = git(repo.bare, ["rev-parse", "main"]).trim();
    const run = await runAction(
      { command: "update", policies: "policies/staging", "dry-run": "true" },
      { workspace: repo.workspace, token: TOKEN },
    );
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.outputs.commit).toBe("");
    expect(JSON.parse(run.outputs.changes ?? "")).toHaveLength(1);
    expect(run.summary).toContain("Would change 1 image reference:");
    expect(git(repo.bare, ["rev-parse", "main"]).trim()).toBe(before);
    expect(git(repo.workspace, ["status", "--porcelain"])).toBe("");
  });

  it("update: mode pull-request opens a pull request on GitHub and leaves the branch alone", async () => {
    const repo = checkout();
    const { st, env } = await fakeGitHub(repo.bare);
    const before = git(repo.bare, ["rev-parse", "main"]).trim();
    const run = await runAction(
      { command: "update", policies: "policies/staging", mode: "pull-request", labels: "shipmate, staging" },
      { workspace: repo.workspace, token: TOKEN, env },
    );
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.outputs["pull-request-url"]).toBe("https://github.example.test/acme/fleet/pull/1");
    expect(run.outputs.commit).toBe("");
    expect(git(repo.bare, ["rev-parse", "main"]).trim()).toBe(before);
    const [pr] = st.pulls;
    expect(pr).toMatchObject({
      head: "shipmate/update-main",
      base: "main",
      state: "open",
      labels: ["shipmate", "staging"],
    });
    expect(show(repo.bare, "shipmate/update-main", "apps/staging/app/deployment.yaml")).toContain(
      `${image}:1.1.0 #`,
    );
    expect(run.summary).toContain(
      "Pull request [#1](https://github.example.test/acme/fleet/pull/1): opened.",
    );
    expectMasked(run);
  });

  it("promote: the target is the environment whose policies folder is given (scaffolded workflows)", async () => {
    const repo = checkout(fleetFiles(image, { staging: "1.1.0", production: "1.0.0" }));
    const { st, env } = await fakeGitHub(repo.bare);
    const run = await runAction(
      { command: "promote", policies: "policies/production", mode: "pull-request" },
      { workspace: repo.workspace, token: TOKEN, env },
    );
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(JSON.parse(run.outputs.changes ?? "")).toEqual([
      { app: "app", image, from: "1.0.0", to: "1.1.0", files: ["apps/production/app/deployment.yaml"] },
    ]);
    expect(run.outputs["pull-request-url"]).toBe("https://github.example.test/acme/fleet/pull/1");
    expect(st.pulls[0]).toMatchObject({ head: "shipmate/promote-production", state: "open" });
    expect(show(repo.bare, "shipmate/promote-production", "apps/production/app/deployment.yaml")).toContain(
      `${image}:1.1.0 #`,
    );
    expect(run.summary).toContain("## shipmate promote staging → production");
    expect(run.summary).toContain(`| app | ${image} | \`1.0.0\` | \`1.1.0\` |`);
  });

  it("scan: outputs every selection; a policy whose repository is missing is annotated at its file and fails the step", async () => {
    const repo = checkout({
      ...fleetFiles(image),
      "policies/staging/missing.yaml": fluxPolicy("missing", `${registry.host}/team/missing`),
    });
    const run = await runAction(
      { command: "scan", policies: "policies/staging" },
      { workspace: repo.workspace, token: TOKEN },
    );
    expect(run.code).toBe(1);
    const rows = JSON.parse(run.outputs.changes ?? "") as { policy: string; tag?: string; error?: string }[];
    expect(rows.find((r) => r.policy === "flux-system:app-staging")).toMatchObject({ image, tag: "1.1.0" });
    expect(rows.find((r) => r.policy === "flux-system:missing")?.error).toMatch(/team\/missing/);
    const warning = run.commands.find((c) => c.command === "warning");
    expect(warning?.properties).toMatchObject({
      file: "policies/staging/missing.yaml",
      title: "no selection",
    });
    expect(run.summary).toContain("1 of 2 policies selected an image.");
    expect(errors(run).map((e) => e.message)).toEqual([
      "shipmate scan finished with problems (see the annotations)",
    ]);
  });

  it("an invalid policy is an error annotation on its file and line, and nothing is pushed", async () => {
    const repo = checkout({
      ...fleetFiles(image),
      "policies/staging/broken.yaml": fluxPolicy("broken", image, "not a range"),
    });
    const before = git(repo.bare, ["rev-parse", "main"]).trim();
    const run = await runAction(
      { command: "update", policies: "policies/staging" },
      { workspace: repo.workspace, token: TOKEN },
    );
    expect(run.code).toBe(1);
    const [annotation] = errors(run);
    expect(annotation?.properties).toMatchObject({
      file: "policies/staging/broken.yaml",
      line: "20",
      title: "invalid policy",
    });
    expect(annotation?.message).toMatch(/range/);
    expect(git(repo.bare, ["rev-parse", "main"]).trim()).toBe(before);
  });

  it("a token the remote refuses: the step fails with one line, and the token is never printed", async () => {
    const repo = checkout();
    const wrong = `ghs_${randomBytes(12).toString("hex")}`;
    const run = await runAction(
      { command: "update", policies: "policies/staging", token: wrong },
      { workspace: repo.workspace, token: TOKEN },
    );
    expect(run.code).toBe(1);
    expect(errors(run)).toHaveLength(1);
    expect(errors(run)[0]?.message).toMatch(/push|fetch|authentication|401/i);
    expect(run.stdout.replace(`::add-mask::${wrong}`, "") + run.stderr).not.toContain(wrong);
  });

  it.each<[string, Record<string, string>, RegExp]>([
    [
      "an unknown command",
      { command: "deploy" },
      /input command must be scan, update, promote or push-artifact, got "deploy"/,
    ],
    ["an unknown mode", { command: "update", mode: "sideways" }, /input mode must be push or pull-request/],
    [
      "a dry-run that is not a boolean",
      { command: "update", "dry-run": "maybe" },
      /input dry-run must be true or false/,
    ],
    ["promote without a target", { command: "promote" }, /promote needs the to input/],
    [
      "a promotion target that does not exist",
      { command: "promote", to: "qa", from: "staging" },
      /environment "qa" is not declared/,
    ],
  ])("bad input: %s fails the step with one error", async (_name, inputs, message) => {
    const repo = checkout();
    const run = await runAction(inputs, { workspace: repo.workspace, token: TOKEN });
    expect(run.code).toBe(1);
    expect(errors(run)).toHaveLength(1);
    expect(errors(run)[0]?.message).toMatch(message);
  });
});

describe("action.yml", () => {
  it("runs dist/index.js on node24 and declares the inputs the issue asks for", async () => {
    const { actionYml } = await import("./runner.ts");
    const yml = actionYml();
    expect(yml.runs).toEqual({ using: "node24", main: "dist/index.js" });
    for (const name of [
      "command",
      "policies",
      "path",
      "mode",
      "from",
      "to",
      "token",
      "dry-run",
      "insecure-registries",
    ])
      expect(Object.keys(yml.inputs)).toContain(name);
    expect(Object.keys((yml as unknown as { outputs: object }).outputs).sort()).toEqual([
      "changes",
      "commit",
      "pull-request-url",
    ]);
  });
});
