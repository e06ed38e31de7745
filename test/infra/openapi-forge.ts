/**
 * Fake GitHub and GitLab servers on 127.0.0.1 whose every request (method,
 * path, path and query parameters, body) and every response they serve is
 * validated against the forge's published OpenAPI description. A provider that
 * calls an endpoint wrongly gets a 4xx and a recorded violation; a fake that
 * answers in a shape the real forge would not is a recorded violation too.
 * Tests assert `violations` is empty.
 *
 * GitHub: `@octokit/openapi` (api.github.com, OpenAPI 3.0), GraphQL checked
 * with `@octokit/graphql-schema`. GitLab: test/forge/fixtures/gitlab-openapi.json
 * (see docs/forges.md for where it comes from).
 */
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { validate } from "@octokit/graphql-schema";
import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { parse as parseYaml } from "yaml";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = Record<string, unknown>;

export interface FakeRequest {
  method: string;
  /** Path without the API prefix, percent-decoded per segment. */
  path: string;
  operationId: string;
  params: Record<string, string>;
  query: Record<string, string | string[]>;
  body: unknown;
  headers: Record<string, string | undefined>;
}

export interface FakeResponse {
  status: number;
  body?: unknown;
  /** A plain-text body instead (GitLab's "Retry later"); not schema-checked. */
  text?: string;
  headers?: Record<string, string>;
}

export type Handler = (req: FakeRequest) => FakeResponse | Promise<FakeResponse>;
/** One-shot or lasting override of the next matching request (error injection). */
export type Injection = (req: FakeRequest) => FakeResponse | undefined;

export interface RecordedRequest {
  method: string;
  path: string;
  operationId: string;
  status: number;
}

interface Route {
  method: string;
  template: string;
  regex: RegExp;
  names: string[];
  op: Obj;
  pointer: string;
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function escapePointer(segment: string): string {
  return segment.replace(/~/g, "~0").replace(/\//g, "~1");
}

/**
 * OpenAPI 3.0's `nullable` is not JSON Schema: rewrite it (in place, once per
 * document) into `anyOf [..., {type: null}]` or a null-admitting enum, which
 * is what the description means.
 */
function normalizeNullable(node: unknown): void {
  if (Array.isArray(node)) {
    for (const n of node) normalizeNullable(n);
    return;
  }
  if (!node || typeof node !== "object") return;
  const o = node as Obj;
  for (const v of Object.values(o)) normalizeNullable(v);
  if (o.nullable !== true) return;
  delete o.nullable;
  if (Array.isArray(o.enum) && !o.enum.includes(null)) o.enum = [...o.enum, null];
  if (typeof o.type === "string") {
    o.type = [o.type, "null"];
    return;
  }
  const rest: Obj = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === "description" || k === "title") continue;
    rest[k] = v;
    delete o[k];
  }
  o.anyOf = [rest, { type: "null" }];
}

/** Index over one OpenAPI 3.0 document: routes, `$ref` resolution, cached validators, sample data. */
export class OpenApiSpec {
  readonly doc: Obj;
  readonly routes: Route[] = [];
  readonly #ajv: Ajv;
  readonly #validators = new Map<string, ValidateFunction>();

