import { execFile } from "node:child_process";
import { cp, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { TEMPLATES_DIR, TemplateError, Templates } from "../../src/scaffold/render.ts";
import { init } from "../../src/scaffold/scaffold.ts";
import { runCli } from "../helpers/cli.ts";
import { listFiles, tempDirs } from "./helpers.ts";

const git = promisify(execFile);
const tmp = tempDirs();

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of await listFiles(dir)) out[f] = await readFile(join(dir, f), "utf8");
  return out;
}

describe("shipmate init: bad input is one clear error and nothing is written", () => {
  it.each([
    [
      "a name that is not a DNS-1123 label",
      ["--env", "Prod"],
      'environment name "Prod" is not a DNS-1123 label',
    ],
    ["'..' in a name", ["--app", ".."], 'app name ".." may not contain "/" or ".."'],
    ["'/' in a name", ["--team", "a/b"], 'team name "a/b" may not contain "/" or ".."'],
    ["an unknown layout", ["--layout", "flat"], 'unknown layout "flat"'],
    ["an environment listed twice", ["--env", "qa", "--env", "qa"], 'environment "qa" is given twice'],
    ["an unknown flag", ["--colour"], "unknown flag --colour"],
  ])("%s", async (_rule, extra, message) => {
    const parent = await tmp();
    const out = join(parent, "fleet");
    const args = extra.includes("--layout") ? extra : ["--layout", "monorepo", ...extra];
    const r = await runCli(["init", ...args, "--out", out]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain(message);
    expect(await readdir(parent)).toEqual([]);
  });

  it("--out that is a file", async () => {
    const parent = await tmp();
    const file = join(parent, "fleet");
    await writeFile(file, "not a folder\n");
    const r = await runCli(["init", "--layout", "monorepo", "--out", file]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`shipmate init: --out ${file} is a file, not a directory`);
    expect(await readFile(file, "utf8")).toBe("not a folder\n");
    expect(await readdir(parent)).toEqual(["fleet"]);
  });

  it("a non-empty --out without --force, and existing files are never silently overwritten", async () => {
    const out = await tmp();
    await writeFile(join(out, "shipmate.yaml"), "mine\n");
    const r = await runCli(["init", "--layout", "monorepo", "--out", out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("is not empty; use --force");
    expect(await snapshot(out)).toEqual({ "shipmate.yaml": "mine\n" });
  });

  it("a template that renders invalid YAML fails before anything reaches the disk", async () => {
    const parent = await tmp();
    const templates = join(parent, "templates");
    await cp(TEMPLATES_DIR, templates, { recursive: true });
    await writeFile(join(templates, "partials/agent/sync.yaml.hbs"), "spec: [unclosed\n");
    const out = join(parent, "fleet");
    await expect(init({ layout: "repo-per-env", out, templates: new Templates(templates) })).rejects.toThrow(
      TemplateError,
    );
    expect(await readdir(parent)).toEqual(["templates"]);
  });
});

describe("shipmate init", () => {
  it("--force writes into a non-empty folder and names the files it replaced", async () => {
    const out = await tmp();
    await writeFile(join(out, "shipmate.yaml"), "mine\n");
    await writeFile(join(out, "NOTES.md"), "kept\n");
    const r = await runCli(["init", "--layout", "monorepo", "--out", out, "--force", "--no-git"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`replaced ${join(out, "shipmate.yaml")}`);
    expect(await readFile(join(out, "NOTES.md"), "utf8")).toBe("kept\n");
    expect(await readFile(join(out, "shipmate.yaml"), "utf8")).toContain("kind: Fleet");
  });

  it("--force where a file stands in the way of a folder: one line naming it, exit 1", async () => {
    const out = await tmp();
    await mkdir(join(out, "apps"));
    await writeFile(join(out, "apps/base"), "a file\n");
    const r = await runCli(["init", "--layout", "monorepo", "--out", out, "--force", "--no-git"]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      `shipmate init: cannot write ${join(out, "apps/base/hello/deployment.yaml")}: a file is in the way`,
    );
  });

  it("--dry-run lists the files and writes nothing", async () => {
    const parent = await tmp();
    const out = join(parent, "fleet");
    const r = await runCli(["init", "--layout", "repo-per-app", "--out", out, "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(join(out, "hello/deploy/staging/kustomization.yaml"));
    expect(r.stdout).toContain(join(out, "fleet/apps/production/hello.yaml"));
    expect(await readdir(parent)).toEqual([]);
  });

  it("multi-repository layouts write one git repository per folder, each with a first commit", async () => {
    const out = join(await tmp(), "fleet");
    const r = await runCli([
      "init",
      "--layout",
      "repo-per-team",
      "--out",
      out,
      "--team",
      "payments",
      "--team",
      "search",
    ]);
    expect(r.code).toBe(0);
    expect((await readdir(out)).sort()).toEqual(["fleet", "fleet-payments", "fleet-search"]);
    for (const repo of ["fleet", "fleet-payments", "fleet-search"]) {
      const dir = join(out, repo);
      const log = await git("git", ["log", "--format=%s"], { cwd: dir });
      expect(log.stdout.trim().split("\n")).toEqual(["Scaffold repo-per-team fleet with shipmate 0.1.0"]);
      const status = await git("git", ["status", "--porcelain"], { cwd: dir });
      expect(status.stdout).toBe("");
      const branch = await git("git", ["branch", "--show-current"], { cwd: dir });
      expect(branch.stdout.trim()).toBe("main");
    }
  });

  it("commits as shipmate when git has no author configured, leaving global config alone", async () => {
    const home = await tmp();
    const globalConfig = join(home, "gitconfig");
    await writeFile(globalConfig, "");
    const env = {
      HOME: home,
      XDG_CONFIG_HOME: home,
      GIT_CONFIG_GLOBAL: globalConfig,
      GIT_CONFIG_NOSYSTEM: "1",
    };
    const out = join(await tmp(), "fleet");
    const r = await runCli(["init", "--layout", "monorepo", "--out", out, "--branch", "trunk"], { env });
    expect(r.code).toBe(0);
    const log = await git("git", ["log", "--format=%an <%ae>"], {
      cwd: out,
      env: { ...process.env, ...env },
    });
    expect(log.stdout.trim()).toBe("shipmate <shipmate@localhost>");
    expect(await readFile(globalConfig, "utf8")).toBe("");
    const sync = await readFile(join(out, "clusters/staging/shipmate-system/sync.yaml"), "utf8");
    expect(sync).toContain('branch: "trunk"');
  });

  it("--git-url names the repositories and their siblings", async () => {
    const out = join(await tmp(), "out");
    await mkdir(out);
    const r = await runCli([
      "init",
      "--layout",
      "repo-per-env",
      "--out",
      out,
      "--git-url",
      "git@git.example.com:acme/platform.git",
      "--no-git",
    ]);
    expect(r.code).toBe(0);
    expect((await readdir(out)).sort()).toEqual(["platform-production", "platform-staging"]);
    const sync = await readFile(
      join(out, "platform-production/clusters/production/shipmate-system/sync.yaml"),
      "utf8",
    );
    expect(sync).toContain('url: "git@git.example.com:acme/platform-production.git"');
    const fleet = await readFile(join(out, "platform-production/shipmate.yaml"), "utf8");
    expect(fleet).toContain('url: "git@git.example.com:acme/platform-staging.git"');
  });
});
