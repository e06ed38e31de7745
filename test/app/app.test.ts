/**
 * The GitHub App end to end: signed deliveries into the App server, the
 * OpenAPI-validated fake GitHub as the only API it talks to, the real
 * registry, and the fleet repository as a real git remote over smart HTTP
 * authenticated with the installation token.
 */
import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { Workspace } from "../../src/git/workspace.ts";
import { hmacSignature } from "../../src/webhooks/auth.ts";
import { deployment, fleetFiles, fluxPolicy } from "../helpers/fleet.ts";
import { waitFor } from "../helpers/wait.ts";
import { type GitHttpServer, git, show, startGitHttpServer, tempDir } from "../infra/git.ts";
import { seedTags, startRegistry, type TestRegistry } from "../infra/registry.ts";
import * as E from "./events.ts";
import { type Harness, type HarnessOptions, startHarness } from "./harness.ts";

const TOKEN = `ghs_${randomBytes(12).toString("hex")}`;
let registry: TestRegistry;
let gitServer: GitHttpServer;
let image: string;
let h: Harness | undefined;
let names = 0;

beforeAll(async () => {
  registry = await startRegistry();
  await seedTags(registry, "team/app", ["1.0.0", "1.1.0"]);
  await seedTags(registry, "team/other", ["3.0.0"]);
  image = `${registry.host}/team/app`;
  gitServer = await startGitHttpServer({ user: "x-access-token", password: TOKEN });
});

afterAll(async () => {
  await registry?.stop();
  await gitServer?.close();
});

afterEach(async () => {
  if (!h) return;
  // Every request the App made, and every answer the fake gave, matched GitHub's description.
  const errs = h.logs.filter((l) => l.level >= 40).map((l) => l.msg);
  if (process.env.DEBUG_APP) console.log(JSON.stringify({ violations: h.fake.violations, errs }, null, 1));
  expect(h.fake.violations.splice(0)).toEqual([]);
  await h.close();
  h = undefined;
});

async function harness(opts: Partial<HarnessOptions> = {}): Promise<Harness> {
  h = await startHarness({
    git: gitServer,
    name: `fleet-${++names}`,
    files: fleetFiles(image),
    permissions: { alice: "write", mallory: "read", owner: "admin" },
    ...opts,
  });
  return h;
}

const eventually = async (ok: () => boolean, ms = 10_000): Promise<void> => {
  await waitFor(ok, { ms });
};

const head = (hh: Harness, branch = "main") => git(hh.repo.bare, ["rev-parse", branch]).trim();
const stagingFile = (hh: Harness, branch = "main") =>
  show(hh.repo.bare, branch, "apps/staging/app/deployment.yaml");
const commentsOn = (hh: Harness, n: number) => hh.st.commentsOn(hh.repo.fullName, n);

describe("webhook security", () => {
  it.each<[string, { signature?: false | string }, number]>([
    ["unsigned deliveries are refused with 401", { signature: false }, 401],
    [
      "a signature made with another secret is refused with 401",
      { signature: hmacSignature("another-secret", "{}") },
      401,
    ],
    ["a malformed signature is refused with 401", { signature: "sha256=zz" }, 401],
  ])("%s and nothing is done", async (_name, opts, status) => {
    const hh = await harness();
    const before = { api: hh.fake.requests.length, git: gitServer.requests.length, main: head(hh) };
    const res = await hh.deliver(
      "registry_package",
      E.registryPackagePublished(hh.repo, image, "1.1.0"),
      opts,
    );
    expect(res.status).toBe(status);
    await hh.app.service.idle();
    expect(hh.fake.requests.length).toBe(before.api);
    expect(gitServer.requests.length).toBe(before.git);
    expect(head(hh)).toBe(before.main);
    expect(hh.logs.some((l) => /delivery refused/.test(l.msg))).toBe(true);
  });

  it("a signed delivery over the size limit is refused with 413 before it is read", async () => {
    const hh = await harness({ options: { maxBodyBytes: 64 * 1024 } });
    const padded = { ...E.starCreated(hh.repo), padding: "x".repeat(100 * 1024) };
    const res = await hh.deliver("star", padded);
    expect(res.status).toBe(413);
    expect(hh.fake.requests).toEqual([]);
  });

  it("unknown events are acknowledged and logged, and nothing is done", async () => {
    const hh = await harness();
    const res = await hh.deliver("star", E.starCreated(hh.repo));
    expect(res.status).toBe(202);
    expect(JSON.parse(res.body)).toEqual({ ignored: true });
    const ping = await hh.deliver("ping", { zen: "Keep it logically awesome.", hook_id: 1 });
    expect(ping.status).toBe(200);
    await hh.app.service.idle();
    expect(hh.fake.requests).toEqual([]);
    expect(hh.logs.find((l) => l.event === "star.created")?.msg).toBe(
      "event ignored: shipmate does not act on it",
    );
  });

  it("a signed payload that is not what the event promises is a 400, not a crash", async () => {
    const hh = await harness();
    const res = await hh.deliver("push", { ref: 42 });
    expect(res.status).toBe(400);
    const still = await hh.deliver("star", E.starCreated(hh.repo));
    expect(still.status).toBe(202);
  });
});

