/**
 * Bootstrap's repository on Gitea / Forgejo (API v1): read it with the
 * token's rights, the token's user, and creating it for a user or in an
 * organisation, auto-initialised on the branch bootstrap asks for.
 */
import { UsageError } from "../../errors.ts";
import { type RepositoryHost, type RepositoryOptions, userOrOrgRepository } from "../repository.ts";
import type { ForgeProvider } from "../types.ts";
import * as S from "./schemas.ts";

export function giteaRepository(opts: RepositoryOptions, forge: ForgeProvider): RepositoryHost {
  if (!opts.url) throw new UsageError("a Gitea/Forgejo forge needs --forge-url (its base URL)");
  return userOrOrgRepository(opts, {
    forge,
    kind: "gitea",
    api: `${opts.url.replace(/\/+$/, "")}/api/v1`,
    headers: { authorization: `token ${opts.token}` },
    repository: S.Repository,
    state: (r) => ({
      cloneUrl: r.clone_url,
      defaultBranch: r.default_branch,
      empty: r.empty === true,
      canPush: r.permissions?.push === true,
      private: r.private,
    }),
    user: S.User,
    createExtra: (c) => ({ default_branch: c.branch }),
  });
}
