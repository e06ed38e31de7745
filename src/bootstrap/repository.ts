/**
 * The fleet repository on its forge, as bootstrap needs it: does it exist,
 * may the token push to it, what is its clone URL — and creating it when it
 * does not exist (a user's personal repository, or one in an organisation or
 * group). One small client per forge over fetch; every answer is parsed
 * through a schema, every failure worded by the forge module's
 * classifyForgeFailure so all forges say the same problem the same way.
 */
import { z } from "zod";
import { ForgeError, registerSecret, UsageError } from "../errors.ts";
import { classifyForgeFailure, withRateLimitWait } from "../forge/errors.ts";
import { githubApiUrl } from "../forge/github/index.ts";
import { PROVIDERS } from "../forge/index.ts";
import type { ForgeKind } from "../forge/types.ts";

export interface RepoState {
  /** https clone URL, without credentials. */
  cloneUrl: string;
  defaultBranch: string;
  /** No commit at all yet. */
  empty: boolean;
  canPush: boolean;
  private: boolean;
}

export interface CreateOptions {
  /** The owner is the token's own user (else an organisation or group). */
  personal: boolean;
  private: boolean;
  branch: string;
  description: string;
}

export interface RepositoryHost {
  readonly kind: ForgeKind;
  /** `owner/name` */
  readonly fullName: string;
  /** undefined when the repository does not exist (or the token cannot see it). */
  get(): Promise<RepoState | undefined>;
  /** The token's user name. */
  whoami(): Promise<string>;
  create(opts: CreateOptions): Promise<RepoState>;
}

export interface HostOptions {
  kind: ForgeKind;
  /** Web base URL of the forge; the public forge when absent (required for Gitea). */
  url?: string;
  owner: string;
  name: string;
  token: string;
  /** Where the token came from, for messages (`$GITEA_TOKEN`). */
  tokenSource?: string;
  fetch?: typeof fetch;
}

const OWNER = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;
const NAME = /^[A-Za-z0-9_.-]+$/;

/** Owner and repository names as the forges accept them (GitLab owners may be nested groups). */
export function checkRepoNames(kind: ForgeKind, owner: string, name: string): void {
  if (!OWNER.test(owner) || (kind !== "gitlab" && owner.includes("/")))
    throw new UsageError(
      `--owner "${owner}" is not a valid ${kind === "gitlab" ? "group path" : "user or organisation name"}`,
    );
  if (!NAME.test(name) || name === "." || name === ".." || name.endsWith(".git"))
    throw new UsageError(
      `--repository "${name}" is not a valid repository name (letters, digits, '-', '_', '.')`,
    );
}

type Call = <S extends z.ZodType>(
  action: string,
  method: string,
  path: string,
  schema: S,
  body?: unknown,
) => Promise<{ status: number; data: z.infer<S> | undefined }>;

/** One JSON call; 404 comes back as `data: undefined`, other failures as the forge's typed error. */
function caller(
  kind: ForgeKind,
  repo: string,
  api: string,
  headers: Record<string, string>,
  opts: HostOptions,
): Call {
  const doFetch = opts.fetch ?? fetch;
  return (action, method, path, schema, body) =>
    withRateLimitWait(
      async () => {
        let res: Response;
        try {
          res = await doFetch(`${api}${path}`, {
            method,
            headers: {
              accept: "application/json",
              ...headers,
              ...(body === undefined ? {} : { "content-type": "application/json" }),
            },
            body: body === undefined ? undefined : JSON.stringify(body),
          });
        } catch (err) {
          throw new ForgeError(
            `${kind} ${repo}: cannot reach ${api} to ${action}: ${(err as Error).message}`,
          );
        }
        const text = await res.text();
        if (res.status === 404) return { status: 404, data: undefined };
        if (!res.ok) {
          let message = text;
          try {
            const j = JSON.parse(text) as { message?: unknown; error?: unknown };
            message = typeof j.message === "string" ? j.message : JSON.stringify(j.message ?? j.error ?? j);
          } catch {
            // not JSON: the text is the message
          }
          throw classifyForgeFailure({
            forge: PROVIDERS[kind],
            repo,
            action,
            status: res.status,
            headers: Object.fromEntries(res.headers),
            message,
            tokenSource: opts.tokenSource,
          });
        }
        const parsed = schema.safeParse(text ? JSON.parse(text) : null);
        if (!parsed.success)
          throw new ForgeError(
            `${kind} ${repo}: unexpected answer to ${action}: ${parsed.error.issues[0]?.path.join(".")} ${parsed.error.issues[0]?.message}`,
          );
        return { status: res.status, data: parsed.data };
      },
      { maxWaitMs: 60_000 },
    );
}