describe("registry_package", () => {
  it("a published tag of a watched image is pushed to staging at once, and the dashboard shows it", async () => {
    const hh = await harness({
      more: [{ name: `plain-${names}`, files: { "README.md": "# not a fleet\n" } }],
    });
    const before = head(hh);
    const clones = vi.spyOn(Workspace, "clone");
    const started = Date.now();
    const res = await hh.deliverAndWait(
      "registry_package",
      E.registryPackagePublished(hh.repo, image, "1.1.0"),
    );
    expect(res.status).toBe(202);
    // One clone of the fleet for the whole refresh: scan, push and the dashboard's reading of the tree.
    expect(clones.mock.calls.filter(([url]) => url.endsWith(`/${hh.repo.name}.git`))).toHaveLength(1);
    clones.mockRestore();
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(head(hh)).not.toBe(before);
    expect(stagingFile(hh)).toContain(`${image}:1.1.0 #`);
    // Production moves by promotion only.
    expect(show(hh.repo.bare, "main", "apps/production/app/deployment.yaml")).toContain(`${image}:1.0.0 #`);
    expect(git(hh.repo.bare, ["log", "-1", "--format=%an <%ae>", "main"]).trim()).toBe(
      "shipmate[bot] <shipmate[bot]@users.noreply.github.com>",
    );
    // The push was authenticated with the installation token (git asks after the server's 401 challenge).
    expect(
      gitServer.requests.some((r) => r.path.endsWith(`${hh.repo.name}.git/git-receive-pack`) && r.authorized),
    ).toBe(true);

    const [dashboard, ...more] = hh.st.issues;
    expect(more).toEqual([]);
    expect(dashboard).toMatchObject({
      repo: hh.repo.fullName,
      title: "shipmate dashboard",
      user: "shipmate[bot]",
    });
    expect(dashboard?.body).toContain("| Image | Policy | staging | production | Available |");
    expect(dashboard?.body).toContain(
      `| ${image} | flux-system:app-staging: semver ^1.0.0<br>flux-system:app-production: semver ^1.0.0 | \`1.1.0\` | \`1.0.0\` | \`1.1.0\` |`,
    );
    // The repository without configuration got no issue and no commit.
    expect(hh.st.issues.filter((i) => i.repo.includes("plain"))).toEqual([]);
  });

  it("an image no policy watches changes nothing; once known, such repositories are not even cloned", async () => {
    const hh = await harness();
    const before = head(hh);
    await hh.deliverAndWait(
      "registry_package",
      E.registryPackagePublished(hh.repo, `${registry.host}/team/other`, "3.0.0"),
    );
    expect(head(hh)).toBe(before);
    const clones = gitServer.requests.length;
    await hh.deliverAndWait(
      "registry_package",
      E.registryPackagePublished(hh.repo, `${registry.host}/team/other`, "3.0.0"),
    );
    expect(gitServer.requests.length).toBe(clones);
    expect(head(hh)).toBe(before);
  });
});

describe("failures", () => {
  it("GitHub refusing the installation is logged, never a crash, and the next delivery works", async () => {
    const hh = await harness();
    const token = hh.st.tokens.get(7)!;
    hh.st.tokens.delete(7);
    const res = await hh.deliverAndWait(
      "registry_package",
      E.registryPackagePublished(hh.repo, image, "1.1.0"),
    );
    expect(res.status).toBe(202);
    expect(hh.logs.some((l) => l.level >= 50 && /^registry package failed: /.test(l.msg))).toBe(true);
    expect(stagingFile(hh)).toContain(`${image}:1.0.0 #`);
    hh.st.tokens.set(7, token);
    await hh.deliverAndWait("registry_package", E.registryPackagePublished(hh.repo, image, "1.1.0"));
    expect(stagingFile(hh)).toContain(`${image}:1.1.0 #`);
  });
});

