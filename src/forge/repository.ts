/**
 * The fleet repository on its forge, as bootstrap needs it: does it exist,
 * may the token push to it, what is its clone URL, and creating it. The
 * shapes every provider answers in (`RepositoryHost`), and the one JSON call
 * they make it with: every answer parsed through the provider's schema,
 * every failure worded by classifyForgeFailure so all forges say the same
 * problem the same way; and the host GitHub and Gitea share, their APIs
 * being alike here. Each provider's own calls are in its folder
 * (`<kind>/repository.ts`), served through `ForgeProvider.repository`.
 */
import { z } from "zod";
import { ForgeError } from "../errors.ts";
import { classifyForgeFailure, withRateLimitWait } from "./errors.ts";
import type { ForgeKind, ForgeProvider } from "./types.ts";

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

/** What a provider's repository host is made from (names already checked by the caller). */
export interface RepositoryOptions {
  /** Web base URL of the forge; the public forge when absent (required for Gitea). */
  url?: string;
  owner: string;
  name: string;
  token: string;
  /** Where the token came from, for messages (`$GITEA_TOKEN`). */
  tokenSource?: string;
  fetch?: typeof fetch;
}

export type JsonCall = <S extends z.ZodType>(
  action: string,
  method: string,
  path: string,
  schema: S,
  body?: unknown,
) => Promise<{ status: number; data: z.infer<S> | undefined }>;

// What the forges put in an error body: GitHub and Gitea `message`, GitLab `message` (a string, or a
// field → errors object) or `error`.
const ErrorBody = z.looseObject({ message: z.unknown().optional(), error: z.unknown().optional() });

/** One JSON call against `api`; 404 comes back as `data: undefined`, other failures as the forge's typed error. */
export function jsonCaller(
  forge: Pick<ForgeProvider, "label" | "lacks">,
  kind: ForgeKind,
  repo: string,
  api: string,
  headers: Record<string, string>,
  opts: Pick<RepositoryOptions, "tokenSource" | "fetch">,
): JsonCall {
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
            const raw: unknown = JSON.parse(text);
            const j = ErrorBody.parse(raw);
            message = typeof j.message === "string" ? j.message : JSON.stringify(j.message ?? j.error ?? raw);
          } catch {
            // not a JSON object: the text is the message
          }
          throw classifyForgeFailure({
            forge,
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

/** What a GitHub-like forge's repository host is made of (GitHub, Gitea). */
export interface UserOrOrgForge<R extends z.ZodType> {
  forge: Pick<ForgeProvider, "label" | "lacks">;
  kind: ForgeKind;
  api: string;
  headers: Record<string, string>;
  /** The schema of a repository answer, and what bootstrap reads of it. */
  repository: R;
  state(r: z.infer<R>): RepoState;
  /** The schema of `GET /user`. */
  user: z.ZodType<{ login: string }>;
  /** Members the create call carries besides name, visibility, description and auto-init. */
  createExtra?(c: CreateOptions): Record<string, unknown>;
}

/**
 * The host GitHub and Gitea share: `GET /repos/{owner}/{name}`, `GET /user`,
 * and creation for the token's user (`POST /user/repos`) or in organisation
 * `owner` (`POST /orgs/{owner}/repos`), a missing organisation named.
 */
export function userOrOrgRepository<R extends z.ZodType>(
  opts: RepositoryOptions,
  f: UserOrOrgForge<R>,
): RepositoryHost {
  const fullName = `${opts.owner}/${opts.name}`;
  const call = jsonCaller(f.forge, f.kind, fullName, f.api, f.headers, opts);
  const owner = encodeURIComponent(opts.owner);
  return {
    kind: f.kind,
    fullName,
    async get() {
      const path = `/repos/${owner}/${encodeURIComponent(opts.name)}`;
      const { data } = await call("read the repository", "GET", path, f.repository);
      return data === undefined ? undefined : f.state(data);
    },
    async whoami() {
      const { data } = await call("read the token's user", "GET", "/user", f.user);
      if (!data) throw new ForgeError(`${f.kind}: the token's user was not found`);
      return data.login;
    },
    async create(c) {
      const path = c.personal ? "/user/repos" : `/orgs/${owner}/repos`;
      const { data } = await call("create the repository", "POST", path, f.repository, {
        name: opts.name,
        private: c.private,
        auto_init: true,
        description: c.description,
        ...f.createExtra?.(c),
      });
      if (data === undefined)
        throw new ForgeError(
          `${f.forge.label} ${fullName}: organisation ${opts.owner} not found (use --personal for a user's repository)`,
          404,
        );
      // The creator may push, whatever the answer's permission block says.
      return { ...f.state(data), canPush: true };
    },
  };
}
