/**
 * The fleet repository on its forge, as bootstrap needs it: the names
 * checked as the forge accepts them, the token kept out of every message,
 * then the forge's own provider (`PROVIDERS[kind].repository`, in
 * src/forge/<kind>/repository.ts) reads, and creates when missing, the
 * repository. A new forge needs nothing here.
 */
import { registerSecret, UsageError } from "../errors.ts";
import { PROVIDERS } from "../forge/index.ts";
import type { RepositoryHost, RepositoryOptions } from "../forge/repository.ts";
import type { ForgeKind } from "../forge/types.ts";

export interface HostOptions extends RepositoryOptions {
  kind: ForgeKind;
}

const OWNER = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;
const NAME = /^[A-Za-z0-9_.-]+$/;

/** Owner and repository names as the forges accept them (GitLab owners may be nested groups). */
export function checkRepoNames(kind: ForgeKind, owner: string, name: string): void {
  const nested = PROVIDERS[kind].nestedOwners === true;
  if (!OWNER.test(owner) || (!nested && owner.includes("/")))
    throw new UsageError(
      `--owner "${owner}" is not a valid ${nested ? "group path" : "user or organisation name"}`,
    );
  if (!NAME.test(name) || name === "." || name === ".." || name.endsWith(".git"))
    throw new UsageError(
      `--repository "${name}" is not a valid repository name (letters, digits, '-', '_', '.')`,
    );
}

export function repositoryHost(opts: HostOptions): RepositoryHost {
  checkRepoNames(opts.kind, opts.owner, opts.name);
  registerSecret(opts.token);
  const { kind, ...rest } = opts;
  return PROVIDERS[kind].repository(rest);
}