// Gitea swagger (templates/swagger/v1_json.tmpl): definitions.Repository, definitions.Permission, definitions.User.
const GiteaRepo = z.looseObject({
  clone_url: z.string(),
  default_branch: z.string(),
  empty: z.boolean().optional(),
  private: z.boolean(),
  permissions: z.looseObject({ push: z.boolean() }).nullish(),
});
const GiteaUser = z.looseObject({ login: z.string() });

// GitHub REST (api.github.com OpenAPI): components.schemas.full-repository / repository, simple-user.
const GitHubRepo = z.looseObject({
  clone_url: z.string(),
  default_branch: z.string(),
  private: z.boolean(),
  size: z.number().optional(),
  permissions: z.looseObject({ push: z.boolean() }).optional(),
});
const GitHubUser = z.looseObject({ login: z.string() });

// GitLab REST v4 (doc/api/projects.md, namespaces.md, users.md): project with permissions, namespace, current user.
const GitLabAccess = z.looseObject({ access_level: z.number() }).nullish();
const GitLabProject = z.looseObject({
  http_url_to_repo: z.string(),
  default_branch: z.string().nullish(),
  empty_repo: z.boolean().optional(),
  visibility: z.string(),
  permissions: z.looseObject({ project_access: GitLabAccess, group_access: GitLabAccess }).optional(),
});
const GitLabNamespace = z.looseObject({ id: z.number(), kind: z.string(), full_path: z.string() });
const GitLabUser = z.looseObject({ username: z.string() });

/** GitLab's Developer role (30) is the first that may push. */
const GITLAB_DEVELOPER = 30;

export function repositoryHost(opts: HostOptions): RepositoryHost {
  checkRepoNames(opts.kind, opts.owner, opts.name);
  registerSecret(opts.token);
  const fullName = `${opts.owner}/${opts.name}`;
  switch (opts.kind) {
    case "gitea":
      return giteaHost(opts, fullName);
    case "github":
      return githubHost(opts, fullName);
    case "gitlab":
      return gitlabHost(opts, fullName);
  }
}

function giteaHost(opts: HostOptions, fullName: string): RepositoryHost {
  if (!opts.url) throw new UsageError("a Gitea/Forgejo forge needs --forge-url (its base URL)");
  const api = `${opts.url.replace(/\/+$/, "")}/api/v1`;
  const call = caller("gitea", fullName, api, { authorization: `token ${opts.token}` }, opts);
  const state = (r: z.infer<typeof GiteaRepo>): RepoState => ({
    cloneUrl: r.clone_url,
    defaultBranch: r.default_branch,
    empty: r.empty === true,
    canPush: r.permissions?.push === true,
    private: r.private,
  });
  const repoPath = `/repos/${encodeURIComponent(opts.owner)}/${encodeURIComponent(opts.name)}`;
  return {
    kind: "gitea",
    fullName,
    async get() {
      const { data } = await call("read the repository", "GET", repoPath, GiteaRepo);
      return data && state(data);
    },
    async whoami() {
      const { data } = await call("read the token's user", "GET", "/user", GiteaUser);
      if (!data) throw new ForgeError(`gitea: the token's user was not found`);
      return data.login;
    },
    async create(c) {
      const path = c.personal ? "/user/repos" : `/orgs/${encodeURIComponent(opts.owner)}/repos`;
      const { data } = await call("create the repository", "POST", path, GiteaRepo, {
        name: opts.name,
        private: c.private,
        auto_init: true,
        default_branch: c.branch,
        description: c.description,
      });
      if (!data)
        throw new ForgeError(
          `Gitea ${fullName}: organisation ${opts.owner} not found (use --personal for a user's repository)`,
          404,
        );
      // The creator may push, whatever the answer's permission block says (GitLab leaves it empty).
      return { ...state(data), canPush: true };
    },
  };
}

