/**
 * What the GitHub App needs of the fake GitHub beyond the forge provider's
 * operations: installations and their tokens, repositories of an
 * installation, collaborator permissions, issues and comments, check runs
 * and pull request files. Added through startFakeGitHub's `extend`, so
 * every request and answer is still validated against @octokit/openapi.
 */
import {
  type FakeRequest,
  type FakeResponse,
  type Handler,
  loadGitHubSpec,
  merge,
} from "../infra/openapi-forge.ts";

export interface FakeRepo {
  owner: string;
  name: string;
  cloneUrl: string;
}

export interface FakeIssue {
  repo: string;
  number: number;
  title: string;
  body: string;
  user: string;
  state: "open" | "closed";
}

export interface FakeCheckRun {
  id: number;
  repo: string;
  name: string;
  headSha: string;
  status: string;
  conclusion: string | null;
  title?: string;
  summary?: string;
  annotations: { path: string; start_line: number; annotation_level: string; message: string }[];
}

export class AppFakeState {
  readonly appId: number;
  readonly slug: string;
  /** Installation id → its repositories. */
  readonly installations = new Map<number, FakeRepo[]>();
  /** Installation id → the token its access-token endpoint hands out. */
  readonly tokens = new Map<number, string>();
  /** `owner/name` → login → permission (admin, write, read, none). */
  readonly permissions = new Map<string, Map<string, string>>();
  readonly issues: FakeIssue[] = [];
  /** `owner/name#number` → comment bodies (issues and pull requests alike). */
  readonly comments = new Map<string, string[]>();
  readonly checkRuns: FakeCheckRun[] = [];
  /** `owner/name#number` → files of the pull request. */
  readonly pullFiles = new Map<string, string[]>();
  /** Authorization headers of token requests (the App authenticates as itself with a JWT). */
  readonly tokenRequests: string[] = [];

  constructor(appId: number, slug: string) {
    this.appId = appId;
    this.slug = slug;
  }

  get bot(): string {
    return `${this.slug}[bot]`;
  }

  commentsOn(repo: string, number: number): string[] {
    return this.comments.get(`${repo}#${number}`) ?? [];
  }
}

const spec = () => loadGitHubSpec();
const sample = (schema: string) => spec().sample({ $ref: `#/components/schemas/${schema}` });
const notFound: FakeResponse = {
  status: 404,
  body: { message: "Not Found", documentation_url: "https://docs.github.com/rest" },
};
const unauthorized: FakeResponse = {
  status: 401,
  body: { message: "Bad credentials", documentation_url: "https://docs.github.com/rest" },
};

function user(login: string) {
  return merge(sample("simple-user"), {
    login,
    type: login.endsWith("[bot]") ? "Bot" : "User",
    html_url: `https://github.example.test/${encodeURIComponent(login)}`,
  });
}

function repository(r: FakeRepo, id: number) {
  return merge(sample("repository"), {
    id,
    name: r.name,
    full_name: `${r.owner}/${r.name}`,
    owner: user(r.owner),
    clone_url: r.cloneUrl,
    default_branch: "main",
    archived: false,
    html_url: `https://github.example.test/${r.owner}/${r.name}`,
  });
}

/** The installation a request's token belongs to (`Authorization: token …`). */
function installationOf(st: AppFakeState, req: FakeRequest): number | undefined {
  const auth = req.headers.authorization ?? "";
  const token = /^(?:token|bearer)\s+(.+)$/i.exec(auth)?.[1];
  for (const [id, t] of st.tokens) if (t === token) return id;
  return undefined;
}

const isJwt = (req: FakeRequest) =>
  /^bearer\s+[\w-]+\.[\w-]+\.[\w-]+$/i.test(req.headers.authorization ?? "");

function issueBody(i: FakeIssue) {
  const [owner, name] = i.repo.split("/");
  return merge(sample("issue"), {
    id: i.number,
    number: i.number,
    title: i.title,
    body: i.body,
    state: i.state,
    user: user(i.user),
    html_url: `https://github.example.test/${owner}/${name}/issues/${i.number}`,
    url: `https://api.example.test/repos/${owner}/${name}/issues/${i.number}`,
  });
}

