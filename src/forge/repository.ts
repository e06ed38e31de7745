/**
 * The fleet repository on its forge, as bootstrap needs it: does it exist,
 * may the token push to it, what is its clone URL, and creating it. The
 * shapes every provider answers in (`RepositoryHost`), and the one JSON call
 * they make it with: every answer parsed through the provider's schema,
 * every failure worded by classifyForgeFailure so all forges say the same
 * problem the same way. Each provider's own calls are in its folder
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
            const j = ErrorBody.parse(JSON.parse(text));
            message = typeof j.message === "string" ? j.message : JSON.stringify(j.message ?? j.error ?? j);
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