function githubHost(opts: HostOptions, fullName: string): RepositoryHost {
  const api = githubApiUrl(opts.url);
  const call = caller(
    "github",
    fullName,
    api,
    { authorization: `Bearer ${opts.token}`, "x-github-api-version": "2022-11-28" },
    opts,
  );
  const state = (r: z.infer<typeof GitHubRepo>): RepoState => ({
    cloneUrl: r.clone_url,
    defaultBranch: r.default_branch,
    empty: r.size === 0,
    canPush: r.permissions?.push === true,
    private: r.private,
  });
  return {
    kind: "github",
    fullName,
    async get() {
      const { data } = await call(
        "read the repository",
        "GET",
        `/repos/${encodeURIComponent(opts.owner)}/${encodeURIComponent(opts.name)}`,
        GitHubRepo,
      );
      return data && state(data);
    },
    async whoami() {
      const { data } = await call("read the token's user", "GET", "/user", GitHubUser);
      if (!data) throw new ForgeError("github: the token's user was not found");
      return data.login;
    },
    async create(c) {
      const path = c.personal ? "/user/repos" : `/orgs/${encodeURIComponent(opts.owner)}/repos`;
      const { data } = await call("create the repository", "POST", path, GitHubRepo, {
        name: opts.name,
        private: c.private,
        auto_init: true,
        description: c.description,
      });
      if (!data)
        throw new ForgeError(
          `GitHub ${fullName}: organisation ${opts.owner} not found (use --personal for a user's repository)`,
          404,
        );
      // The creator may push, whatever the answer's permission block says (GitLab leaves it empty).
      return { ...state(data), canPush: true };
    },
  };
}

function gitlabHost(opts: HostOptions, fullName: string): RepositoryHost {
  const base = (opts.url ?? "https://gitlab.com").replace(/\/+$/, "").replace(/\/api\/v4$/, "");
  const api = `${base}/api/v4`;
  const call = caller("gitlab", fullName, api, { "private-token": opts.token }, opts);
  const state = (p: z.infer<typeof GitLabProject>): RepoState => {
    const level = Math.max(
      p.permissions?.project_access?.access_level ?? 0,
      p.permissions?.group_access?.access_level ?? 0,
    );
    return {
      cloneUrl: p.http_url_to_repo,
      defaultBranch: p.default_branch ?? "main",
      empty: p.empty_repo === true,
      canPush: level >= GITLAB_DEVELOPER,
      private: p.visibility === "private",
    };
  };
  return {
    kind: "gitlab",
    fullName,
    async get() {
      const { data } = await call(
        "read the project",
        "GET",
        `/projects/${encodeURIComponent(fullName)}`,
        GitLabProject,
      );
      return data && state(data);
    },
    async whoami() {
      const { data } = await call("read the token's user", "GET", "/user", GitLabUser);
      if (!data) throw new ForgeError("gitlab: the token's user was not found");
      return data.username;
    },
    async create(c) {
      const { data: ns } = await call(
        `find the namespace ${opts.owner}`,
        "GET",
        `/namespaces/${encodeURIComponent(opts.owner)}`,
        GitLabNamespace,
      );
      if (!ns)
        throw new ForgeError(
          `GitLab ${fullName}: namespace ${opts.owner} not found (or the token cannot see it)`,
          404,
        );
      if (c.personal !== (ns.kind === "user"))
        throw new UsageError(
          `--owner ${opts.owner} is a GitLab ${ns.kind === "user" ? "user" : "group"}: ${ns.kind === "user" ? "add" : "drop"} --personal`,
        );
      const { data } = await call("create the project", "POST", "/projects", GitLabProject, {
        name: opts.name,
        path: opts.name,
        namespace_id: ns.id,
        visibility: c.private ? "private" : "public",
        initialize_with_readme: true,
        default_branch: c.branch,
        description: c.description,
      });
      if (!data) throw new ForgeError(`GitLab ${fullName}: could not create the project`, 404);
      // The creator may push, whatever the answer's permission block says (GitLab leaves it empty).
      return { ...state(data), canPush: true };
    },
  };
}