describe("push to the default branch", () => {
  it("re-reads the policies and delivers what they now select", async () => {
    const hh = await harness({
      files: {
        ...fleetFiles(image),
        "policies/staging/app.yaml": fluxPolicy("app-staging", image, "~1.0.0"),
      },
    });
    await hh.deliverAndWait("push", E.push(hh.repo, ["apps/staging/app/deployment.yaml"]));
    expect(stagingFile(hh)).toContain(`${image}:1.0.0 #`);
    // A person widens the range and pushes: the next version lands without waiting for the schedule.
    const work = tempDir();
    git(work, ["clone", "--quiet", hh.repo.bare, "w"]);
    const w = `${work}/w`;
    git(w, ["checkout", "--quiet", "main"]);
    await import("node:fs").then((fs) =>
      fs.writeFileSync(`${w}/policies/staging/app.yaml`, fluxPolicy("app-staging", image, "^1.0.0")),
    );
    git(w, ["commit", "--quiet", "-am", "widen the staging range"]);
    git(w, ["push", "--quiet", "origin", "main"]);
    await hh.deliverAndWait("push", E.push(hh.repo, ["policies/staging/app.yaml"]));
    expect(stagingFile(hh)).toContain(`${image}:1.1.0 #`);
  });

  it("pushes by the App itself, to other branches, or without YAML do nothing", async () => {
    const hh = await harness();
    const before = { main: head(hh), api: hh.fake.requests.length };
    await hh.deliverAndWait(
      "push",
      E.push(hh.repo, ["apps/staging/app/deployment.yaml"], { ref: "refs/heads/feature" }),
    );
    await hh.deliverAndWait("push", E.push(hh.repo, ["README.md"]));
    expect(hh.fake.requests.length).toBe(before.api);
    await hh.deliverAndWait(
      "push",
      E.push(hh.repo, ["apps/staging/app/deployment.yaml"], { sender: "shipmate[bot]" }),
    );
    expect(head(hh)).toBe(before.main);
    expect(hh.st.issues).toEqual([]);
  });
});

describe("pull request merged on a staging bump", () => {
  it("starts the promotion request into the environment that promotes from staging, and says so on the merged request", async () => {
    const hh = await harness({ files: fleetFiles(image, { staging: "1.1.0", production: "1.0.0" }) });
    hh.st.pullFiles.set(`${hh.repo.fullName}#40`, ["apps/staging/app/deployment.yaml"]);
    const clones = vi.spyOn(Workspace, "clone");
    await hh.deliverAndWait("pull_request", E.pullRequestClosed(hh.repo, 40, "shipmate/update-main", true));
    // One clone: shipmate.yaml read once there, and the promotion made from that checkout.
    expect(clones).toHaveBeenCalledTimes(1);
    clones.mockRestore();
    const [pr] = hh.gh.pulls;
    expect(pr).toMatchObject({ head: "shipmate/promote-production", base: "main", state: "open" });
    expect(
      show(hh.repo.bare, "shipmate/promote-production", "apps/production/app/deployment.yaml"),
    ).toContain(`${image}:1.1.0 #`);
    const [reply] = commentsOn(hh, 40);
    expect(reply).toContain(
      "**Promotion staging → production**: proposed in [#1](https://github.example.test/acme/",
    );
  });

  it("a request closed without merging, or one that changed no source environment, promotes nothing", async () => {
    const hh = await harness({ files: fleetFiles(image, { staging: "1.1.0", production: "1.0.0" }) });
    hh.st.pullFiles.set(`${hh.repo.fullName}#41`, ["apps/staging/app/deployment.yaml"]);
    hh.st.pullFiles.set(`${hh.repo.fullName}#42`, ["apps/production/app/deployment.yaml", "README.md"]);
    await hh.deliverAndWait("pull_request", E.pullRequestClosed(hh.repo, 41, "feature", false));
    await hh.deliverAndWait("pull_request", E.pullRequestClosed(hh.repo, 42, "feature", true));
    expect(hh.gh.pulls).toEqual([]);
    expect(commentsOn(hh, 41)).toEqual([]);
    expect(commentsOn(hh, 42)).toEqual([]);
  });
});