  constructor(doc: Obj) {
    normalizeNullable(doc);
    this.doc = doc;
    this.#ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false, validateFormats: true });
    addFormats(this.#ajv);
    // GitHub's own format for `owner/name`.
    this.#ajv.addFormat("repo.nwo", /^[^/\s]+\/[^/\s]+$/);
    this.#ajv.addSchema(doc as object, "spec");
    for (const [template, ops] of Object.entries((doc.paths ?? {}) as Record<string, Obj>)) {
      for (const [method, op] of Object.entries(ops)) {
        if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
        const names: string[] = [];
        const source = template
          .split("/")
          .map((seg) =>
            seg.replace(/[.*+?^$()|[\]\\]|\{([^}]+)\}/g, (m, name: string | undefined) => {
              if (!name) return `\\${m}`;
              names.push(name);
              return "([^/]+)";
            }),
          )
          .join("/");
        this.routes.push({
          method: method.toUpperCase(),
          template,
          regex: new RegExp(`^${source}$`),
          names,
          op: op as Obj,
          pointer: `/paths/${escapePointer(template)}/${method}`,
        });
      }
    }
    // Literal segments must win over parameters (`/pulls/comments` before `/pulls/{pull_number}`).
    this.routes.sort(
      (a, b) => b.template.replace(/\{[^}]+\}/g, "").length - a.template.replace(/\{[^}]+\}/g, "").length,
    );
  }

  resolve<T = Obj>(node: unknown): T {
    let n = node as Obj;
    for (let i = 0; i < 20 && n && typeof n.$ref === "string"; i++) n = this.at(n.$ref.slice(1));
    return n as T;
  }

  at(pointer: string): Obj {
    let n: unknown = this.doc;
    for (const raw of pointer.split("/").slice(1)) {
      const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
      n = (n as Obj)[key];
    }
    return n as Obj;
  }

  match(method: string, path: string): { route: Route; params: Record<string, string> } | undefined {
    for (const route of this.routes) {
      if (route.method !== method) continue;
      const m = route.regex.exec(path);
      if (!m) continue;
      const params: Record<string, string> = {};
      route.names.forEach((n, i) => {
        params[n] = decodeURIComponent(m[i + 1] ?? "");
      });
      return { route, params };
    }
    return undefined;
  }

  /** Errors of `value` against the schema at `pointer` (a JSON pointer into the document). */
  check(pointer: string, value: unknown): string[] {
    let v = this.#validators.get(pointer);
    if (!v) {
      const fragment = pointer
        .split("/")
        .map((s) => encodeURIComponent(s))
        .join("/");
      v = this.#ajv.compile({ $ref: `spec#${fragment}` });
      this.#validators.set(pointer, v);
    }
    if (v(value)) return [];
    return (v.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || "(root)"} ${e.message ?? ""}`.trim());
  }

  /** A minimal instance of the schema: required members only, first enum value, null where allowed. */
  sample(schema: unknown, depth = 0): Json {
    const s = this.resolve(schema);
    if (!s || depth > 40) return null;
    if (Array.isArray(s.allOf)) {
      let out: Json = {};
      for (const part of s.allOf) out = merge(out, this.sample(part, depth + 1));
      return out;
    }
    const alternatives = (s.anyOf ?? s.oneOf) as unknown[] | undefined;
    if (alternatives) {
      const pick = alternatives.find((a) => this.resolve<Obj>(a).type !== "null") ?? alternatives[0];
      return this.sample(pick, depth + 1);
    }
    if (Array.isArray(s.enum)) return (s.enum.find((e) => e !== null) ?? null) as Json;
    const type = Array.isArray(s.type)
      ? (s.type.find((t) => t !== "null") as string | undefined)
      : (s.type as string);
    if (Array.isArray(s.type) && s.type.includes("null") && depth > 0) return null;
    switch (type) {
      case "object":
      case undefined: {
        const out: Record<string, Json> = {};
        const props = (s.properties ?? {}) as Obj;
        for (const key of (s.required ?? []) as string[]) out[key] = this.sample(props[key] ?? {}, depth + 1);
        return out;
      }
      case "array":
        return [];
      case "integer":
      case "number":
        return typeof s.minimum === "number" ? s.minimum : 1;
      case "boolean":
        return false;
      case "string":
        switch (s.format) {
          case "date-time":
            return "2026-01-01T00:00:00Z";
          case "date":
            return "2026-01-01";
          case "uri":
          case "url":
            return "https://forge.example.test/x";
          case "email":
            return "bot@example.test";
          case "uuid":
            return "00000000-0000-4000-8000-000000000000";
          default:
            return "x";
        }
      default:
        return null;
    }
  }
}

/** Deep merge for building responses: objects merge, anything else is replaced. */
export function merge(base: Json, over: unknown): Json {
  if (
    base &&
    over &&
    typeof base === "object" &&
    typeof over === "object" &&
    !Array.isArray(base) &&
    !Array.isArray(over)
  ) {
    const out: Record<string, Json> = { ...(base as Record<string, Json>) };
    for (const [k, v] of Object.entries(over as Obj)) {
      if (v === undefined) continue;
      out[k] = k in out ? merge(out[k] ?? null, v) : (v as Json);
    }
    return out;
  }
  return over as Json;
}

function coerce(value: string, schema: Obj): unknown {
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  if (type === "integer" || type === "number") return /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  if (type === "boolean") return value === "true" ? true : value === "false" ? false : value;
  return value;
}

export interface OpenApiFake {
  url: string;
  spec: OpenApiSpec;
  requests: RecordedRequest[];
  violations: string[];
  /** Override matching requests: the injection answers (and is validated like any response) while it returns one. */
  inject(fn: Injection, times?: number): void;
  close(): Promise<void>;
}

export interface FakeOptions {
  spec: OpenApiSpec;
  /** Where the API lives under the server root (`/api/v3`, `/api/v4`). */
  prefix: string;
  handlers: Record<string, Handler>;
  /** Routes outside the description (GitHub's GraphQL endpoint), keyed `METHOD /full/path`. */
  extra?: Record<string, (req: FakeRequest, violations: string[]) => FakeResponse>;
  /** Schema used for undocumented error statuses (a forge answers 401/404 anywhere). */
  errorSchema?: string;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function startOpenApiFake(opts: FakeOptions): Promise<OpenApiFake> {
  const { spec } = opts;
  const requests: RecordedRequest[] = [];
  const violations: string[] = [];
  const injections: { fn: Injection; left: number }[] = [];

  const validateRequest = (route: Route, req: FakeRequest, rawQuery: URLSearchParams): string[] => {
    const problems: string[] = [];
    const where = `${route.method} ${route.template}`;
    const raw = (route.op.parameters ?? []) as Obj[];
    const queryNames = new Set<string>();
    raw.forEach((entry, i) => {
      const p = spec.resolve(entry);
      const name = p.name as string;
      // A parameter given by $ref keeps its schema under components.
      const pointer =
        typeof entry.$ref === "string"
          ? `${entry.$ref.slice(1)}/schema`
          : `${route.pointer}/parameters/${i}/schema`;
      const schema = spec.resolve((p.schema ?? {}) as Obj);
      if (p.in === "query") {
        queryNames.add(name);
        const values = rawQuery.getAll(name);
        if (values.length === 0) {
          if (p.required) problems.push(`${where}: missing required query parameter ${name}`);
          return;
        }
        const value =
          schema.type === "array"
            ? values.flatMap((v) => v.split(",")).map((v) => coerce(v, spec.resolve(schema.items)))
            : coerce(values[0] ?? "", schema);
        for (const e of spec.check(pointer, value)) problems.push(`${where}: query ${name}: ${e}`);
      } else if (p.in === "path") {
        const v = req.params[name];
        if (v === undefined || v === "") problems.push(`${where}: empty path parameter ${name}`);
        else
          for (const e of spec.check(pointer, coerce(v, schema)))
            problems.push(`${where}: path ${name}: ${e}`);
      }
    });
    for (const name of rawQuery.keys())
      if (!queryNames.has(name)) problems.push(`${where}: unknown query parameter ${name}`);
    const rb = spec.resolve(route.op.requestBody);
    const content = (rb?.content ?? {}) as Record<string, Obj>;
    if (route.op.requestBody) {
      if (req.body === undefined) {
        if (rb.required) problems.push(`${where}: missing request body`);
      } else if (content["application/json"]) {
        const pointer =
          typeof (route.op.requestBody as Obj).$ref === "string"
            ? `${((route.op.requestBody as Obj).$ref as string).slice(1)}/content/application~1json/schema`
            : `${route.pointer}/requestBody/content/application~1json/schema`;
        for (const e of spec.check(pointer, req.body)) problems.push(`${where}: body ${e}`);
      }
    } else if (req.body !== undefined && route.method !== "GET" && route.method !== "DELETE") {
      problems.push(`${where}: sent a body the operation does not take`);
    }
    return problems;
  };

  const validateResponse = (route: Route, res: FakeResponse): string[] => {
    const where = `${route.method} ${route.template} → ${res.status}`;
    if (res.text !== undefined) return res.status >= 400 ? [] : [`${where}: a success must be JSON`];
    const responses = (route.op.responses ?? {}) as Obj;
    const key = String(res.status);
    const declared = responses[key] ?? responses.default;
    if (!declared) {
      if (res.status >= 400 && opts.errorSchema)
        return spec.check(opts.errorSchema, res.body).map((e) => `${where}: ${e}`);
      return [`${where}: status not in the description`];
    }
    const r = spec.resolve(declared);
    const schemaHolder = (r.content as Record<string, Obj> | undefined)?.["application/json"];
    if (!schemaHolder)
      return res.body === undefined ? [] : [`${where}: the description has no JSON body here`];
    const base =
      typeof (declared as Obj).$ref === "string"
        ? ((declared as Obj).$ref as string).slice(1)
        : `${route.pointer}/responses/${escapePointer(responses[key] ? key : "default")}`;
    return spec.check(`${base}/content/application~1json/schema`, res.body).map((e) => `${where}: ${e}`);
  };

  const serve = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const text = await readBody(req);
    let body: unknown;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(", ") : v;
    const send = (r: FakeResponse) => {
      if (r.text !== undefined) {
        res.writeHead(r.status, { "content-type": "text/plain", ...r.headers });
        return res.end(r.text);
      }
      res.writeHead(r.status, {
        ...(r.body === undefined ? {} : { "content-type": "application/json; charset=utf-8" }),
        ...r.headers,
      });
      res.end(r.body === undefined ? undefined : JSON.stringify(r.body));
    };
    const query: Record<string, string | string[]> = {};
    for (const k of new Set(url.searchParams.keys())) {
      const all = url.searchParams.getAll(k);
      query[k] = all.length > 1 ? all : (all[0] ?? "");
    }
    const extra = opts.extra?.[`${req.method} ${url.pathname}`];
    if (extra) {
      const op = `extra:${url.pathname}`;
      const r = extra(
        {
          method: req.method ?? "GET",
          path: url.pathname,
          operationId: op,
          params: {},
          query,
          body,
          headers,
        },
        violations,
      );
      requests.push({ method: req.method ?? "GET", path: url.pathname, operationId: op, status: r.status });
      return send(r);
    }
    if (!url.pathname.startsWith(opts.prefix)) {
      violations.push(`${req.method} ${url.pathname}: outside the API prefix ${opts.prefix}`);
      return send({ status: 404, body: { message: "Not Found" } });
    }
    const path = url.pathname.slice(opts.prefix.length) || "/";
    const matched = spec.match(req.method ?? "GET", path);
    if (!matched) {
      violations.push(`${req.method} ${path}: no such operation in the description`);
      requests.push({ method: req.method ?? "GET", path, operationId: "(none)", status: 404 });
      return send({ status: 404, body: { message: "Not Found" } });
    }
    const { route, params } = matched;
    const operationId = String(route.op.operationId ?? `${route.method} ${route.template}`);
    const fake: FakeRequest = { method: route.method, path, operationId, params, query, body, headers };
    const problems = validateRequest(route, fake, url.searchParams);
    let response: FakeResponse;
    if (problems.length) {
      violations.push(...problems);
      response = {
        status: 422,
        body: { message: `request violates the description: ${problems.join("; ")}` },
      };
    } else {
      const inj = injections.find((i) => i.left > 0 && i.fn(fake));
      if (inj) {
        inj.left--;
        response = inj.fn(fake) as FakeResponse;
      } else {
        const handler = opts.handlers[operationId];
        if (!handler) {
          violations.push(`${operationId}: the fake has no handler`);
          response = { status: 501, body: { message: "not implemented by the fake" } };
        } else response = await handler(fake);
      }
      violations.push(...validateResponse(route, response));
    }
    requests.push({ method: route.method, path, operationId, status: response.status });
    send(response);
  };

  const server: Server = createServer((req, res) => {
    serve(req, res).catch((err: unknown) => {
      violations.push(`fake crashed: ${(err as Error).stack ?? String(err)}`);
      res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    spec,
    requests,
    violations,
    inject(fn, times = 1) {
      injections.unshift({ fn, left: times });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------- GitHub

const require = createRequire(import.meta.url);
let githubSpec: OpenApiSpec | undefined;

/** GitHub's description, loaded once per test worker (13 MB). */
export function loadGitHubSpec(): OpenApiSpec {
  githubSpec ??= new OpenApiSpec(
    JSON.parse(
      readFileSync(require.resolve("@octokit/openapi/generated/api.github.com.json"), "utf8"),
    ) as Obj,
  );
  return githubSpec;
}

export interface GitHubPull {
  number: number;
  node_id: string;
  head: string;
  headSha: string;
  base: string;
  title: string;
  body: string | null;
  state: "open" | "closed";
  merged: boolean;
  labels: string[];
  reviewers: string[];
  autoMerge: { method: string } | null;
  comments: string[];
}

/** What the fake GitHub holds; tests seed and inspect it directly. */
export class GitHubState {
  readonly owner: string;
  readonly repo: string;
  readonly pulls: GitHubPull[] = [];
  readonly branches = new Map<string, string>();
  readonly statuses = new Map<string, { context: string; state: string }[]>();
  readonly checkRuns = new Map<string, { name: string; status: string; conclusion: string | null }[]>();
  /** GitHub answers enablePullRequestAutoMerge with this error when set (e.g. "Pull request is in clean status"). */
  autoMergeError: string | undefined;
  constructor(owner: string, repo: string) {
    this.owner = owner;
    this.repo = repo;
  }
  open(head: string): GitHubPull[] {
    return this.pulls.filter((p) => p.head === head && p.state === "open");
  }
}

function githubPull(spec: OpenApiSpec, st: GitHubState, p: GitHubPull, schema: string): Json {
  const repoUrl = `https://github.example.test/${st.owner}/${st.repo}`;
  return merge(spec.sample({ $ref: `#/components/schemas/${schema}` }), {
    id: p.number * 1000,
    number: p.number,
    node_id: p.node_id,
    html_url: `${repoUrl}/pull/${p.number}`,
    url: `https://api.example.test/repos/${st.owner}/${st.repo}/pulls/${p.number}`,
    state: p.state,
    title: p.title,
    body: p.body,
    merged_at: p.merged ? "2026-01-02T00:00:00Z" : null,
    labels: p.labels.map((name, i) => ({
      id: i + 1,
      node_id: `L${i}`,
      url: `https://api.example.test/labels/${i}`,
      name,
      description: "",
      color: "0e8a16",
      default: false,
    })),
    head: { ref: p.head, sha: p.headSha, label: `${st.owner}:${p.head}` },
    base: { ref: p.base, sha: "0".repeat(40), label: `${st.owner}:${p.base}` },
    auto_merge: p.autoMerge
      ? {
          enabled_by: spec.sample({ $ref: "#/components/schemas/simple-user" }),
          merge_method: p.autoMerge.method,
          commit_title: "",
          commit_message: "",
        }
      : null,
    ...(schema === "pull-request" ? { merged: p.merged, mergeable: true } : {}),
  });
}

