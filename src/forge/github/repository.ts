/**
 * Bootstrap's repository on GitHub (or GitHub Enterprise Server), over
 * fetch: read it with the token's rights, the token's user, and creating it
 * for the token's user or in an organisation, auto-initialised.
 */
import { type RepositoryHost, type RepositoryOptions, userOrOrgRepository } from "../repository.ts";
import type { ForgeProvider } from "../types.ts";
import { githubApiUrl } from "./api-url.ts";
import * as S from "./schemas.ts";

export function githubRepository(opts: RepositoryOptions, forge: ForgeProvider): RepositoryHost {
  return userOrOrgRepository(opts, {
    forge,
    kind: "github",
    api: githubApiUrl(opts.url),
    headers: { authorization: `Bearer ${opts.token}`, "x-github-api-version": "2022-11-28" },
    repository: S.Repository,
    state: (r) => ({
      cloneUrl: r.clone_url,
      defaultBranch: r.default_branch,
      empty: r.size === 0,
      canPush: r.permissions?.push === true,
      private: r.private,
    }),
    user: S.User,
  });
}