export function appHandlers(st: AppFakeState) {
  return (defaults: Readonly<Record<string, Handler>>): Record<string, Handler> => ({
    "apps/create-installation-access-token": (req) => {
      st.tokenRequests.push(req.headers.authorization ?? "");
      if (!isJwt(req)) return unauthorized;
      const id = Number(req.params.installation_id);
      const token = st.tokens.get(id);
      if (!token) return notFound;
      return {
        status: 201,
        body: merge(sample("installation-token"), {
          token,
          expires_at: new Date(Date.now() + 3600_000).toISOString(),
          repository_selection: "selected",
        }),
      };
    },
    "apps/get-authenticated": (req) => {
      if (!isJwt(req)) return unauthorized;
      return {
        status: 200,
        body: merge(sample("integration"), { id: st.appId, slug: st.slug, name: st.slug }),
      };
    },
    "apps/list-installations": (req) => {
      if (!isJwt(req)) return unauthorized;
      return {
        status: 200,
        body: [...st.installations.keys()].map((id) => ({
          ...(merge(sample("installation"), { id, app_id: st.appId, app_slug: st.slug }) as object),
          // GitHub describes this account as allOf [simple-user, enterprise]: it must carry both.
          account: merge(sample("enterprise"), merge(user("acme"), { name: "acme", slug: "acme" })),
        })),
      };
    },
    "apps/list-repos-accessible-to-installation": (req) => {
      const id = installationOf(st, req);
      if (id === undefined) return unauthorized;
      const repos = st.installations.get(id) ?? [];
      const page = Number(req.query.page ?? 1);
      const perPage = Number(req.query.per_page ?? 30);
      return {
        status: 200,
        body: {
          total_count: repos.length,
          repositories: repos
            .slice((page - 1) * perPage, page * perPage)
            .map((r, i) => repository(r, id * 1000 + i)),
        },
      };
    },
    "repos/get-collaborator-permission-level": (req) => {
      if (installationOf(st, req) === undefined) return unauthorized;
      const permission =
        st.permissions.get(`${req.params.owner}/${req.params.repo}`)?.get(req.params.username ?? "") ??
        "none";
      return {
        status: 200,
        body: merge(sample("repository-collaborator-permission"), {
          permission,
          role_name: permission,
          user: merge(sample("collaborator"), { login: req.params.username }),
        }),
      };
    },
    "issues/create-comment": async (req) => {
      if (installationOf(st, req) === undefined) return unauthorized;
      const key = `${req.params.owner}/${req.params.repo}#${req.params.issue_number}`;
      const body = (req.body as { body: string }).body;
      st.comments.set(key, [...(st.comments.get(key) ?? []), body]);
      // Pull requests of the forge's repository keep their own record too.
      const pr = await defaults["issues/create-comment"]?.(req);
      if (pr && pr.status === 201) return pr;
      return { status: 201, body: merge(sample("issue-comment"), { body, user: user(st.bot) }) };
    },
    "issues/list-for-repo": (req) => {
      if (installationOf(st, req) === undefined) return unauthorized;
      const repo = `${req.params.owner}/${req.params.repo}`;
      const state = (req.query.state as string | undefined) ?? "open";
      const list = st.issues.filter(
        (i) =>
          i.repo === repo &&
          (state === "all" || i.state === state) &&
          (req.query.creator === undefined || i.user === req.query.creator),
      );
      return { status: 200, body: list.map((i) => issueBody(i)) };
    },
    "issues/create": (req) => {
      if (installationOf(st, req) === undefined) return unauthorized;
      const b = req.body as { title: string; body?: string };
      const issue: FakeIssue = {
        repo: `${req.params.owner}/${req.params.repo}`,
        number: 1000 + st.issues.length,
        title: b.title,
        body: b.body ?? "",
        user: st.bot,
        state: "open",
      };
      st.issues.push(issue);
      return { status: 201, body: issueBody(issue) };
    },
    "issues/update": (req) => {
      if (installationOf(st, req) === undefined) return unauthorized;
      const repo = `${req.params.owner}/${req.params.repo}`;
      const issue = st.issues.find((i) => i.repo === repo && i.number === Number(req.params.issue_number));
      if (!issue) return notFound;
      const b = req.body as { body?: string; title?: string; state?: "open" | "closed" };
      if (b.body !== undefined) issue.body = b.body;
      if (b.title !== undefined) issue.title = b.title;
      if (b.state !== undefined) issue.state = b.state;
      return { status: 200, body: issueBody(issue) };
    },
    "checks/create": (req) => {
      if (installationOf(st, req) === undefined) return unauthorized;
      const b = req.body as { name: string; head_sha: string; status?: string };
      const run: FakeCheckRun = {
        id: st.checkRuns.length + 1,
        repo: `${req.params.owner}/${req.params.repo}`,
        name: b.name,
        headSha: b.head_sha,
        status: b.status ?? "queued",
        conclusion: null,
        annotations: [],
      };
      st.checkRuns.push(run);
      return { status: 201, body: checkRunBody(run) };
    },
    "checks/update": (req) => {
      if (installationOf(st, req) === undefined) return unauthorized;
      const run = st.checkRuns.find((r) => r.id === Number(req.params.check_run_id));
      if (!run) return notFound;
      const b = req.body as {
        status?: string;
        conclusion?: string;
        output?: { title?: string; summary?: string; annotations?: FakeCheckRun["annotations"] };
      };
      if (b.status) run.status = b.status;
      if (b.conclusion) run.conclusion = b.conclusion;
      if (b.output?.title) run.title = b.output.title;
      if (b.output?.summary) run.summary = b.output.summary;
      run.annotations.push(...(b.output?.annotations ?? []));
      return { status: 200, body: checkRunBody(run) };
    },
    "pulls/list-files": (req) => {
      if (installationOf(st, req) === undefined) return unauthorized;
      const files = st.pullFiles.get(`${req.params.owner}/${req.params.repo}#${req.params.pull_number}`);
      if (!files) return notFound;
      const page = Number(req.query.page ?? 1);
      const perPage = Number(req.query.per_page ?? 30);
      return {
        status: 200,
        body: files
          .slice((page - 1) * perPage, page * perPage)
          .map((filename) => merge(sample("diff-entry"), { filename, status: "modified" })),
      };
    },
  });
}

function checkRunBody(run: FakeCheckRun) {
  return merge(sample("check-run"), {
    id: run.id,
    name: run.name,
    head_sha: run.headSha,
    status: run.status,
    conclusion: run.conclusion,
  });
}
