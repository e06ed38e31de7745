/**
 * Finding or creating the fleet repository on each forge: a real Gitea, and
 * GitHub and GitLab fakes whose every request and response is checked
 * against the forge's OpenAPI description (GitHub's published one; for
 * GitLab, test/bootstrap/fixtures/gitlab-projects-openapi.yaml, written from
 * GitLab's REST reference).
 */
import { readFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { checkRepoNames, repositoryHost } from "../../src/bootstrap/repository.ts";
import { ForgeAuthError } from "../../src/forge/errors.ts";
import { type GiteaServer, startGitea } from "../infra/gitea.ts";
import {
  type FakeRequest,
  loadGitHubSpec,
  merge,
  type OpenApiFake,
  OpenApiSpec,
  startOpenApiFake,
} from "../infra/openapi-forge.ts";

describe("owner and repository names, as each forge's provider says", () => {
  it.each([
    ["gitlab", "platform/deploy", "fleet", undefined],
    [
      "github",
      "platform/deploy",
      "fleet",
      '--owner "platform/deploy" is not a valid user or organisation name',
    ],
    [
      "gitea",
      "platform/deploy",
      "fleet",
      '--owner "platform/deploy" is not a valid user or organisation name',
    ],
    ["gitlab", "platform//deploy", "fleet", '--owner "platform//deploy" is not a valid group path'],
    [
      "github",
      "acme",
      "fleet.git",
      `--repository "fleet.git" is not a valid repository name (letters, digits, '-', '_', '.')`,
    ],
    [
      "gitea",
      "acme",
      "..",
      `--repository ".." is not a valid repository name (letters, digits, '-', '_', '.')`,
    ],
  ] as const)("%s: %s/%s → %s", (kind, owner, name, error) => {
    const check = () => checkRepoNames(kind, owner, name);
    if (error) expect(check).toThrow(error);
    else expect(check).not.toThrow();
  });
});

describe("Gitea (real)", () => {
  let gitea: GiteaServer;
  beforeAll(async () => {
    gitea = await startGitea();
  }, 120_000);
  afterAll(async () => {
    await gitea?.stop();
  });
  const host = (owner: string, name: string, token = gitea.token) =>
    repositoryHost({ kind: "gitea", url: gitea.url, owner, name, token, tokenSource: "$GITEA_TOKEN" });

  it("creates a repository in an organisation, and reads it back with push rights", async () => {
    await gitea.api("POST", "/orgs", { username: "platform" });
    const h = host("platform", "fleet");
    expect(await h.get()).toBeUndefined();
    const created = await h.create({ personal: false, private: true, branch: "main", description: "d" });
    expect(created).toEqual({
      cloneUrl: `${gitea.url}/platform/fleet.git`,
      defaultBranch: "main",
      empty: false,
      canPush: true,
      private: true,
    });
    expect(await h.get()).toEqual(created);
  });

  it("an organisation that does not exist is named in the error", async () => {
    await expect(
      host("no-such-org", "fleet").create({
        personal: false,
        private: true,
        branch: "main",
        description: "",
      }),
    ).rejects.toThrow(
      "Gitea no-such-org/fleet: organisation no-such-org not found (use --personal for a user's repository)",
    );
  });

  it("a rejected token says where it came from", async () => {
    await expect(host("platform", "fleet", "0".repeat(40)).get()).rejects.toThrow(ForgeAuthError);
    await expect(host("platform", "fleet", "0".repeat(40)).get()).rejects.toThrow(
      /set a valid token in \$GITEA_TOKEN/,
    );
  });
});

describe("GitHub (OpenAPI-validated fake)", () => {
  const spec = loadGitHubSpec();
  const repos = new Map<string, { private: boolean; push: boolean; size: number }>();
  const orgs = new Set(["acme"]);
  let fake: OpenApiFake;
  const full = (owner: string, name: string) => {
    const r = repos.get(`${owner}/${name}`);
    return merge(spec.sample({ $ref: "#/components/schemas/full-repository" }), {
      name,
      full_name: `${owner}/${name}`,
      private: r?.private ?? true,
      clone_url: `https://github.example.test/${owner}/${name}.git`,
      default_branch: "main",
      size: r?.size ?? 0,
      permissions: { admin: false, maintain: false, push: r?.push ?? true, triage: true, pull: true },
    });
  };
  const notFound = {
    status: 404,
    body: { message: "Not Found", documentation_url: "https://docs.github.com/rest" },
  };
  const create = (owner: string) => (req: FakeRequest) => {
    const b = req.body as { name: string; private: boolean };
    repos.set(`${owner}/${b.name}`, { private: b.private, push: true, size: 1 });
    return { status: 201, body: full(owner, b.name) };
  };

  beforeAll(async () => {
    fake = await startOpenApiFake({
      spec,
      prefix: "/api/v3",
      errorSchema: "/components/schemas/basic-error",
      handlers: {
        "repos/get": (req) =>
          repos.has(`${req.params.owner}/${req.params.repo}`)
            ? { status: 200, body: full(req.params.owner ?? "", req.params.repo ?? "") }
            : notFound,
        "users/get-authenticated": () => ({
          status: 200,
          body: merge(spec.sample({ $ref: "#/components/schemas/private-user" }), { login: "octo" }),
        }),
        "repos/create-for-authenticated-user": create("octo"),
        "repos/create-in-org": (req) =>
          orgs.has(req.params.org ?? "") ? create(req.params.org ?? "")(req) : notFound,
      },
    });
  }, 60_000);
  afterAll(async () => {
    await fake?.close();
  });
  afterEach(() => {
    expect(fake.violations.splice(0)).toEqual([]);
  });
  const host = (owner: string, name: string) =>
    repositoryHost({ kind: "github", url: fake.url, owner, name, token: "ghp_testtoken1234" });

  it.each([
    ["push rights", true, true],
    ["read only", false, false],
  ])("an existing repository with %s", async (_what, push, canPush) => {
    repos.set(`acme/existing-${push}`, { private: false, push, size: 10 });
    expect(await host("acme", `existing-${push}`).get()).toEqual({
      cloneUrl: `https://github.example.test/acme/existing-${push}.git`,
      defaultBranch: "main",
      empty: false,
      canPush,
      private: false,
    });
  });

  it("a missing repository, then created for the token's user (auto-initialised, private)", async () => {
    const h = host("octo", "fleet");
    expect(await h.get()).toBeUndefined();
    expect(await h.whoami()).toBe("octo");
    const r = await h.create({ personal: true, private: true, branch: "main", description: "fleet" });
    expect(r).toMatchObject({
      cloneUrl: "https://github.example.test/octo/fleet.git",
      canPush: true,
      private: true,
    });
    const sent = fake.requests.find((q) => q.operationId === "repos/create-for-authenticated-user");
    expect(sent?.status).toBe(201);
  });

  it("created in an organisation; an unknown organisation is named", async () => {
    expect(
      await host("acme", "fleet").create({
        personal: false,
        private: false,
        branch: "main",
        description: "",
      }),
    ).toMatchObject({
      private: false,
    });
    await expect(
      host("ghost-org", "fleet").create({ personal: false, private: true, branch: "main", description: "" }),
    ).rejects.toThrow(
      "GitHub ghost-org/fleet: organisation ghost-org not found (use --personal for a user's repository)",
    );
  });
});

describe("GitLab (OpenAPI-validated fake)", () => {
  const spec = new OpenApiSpec(
    parse(readFileSync(new URL("./fixtures/gitlab-projects-openapi.yaml", import.meta.url), "utf8")),
  );
  const namespaces = new Map([
    ["platform/deploy", { id: 7, kind: "group" }],
    ["alice", { id: 3, kind: "user" }],
  ]);
  const projects = new Map<string, { project: number | null; group: number | null }>();
  let fake: OpenApiFake;
  const project = (path: string, visibility = "private") => {
    const access = (level: number | null) =>
      level === null ? null : { access_level: level, notification_level: 3 };
    const a = projects.get(path) ?? { project: 50, group: null };
    return {
      id: 42,
      name: path.split("/").pop(),
      path: path.split("/").pop(),
      path_with_namespace: path,
      visibility,
      default_branch: "main",
      http_url_to_repo: `https://gitlab.example.test/${path}.git`,
      web_url: `https://gitlab.example.test/${path}`,
      empty_repo: false,
      permissions: { project_access: access(a.project), group_access: access(a.group) },
    };
  };
  beforeAll(async () => {
    fake = await startOpenApiFake({
      spec,
      prefix: "/api/v4",
      handlers: {
        getProject: (req) =>
          projects.has(req.params.id ?? "")
            ? { status: 200, body: project(req.params.id ?? "") }
            : { status: 404, body: { message: "404 Project Not Found" } },
        getNamespace: (req) => {
          const ns = namespaces.get(req.params.id ?? "");
          return ns
            ? {
                status: 200,
                body: { ...ns, name: req.params.id, path: req.params.id, full_path: req.params.id },
              }
            : { status: 404, body: { message: "404 Namespace Not Found" } };
        },
        getCurrentUser: () => ({
          status: 200,
          body: { id: 3, username: "alice", name: "Alice", state: "active" },
        }),
        createProject: (req) => {
          const b = req.body as { path: string; namespace_id: number; visibility: string };
          const ns = [...namespaces].find(([, v]) => v.id === b.namespace_id)?.[0];
          projects.set(`${ns}/${b.path}`, { project: null, group: null });
          return { status: 201, body: project(`${ns}/${b.path}`, b.visibility) };
        },
      },
    });
  });
  afterAll(async () => {
    await fake?.close();
  });
  afterEach(() => {
    expect(fake.violations.splice(0)).toEqual([]);
  });
  const host = (owner: string, name: string) =>
    repositoryHost({ kind: "gitlab", url: fake.url, owner, name, token: "glpat-testtoken" });

  it.each([
    ["Developer on the project may push", { project: 30, group: null }, true],
    ["Reporter may not", { project: 20, group: null }, false],
    ["Maintainer through the group may", { project: null, group: 40 }, true],
  ])("%s", async (_rule, access, canPush) => {
    const name = `fleet-${access.project ?? "g"}-${access.group ?? "p"}`;
    projects.set(`platform/deploy/${name}`, access);
    expect((await host("platform/deploy", name).get())?.canPush).toBe(canPush);
  });

  it("a project in a nested group is created there, private, initialised", async () => {
    const h = host("platform/deploy", "fleet");
    expect(await h.get()).toBeUndefined();
    expect(await h.create({ personal: false, private: true, branch: "main", description: "fleet" })).toEqual({
      cloneUrl: "https://gitlab.example.test/platform/deploy/fleet.git",
      defaultBranch: "main",
      empty: false,
      canPush: true,
      private: true,
    });
  });

  it.each([
    [
      "a group given with --personal",
      "platform/deploy",
      true,
      "--owner platform/deploy is a GitLab group: drop --personal",
    ],
    ["a user given without --personal", "alice", false, "--owner alice is a GitLab user: add --personal"],
  ])("%s is a usage error", async (_rule, owner, personal, message) => {
    await expect(
      host(owner, "other").create({ personal, private: true, branch: "main", description: "" }),
    ).rejects.toThrow(message);
  });
});
