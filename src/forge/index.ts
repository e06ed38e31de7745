/**
 * Choosing and connecting a forge from flags and the environment, shared by
 * `shipmate update`, `shipmate promote`, the Action and the App.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { UsageError } from "../errors.ts";
import { provider as gitea } from "./gitea/index.ts";
import { provider as github, type OctokitLike } from "./github/index.ts";
import { provider as gitlab } from "./gitlab/index.ts";
import type { Forge, ForgeKind, ForgeOptions, ForgeProvider } from "./types.ts";

export type { Forge, ForgeKind, ForgeOptions, ForgeProvider } from "./types.ts";

/** The one registry of forge providers: a new forge is a folder beside these and one line here. */
export const PROVIDERS = { github, gitlab, gitea } as const satisfies Readonly<Record<string, ForgeProvider>>;

export const FORGE_KINDS = Object.keys(PROVIDERS) as readonly ForgeKind[];

/** Where each forge's token is looked for, first match wins. */
export const TOKEN_ENV = Object.fromEntries(FORGE_KINDS.map((k) => [k, PROVIDERS[k].tokenEnv])) as Record<
  ForgeKind,
  readonly string[]
>;

export function parseForgeKind(value: string): ForgeKind {
  const name = value.toLowerCase();
  const kind = FORGE_KINDS.find((k) => k === name || PROVIDERS[k].aliases?.includes(name));
  const aliases = FORGE_KINDS.flatMap((k) => PROVIDERS[k].aliases ?? []);
  if (!kind)
    throw new UsageError(
      `--forge must be one of ${FORGE_KINDS.join(", ")}${aliases.length ? ` (or ${aliases.join(", ")})` : ""}, got "${value}"`,
    );
  return kind;
}

/**
 * `owner/name` (GitLab: `group/sub/project`) and the forge's web base from a
 * git remote URL (`https://host/owner/name.git`, `git@host:owner/name.git`).
 */
export function repoFromRemote(remote: string): { host: string; base: string; repo: string } | undefined {
  const scp = /^(?:[^@/\s]+@)?([^:/\s]+):(?!\/)(.+?)(?:\.git)?\/?$/.exec(remote);
  if (scp?.[1] && scp[2] && !/^[a-z][a-z0-9+.-]*:\/\//i.test(remote))
    return { host: scp[1], base: `https://${scp[1]}`, repo: scp[2] };
  try {
    const u = new URL(remote);
    const repo = u.pathname
      .replace(/^\/+/, "")
      .replace(/\.git\/?$/, "")
      .replace(/\/+$/, "");
    if (!repo.includes("/")) return undefined;
    const scheme = u.protocol === "http:" ? "http:" : "https:";
    return { host: u.host, base: `${scheme}//${u.host}`, repo };
  } catch {
    return undefined;
  }
}

/** The forge kind a well-known host implies; self-hosted ones need --forge. */
export function kindFromHost(host: string): ForgeKind | undefined {
  return FORGE_KINDS.find((k) => PROVIDERS[k].ownsHost(host));
}

export interface ForgeFlags {
  forge?: string;
  forgeUrl?: string;
  forgeRepo?: string;
  /** Environment variable naming the token (default: the kind's usual ones). */
  tokenEnv?: string;
  /** The repository's git remote, to infer what the flags leave out. */
  remote?: string;
}

/** Resolve flags + environment into connection options; a UsageError says what is missing. */
export function forgeOptions(
  flags: ForgeFlags,
  env: NodeJS.ProcessEnv,
): ForgeOptions & { tokenSource: string } {
  const fromRemote = flags.remote ? repoFromRemote(flags.remote) : undefined;
  const kind = flags.forge
    ? parseForgeKind(flags.forge)
    : fromRemote
      ? kindFromHost(fromRemote.host)
      : undefined;
  if (!kind)
    throw new UsageError("cannot tell which forge hosts the repository: pass --forge github|gitlab|gitea");
  const repo = flags.forgeRepo ?? fromRemote?.repo;
  if (!repo) throw new UsageError("cannot tell the repository on the forge: pass --forge-repo owner/name");
  const url = flags.forgeUrl ?? (fromRemote && !kindFromHost(fromRemote.host) ? fromRemote.base : undefined);
  const names = flags.tokenEnv ? [flags.tokenEnv] : TOKEN_ENV[kind];
  const name = names.find((n) => env[n]);
  if (!name) throw new UsageError(`no ${kind} token: set ${names.map((n) => `$${n}`).join(" or ")}`);
  return { kind, repo, ...(url ? { url } : {}), token: env[name] ?? "", tokenSource: `$${name}` };
}

export function createForge(opts: ForgeOptions & { tokenSource?: string; octokit?: OctokitLike }): Forge {
  const { kind, ...rest } = opts;
  return PROVIDERS[kind].create(rest);
}

/** The `origin` URL of a local checkout, or undefined (no remote, not a checkout). */
export async function originOf(dir: string): Promise<string | undefined> {
  try {
    const { stdout } = await promisify(execFile)("git", ["remote", "get-url", "origin"], { cwd: dir });
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * A forge for `repo` (a clone URL or a local checkout) from command-line
 * flags: what the flags leave out is inferred from the repository's remote.
 */
export async function forgeFromFlags(
  flags: Omit<ForgeFlags, "remote">,
  repo: string,
  env: NodeJS.ProcessEnv,
): Promise<Forge> {
  const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(repo) || /^[^/\s]+@[^/\s]+:/.test(repo);
  const remote = isUrl ? repo : await originOf(repo);
  return createForge(forgeOptions({ ...flags, ...(remote ? { remote } : {}) }, env));
}