/**
 * A fake GitHub (REST under /api/v3 as on GitHub Enterprise, GraphQL at
 * /api/graphql) over an in-memory repository.
 */
export async function startFakeGitHub(
  st: GitHubState,
  /** More operations, or replacements, given the defaults (the GitHub App's tests add installations, issues, checks). */
  extend?: (defaults: Readonly<Record<string, Handler>>) => Record<string, Handler>,
): Promise<OpenApiFake> {
  const spec = loadGitHubSpec();
  const notFound = {
    status: 404,
    body: { message: "Not Found", documentation_url: "https://docs.github.com/rest" },
  };
  const repoOk = (req: FakeRequest) => req.params.owner === st.owner && req.params.repo === st.repo;
  const pull = (req: FakeRequest) =>
    st.pulls.find((p) => p.number === Number(req.params.pull_number ?? req.params.issue_number));

  const handlers: Record<string, Handler> = {
    "pulls/list": (req) => {
      if (!repoOk(req)) return notFound;
      const state = (req.query.state as string | undefined) ?? "open";
      const head = req.query.head as string | undefined;
      const perPage = Number(req.query.per_page ?? 30);
      const page = Number(req.query.page ?? 1);
      let list = st.pulls.filter((p) => state === "all" || p.state === state);
      if (head) list = list.filter((p) => `${st.owner}:${p.head}` === head);
      if (req.query.sort === "updated") list = [...list].reverse();
      const slice = list.slice((page - 1) * perPage, page * perPage);
      return { status: 200, body: slice.map((p) => githubPull(spec, st, p, "pull-request-simple")) };
    },
    "pulls/create": (req) => {
      if (!repoOk(req)) return notFound;
      const b = req.body as { head: string; base: string; title: string; body?: string };
      if (st.open(b.head).length)
        return {
          status: 422,
          body: {
            message: "Validation Failed",
            errors: [
              {
                resource: "PullRequest",
                code: "custom",
                message: `A pull request already exists for ${st.owner}:${b.head}.`,
              },
            ],
            documentation_url: "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
          },
        };
      const sha = st.branches.get(b.head);
      if (!sha)
        return {
          status: 422,
          body: {
            message: "Validation Failed",
            errors: [{ resource: "PullRequest", field: "head", code: "invalid" }],
          },
        };
      const number = st.pulls.length + 1;
      const p: GitHubPull = {
        number,
        node_id: `PR_${number}`,
        head: b.head,
        headSha: sha,
        base: b.base,
        title: b.title,
        body: b.body ?? null,
        state: "open",
        merged: false,
        labels: [],
        reviewers: [],
        autoMerge: null,
        comments: [],
      };
      st.pulls.push(p);
      return { status: 201, body: githubPull(spec, st, p, "pull-request") };
    },
    "pulls/update": (req) => {
      const p = pull(req);
      if (!repoOk(req) || !p) return notFound;
      const b = req.body as Partial<{ title: string; body: string; base: string; state: "open" | "closed" }>;
      if (b.title !== undefined) p.title = b.title;
      if (b.body !== undefined) p.body = b.body;
      if (b.base !== undefined) p.base = b.base;
      if (b.state !== undefined) p.state = b.state;
      return { status: 200, body: githubPull(spec, st, p, "pull-request") };
    },
    "issues/add-labels": (req) => {
      const p = pull(req);
      if (!repoOk(req) || !p) return notFound;
      const b = req.body as { labels: string[] };
      for (const l of b.labels) if (!p.labels.includes(l)) p.labels.push(l);
      return {
        status: 200,
        body: p.labels.map((name, i) =>
          merge(spec.sample({ $ref: "#/components/schemas/label" }), { id: i + 1, name, color: "0e8a16" }),
        ),
      };
    },
    "pulls/request-reviewers": (req) => {
      const p = pull(req);
      if (!repoOk(req) || !p) return notFound;
      const b = req.body as { reviewers?: string[]; team_reviewers?: string[] };
      p.reviewers.push(...(b.reviewers ?? []), ...(b.team_reviewers ?? []).map((t) => `team:${t}`));
      return { status: 201, body: githubPull(spec, st, p, "pull-request-simple") };
    },
    "issues/create-comment": (req) => {
      const p = pull(req);
      if (!repoOk(req) || !p) return notFound;
      p.comments.push((req.body as { body: string }).body);
      return {
        status: 201,
        body: merge(spec.sample({ $ref: "#/components/schemas/issue-comment" }), {
          body: (req.body as { body: string }).body,
        }),
      };
    },
    "git/delete-ref": (req) => {
      const branch = (req.params.ref ?? "").replace(/^heads\//, "");
      if (!repoOk(req)) return notFound;
      if (!st.branches.delete(branch))
        return {
          status: 422,
          body: { message: "Reference does not exist", documentation_url: "https://docs.github.com/rest" },
        };
      return { status: 204 };
    },
    "pulls/merge": (req) => {
      const p = pull(req);
      if (!repoOk(req) || !p) return notFound;
      p.merged = true;
      p.state = "closed";
      return {
        status: 200,
        body: { sha: "1".repeat(40), merged: true, message: "Pull Request successfully merged" },
      };
    },
    "repos/get-combined-status-for-ref": (req) => {
      if (!repoOk(req)) return notFound;
      const ref = req.params.ref ?? "";
      const list = st.statuses.get(ref) ?? [];
      const state = list.some((s) => s.state === "failure" || s.state === "error")
        ? "failure"
        : list.some((s) => s.state === "pending") || list.length === 0
          ? "pending"
          : "success";
      return {
        status: 200,
        body: merge(spec.sample({ $ref: "#/components/schemas/combined-commit-status" }), {
          sha: ref,
          state,
          total_count: list.length,
          statuses: list.map((s, i) =>
            merge(spec.sample({ $ref: "#/components/schemas/simple-commit-status" }), {
              id: i + 1,
              context: s.context,
              state: s.state,
              target_url: null,
            }),
          ),
        }),
      };
    },
    "checks/list-for-ref": (req) => {
      if (!repoOk(req)) return notFound;
      const list = st.checkRuns.get(req.params.ref ?? "") ?? [];
      return {
        status: 200,
        body: {
          total_count: list.length,
          check_runs: list.map((r, i) =>
            merge(spec.sample({ $ref: "#/components/schemas/check-run" }), {
              id: i + 1,
              name: r.name,
              status: r.status,
              conclusion: r.conclusion,
              html_url: null,
            }),
          ),
        },
      };
    },
  };

  const graphql = (req: FakeRequest, violations: string[]): FakeResponse => {
    const b = req.body as { query?: string; variables?: Record<string, unknown> };
    const errors = validate(b.query ?? "");
    if (errors.length) {
      violations.push(...errors.map((e) => `graphql: ${e.message}`));
      return { status: 200, body: { errors: errors.map((e) => ({ message: e.message })) } };
    }
    const match = /enablePullRequestAutoMerge/.test(b.query ?? "");
    if (!match) {
      violations.push("graphql: the fake only knows enablePullRequestAutoMerge");
      return { status: 200, body: { errors: [{ message: "unsupported" }] } };
    }
    const id = String(b.variables?.id ?? "");
    const method = String(b.variables?.mergeMethod ?? "");
    if (!["MERGE", "SQUASH", "REBASE"].includes(method))
      violations.push(`graphql: bad PullRequestMergeMethod ${method}`);
    const p = st.pulls.find((x) => x.node_id === id);
    if (!p)
      return {
        status: 200,
        body: {
          data: { enablePullRequestAutoMerge: null },
          errors: [
            { type: "NOT_FOUND", message: `Could not resolve to a node with the global id of '${id}'` },
          ],
        },
      };
    if (st.autoMergeError)
      return {
        status: 200,
        body: {
          data: { enablePullRequestAutoMerge: null },
          errors: [{ type: "UNPROCESSABLE", message: st.autoMergeError }],
        },
      };
    p.autoMerge = { method: method.toLowerCase() };
    return {
      status: 200,
      body: {
        data: {
          enablePullRequestAutoMerge: {
            pullRequest: { autoMergeRequest: { enabledAt: "2026-01-01T00:00:00Z" } },
          },
        },
      },
    };
  };

  return startOpenApiFake({
    spec,
    prefix: "/api/v3",
    handlers: { ...handlers, ...extend?.(handlers) },
    extra: { "POST /api/graphql": graphql },
    errorSchema: "/components/schemas/basic-error",
  });
}

// ---------------------------------------------------------------- GitLab

let gitlabSpec: OpenApiSpec | undefined;

export function loadGitLabSpec(): OpenApiSpec {
  gitlabSpec ??= new OpenApiSpec(
    parseYaml(readFileSync(new URL("../forge/fixtures/gitlab-openapi.yaml", import.meta.url), "utf8")) as Obj,
  );
  return gitlabSpec;
}

export interface GitLabMr {
  iid: number;
  source: string;
  target: string;
  sha: string;
  title: string;
  description: string | null;
  state: "opened" | "closed" | "merged";
  labels: string[];
  reviewerIds: number[];
  mwps: boolean;
  notes: string[];
  closedBy?: string;
}

export class GitLabState {
  readonly project: string;
  readonly mrs: GitLabMr[] = [];
  readonly branches = new Map<string, string>();
  readonly users = new Map<string, number>([
    ["bot", 1],
    ["alice", 2],
  ]);
  readonly statuses = new Map<
    string,
    { name: string; status: string; description?: string | null; target_url?: string | null }[]
  >();
  /** Whether the target branch's pipeline has already succeeded (then "merge when pipeline succeeds" merges at once). */
  pipelineDone = false;
  constructor(project: string) {
    this.project = project;
  }
  open(source: string): GitLabMr[] {
    return this.mrs.filter((m) => m.source === source && m.state === "opened");
  }
}

export async function startFakeGitLab(st: GitLabState): Promise<OpenApiFake> {
  const spec = loadGitLabSpec();
  const notFound = { status: 404, body: { message: "404 Project Not Found" } };
  const user = (username: string) => ({
    id: st.users.get(username) ?? 1,
    username,
    name: username,
    state: "active",
    avatar_url: null,
    web_url: `https://gitlab.example.test/${username}`,
  });
  const entity = (m: GitLabMr) => ({
    id: 1000 + m.iid,
    iid: m.iid,
    project_id: 7,
    title: m.title,
    description: m.description,
    state: m.state,
    created_at: "2026-01-01T00:00:00Z",
    updated_at: "2026-01-01T00:00:00Z",
    merged_at: m.state === "merged" ? "2026-01-02T00:00:00Z" : null,
    closed_at: m.state === "closed" ? "2026-01-02T00:00:00Z" : null,
    target_branch: m.target,
    source_branch: m.source,
    author: user("bot"),
    merged_by: m.state === "merged" ? user("bot") : null,
    merge_user: m.state === "merged" ? user("bot") : null,
    closed_by: m.state === "closed" ? user(m.closedBy ?? "bot") : null,
    reviewers: m.reviewerIds.map((id) => user([...st.users].find(([, v]) => v === id)?.[0] ?? "bot")),
    labels: m.labels,
    draft: false,
    merge_when_pipeline_succeeds: m.mwps,
    detailed_merge_status: "mergeable",
    sha: m.sha,
    web_url: `https://gitlab.example.test/${st.project}/-/merge_requests/${m.iid}`,
    changes_count: "1",
  });
  const projectOk = (req: FakeRequest) => req.params.id === st.project;
  const mr = (req: FakeRequest) => st.mrs.find((m) => m.iid === Number(req.params.merge_request_iid));

  const handlers: Record<string, Handler> = {
    listProjectMergeRequests: (req) => {
      if (!projectOk(req)) return notFound;
      const state = (req.query.state as string | undefined) ?? "all";
      let list = st.mrs.filter((m) => state === "all" || m.state === state);
      if (req.query.source_branch) list = list.filter((m) => m.source === req.query.source_branch);
      if (req.query.sort === "desc") list = [...list].reverse();
      const perPage = Number(req.query.per_page ?? 20);
      return { status: 200, body: list.slice(0, perPage).map(entity) };
    },
    createMergeRequest: (req) => {
      if (!projectOk(req)) return notFound;
      const b = req.body as {
        source_branch: string;
        target_branch: string;
        title: string;
        description?: string;
        labels?: string;
      };
      const existing = st.open(b.source_branch)[0];
      if (existing)
        return {
          status: 409,
          body: {
            message: [`Another open merge request already exists for this source branch: !${existing.iid}`],
          },
        };
      const sha = st.branches.get(b.source_branch);
      if (!sha) return { status: 422, body: { message: ["Source branch does not exist"] } };
      const m: GitLabMr = {
        iid: st.mrs.length + 1,
        source: b.source_branch,
        target: b.target_branch,
        sha,
        title: b.title,
        description: b.description ?? null,
        state: "opened",
        labels: b.labels ? b.labels.split(",") : [],
        reviewerIds: [],
        mwps: false,
        notes: [],
      };
      st.mrs.push(m);
      return { status: 201, body: entity(m) };
    },
    updateMergeRequest: (req) => {
      const m = mr(req);
      if (!projectOk(req) || !m) return notFound;
      const b = req.body as Partial<{
        title: string;
        description: string;
        target_branch: string;
        state_event: "close" | "reopen";
        add_labels: string;
        reviewer_ids: number[];
      }>;
      if (b.title !== undefined) m.title = b.title;
      if (b.description !== undefined) m.description = b.description;
      if (b.target_branch !== undefined) m.target = b.target_branch;
      if (b.state_event === "close") m.state = "closed";
      if (b.add_labels) for (const l of b.add_labels.split(",")) if (!m.labels.includes(l)) m.labels.push(l);
      if (b.reviewer_ids) m.reviewerIds = b.reviewer_ids;
      return { status: 200, body: entity(m) };
    },
    mergeMergeRequest: (req) => {
      const m = mr(req);
      if (!projectOk(req) || !m) return notFound;
      const b = (req.body ?? {}) as { merge_when_pipeline_succeeds?: boolean; auto_merge?: boolean };
      if (m.state !== "opened") return { status: 405, body: { message: "405 Method Not Allowed" } };
      if ((b.merge_when_pipeline_succeeds || b.auto_merge) && !st.pipelineDone) m.mwps = true;
      else m.state = "merged";
      return { status: 200, body: entity(m) };
    },
    createMergeRequestNote: (req) => {
      const m = mr(req);
      if (!projectOk(req) || !m) return notFound;
      const body = (req.body as { body: string }).body;
      m.notes.push(body);
      return {
        status: 201,
        body: {
          id: m.notes.length,
          body,
          author: user("bot"),
          created_at: "2026-01-01T00:00:00Z",
          system: false,
          noteable_type: "MergeRequest",
        },
      };
    },
    deleteBranch: (req) => {
      if (!projectOk(req)) return notFound;
      if (!st.branches.delete(req.params.branch ?? ""))
        return { status: 404, body: { message: "404 Branch Not Found" } };
      return { status: 204 };
    },
    listCommitStatuses: (req) => {
      if (!projectOk(req)) return notFound;
      const list = st.statuses.get(req.params.sha ?? "") ?? [];
      return {
        status: 200,
        body: list.map((s, i) => ({
          id: i + 1,
          sha: req.params.sha,
          ref: "main",
          status: s.status,
          name: s.name,
          target_url: s.target_url ?? null,
          description: s.description ?? null,
          created_at: "2026-01-01T00:00:00Z",
          allow_failure: false,
        })),
      };
    },
    createCommitStatus: (req) => {
      if (!projectOk(req)) return notFound;
      const b = req.body as {
        state: string;
        name?: string;
        context?: string;
        description?: string;
        target_url?: string;
      };
      const sha = req.params.sha ?? "";
      const status = {
        name: b.name ?? b.context ?? "default",
        status: b.state,
        description: b.description ?? null,
        target_url: b.target_url ?? null,
      };
      // GitLab lists a commit's statuses newest first.
      st.statuses.set(sha, [status, ...(st.statuses.get(sha) ?? [])]);
      return {
        status: 201,
        body: {
          id: 100 + (st.statuses.get(sha)?.length ?? 0),
          sha,
          ref: "main",
          ...status,
          created_at: "2026-01-01T00:00:00Z",
          allow_failure: false,
        },
      };
    },
    listUsers: (req) => {
      const name = req.query.username as string | undefined;
      const found = name && st.users.has(name) ? [user(name)] : [];
      return { status: 200, body: found };
    },
  };
  return startOpenApiFake({ spec, prefix: "/api/v4", handlers, errorSchema: "/components/schemas/Error" });
}