describe("comment commands", () => {
  it("/shipmate promote production from a writer opens the promotion request and replies with it", async () => {
    const hh = await harness({ files: fleetFiles(image, { staging: "1.1.0", production: "1.0.0" }) });
    await hh.deliverAndWait(
      "issue_comment",
      E.issueComment(hh.repo, 7, "Looks good.\n/shipmate promote production", "alice"),
    );
    expect(hh.gh.pulls.map((p) => p.head)).toEqual(["shipmate/promote-production"]);
    expect(commentsOn(hh, 7)[0]).toMatch(/^\*\*Promotion staging → production\*\*: proposed in \[#1\]/);
  });

  it("/shipmate rescan from a writer refreshes now and replies", async () => {
    const hh = await harness();
    await hh.deliverAndWait("issue_comment", E.issueComment(hh.repo, 8, "/shipmate rescan", "owner"));
    expect(stagingFile(hh)).toContain(`${image}:1.1.0 #`);
    expect(commentsOn(hh, 8)).toEqual([
      "Rescanned: every tracked image is checked, and what changed has been delivered (see the dashboard issue).",
    ]);
  });

  it.each<[string, string, string]>([
    ["a reader", "mallory", "read"],
    ["someone without access", "stranger", "no"],
  ])("a command from %s is refused with a reply, and nothing is done", async (_name, login, level) => {
    const hh = await harness({ files: fleetFiles(image, { staging: "1.1.0", production: "1.0.0" }) });
    const before = head(hh);
    await hh.deliverAndWait(
      "issue_comment",
      E.issueComment(hh.repo, 9, "/shipmate promote production", login),
    );
    expect(commentsOn(hh, 9)).toEqual([
      `@${login} shipmate only takes commands from people with write access to this repository (you have ${level} access), so nothing was done.`,
    ]);
    expect(hh.gh.pulls).toEqual([]);
    expect(head(hh)).toBe(before);
  });

  it("a repository without shipmate configuration gets a friendly reply, not a crash", async () => {
    const hh = await harness({
      files: {
        "README.md": "# just code\n",
        "deploy/app.yaml": "kind: ConfigMap\napiVersion: v1\nmetadata: {name: x}\n",
      },
    });
    await hh.deliverAndWait("issue_comment", E.issueComment(hh.repo, 3, "/shipmate rescan", "alice"));
    await hh.deliverAndWait(
      "issue_comment",
      E.issueComment(hh.repo, 4, "/shipmate promote production", "alice"),
    );
    expect(commentsOn(hh, 3)[0]).toMatch(/^shipmate found nothing to do here/);
    expect(commentsOn(hh, 4)[0]).toMatch(/^shipmate found nothing to do here/);
    expect(hh.st.issues).toEqual([]);
  });

  it.each<[string, string, RegExp]>([
    ["an unknown command", "/shipmate dance", /^@alice unknown command `dance`\.\n\nshipmate understands:/],
    ["promote without an environment", "/shipmate promote", /^@alice `promote` needs the environment/],
    [
      "an environment that does not exist",
      "/shipmate promote qa",
      /^There is no environment `qa` in shipmate.yaml \(environments: staging, production\)\.$/,
    ],
    ["the first environment", "/shipmate promote staging", /^`staging` is the first environment/],
  ])("%s is answered with what shipmate understands", async (_name, body, reply) => {
    const hh = await harness();
    await hh.deliverAndWait("issue_comment", E.issueComment(hh.repo, 5, body, "alice"));
    expect(commentsOn(hh, 5)).toHaveLength(1);
    expect(commentsOn(hh, 5)[0]).toMatch(reply);
  });

  it("comments without a command, and comments by bots, are not acted on", async () => {
    const hh = await harness();
    await hh.deliverAndWait(
      "issue_comment",
      E.issueComment(hh.repo, 6, "thanks, /shipmate is great", "alice"),
    );
    await hh.deliverAndWait(
      "issue_comment",
      E.issueComment(hh.repo, 6, "/shipmate rescan", "other-app[bot]", "Bot"),
    );
    expect(hh.fake.requests).toEqual([]);
  });
});

describe("check run on pull requests", () => {
  it("validate findings become annotations on the changed files; a clean change passes", async () => {
    const hh = await harness();
    const work = tempDir();
    git(work, ["clone", "--quiet", hh.repo.bare, "w"]);
    const w = `${work}/w`;
    const fs = await import("node:fs");
    git(w, ["checkout", "--quiet", "-b", "broken"]);
    fs.writeFileSync(
      `${w}/apps/staging/app/deployment.yaml`,
      deployment("app", "staging", image, "1.0.0", "no-such-policy"),
    );
    git(w, ["commit", "--quiet", "-am", "point at a policy that does not exist"]);
    git(w, ["push", "--quiet", "origin", "broken"]);
    const sha = git(w, ["rev-parse", "HEAD"]).trim();
    hh.st.pullFiles.set(`${hh.repo.fullName}#12`, ["apps/staging/app/deployment.yaml"]);
    await hh.deliverAndWait("pull_request", E.pullRequestOpened(hh.repo, 12, "broken", sha));
    const [run] = hh.st.checkRuns;
    expect(run).toMatchObject({
      name: "shipmate validate",
      headSha: sha,
      status: "completed",
      conclusion: "failure",
    });
    expect(run?.annotations).toEqual([
      expect.objectContaining({
        path: "apps/staging/app/deployment.yaml",
        start_line: 17,
        annotation_level: "failure",
      }),
    ]);
    expect(run?.annotations[0]?.message).toMatch(/no-such-policy/);

    hh.st.pullFiles.set(`${hh.repo.fullName}#13`, ["apps/staging/app/deployment.yaml"]);
    await hh.deliverAndWait("pull_request", E.pullRequestOpened(hh.repo, 13, "main", head(hh)));
    expect(hh.st.checkRuns[1]).toMatchObject({ status: "completed", conclusion: "success", annotations: [] });

    // A change that touches no YAML gets no check run at all.
    hh.st.pullFiles.set(`${hh.repo.fullName}#14`, ["README.md"]);
    await hh.deliverAndWait("pull_request", E.pullRequestOpened(hh.repo, 14, "main", head(hh)));
    expect(hh.st.checkRuns).toHaveLength(2);
  });
});

describe("schedule and installation", () => {
  it("the schedule refreshes every configured repository of every installation on its interval", async () => {
    const hh = await harness({ settings: { scheduleMs: 300 } });
    // No delivery at all: the timer alone finds the new version and keeps the dashboard.
    await eventually(() => stagingFile(hh).includes(`${image}:1.1.0 #`) && hh.st.issues.length === 1);
    const ticks = hh.fake.requests.filter((r) => r.operationId === "apps/list-installations").length;
    await eventually(
      () => hh.fake.requests.filter((r) => r.operationId === "apps/list-installations").length > ticks,
    );
    expect(hh.st.issues).toHaveLength(1);
  });

  it("a repository added to the installation is refreshed and gets its dashboard", async () => {
    const hh = await harness();
    await hh.deliverAndWait("installation_repositories", E.installationRepositoriesAdded(hh.repo));
    expect(stagingFile(hh)).toContain(`${image}:1.1.0 #`);
    expect(hh.st.issues.map((i) => i.title)).toEqual(["shipmate dashboard"]);
  });
});

describe("registry webhooks in the App server", () => {
  it("a Distribution notification with the shared secret refreshes the repositories watching the image", async () => {
    const secret = randomBytes(16).toString("hex");
    const hh = await harness({ options: { registry: { secret } } });
    const body = JSON.stringify({
      events: [
        {
          action: "push",
          target: { repository: "team/app", tag: "1.1.0" },
          request: { host: registry.host },
        },
      ],
    });
    const refused = await fetch(`${hh.app.url}/hooks/registry`, { method: "POST", body });
    expect(refused.status).toBe(401);
    const res = await fetch(`${hh.app.url}/hooks/registry`, {
      method: "POST",
      body,
      headers: { authorization: `Bearer ${secret}` },
    });
    expect(res.status).toBe(202);
    await hh.app.service.idle();
    expect(stagingFile(hh)).toContain(`${image}:1.1.0 #`);
    expect((await fetch(`${hh.app.url}/healthz`)).status).toBe(200);
  });
});
