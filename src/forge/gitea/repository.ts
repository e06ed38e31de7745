/**
 * Bootstrap's repository on Gitea / Forgejo (API v1): read it with the
 * token's rights, the token's user, and creating it for a user or in an
 * organisation, auto-initialised on the branch bootstrap asks for.
 */
import { ForgeError, UsageError } from "../../errors.ts";
import { jsonCaller, type RepoState, type RepositoryHost, type RepositoryOptions } from "../repository.ts";
import type { ForgeProvider } from "../types.ts";
import * as S from "./schemas.ts";

export function giteaRepository(opts: RepositoryOptions, forge: ForgeProvider): RepositoryHost {
  if (!opts.url) throw new UsageError("a Gitea/Forgejo forge needs --forge-url (its base URL)");
  const fullName = `${opts.owner}/${opts.name}`;
  const api = `${opts.url.replace(/\/+$/, "")}/api/v1`;
  const call = jsonCaller(forge, "gitea", fullName, api, { authorization: `token ${opts.token}` }, opts);
  const state = (r: S.Repository): RepoState => ({
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
      const { data } = await call("read the repository", "GET", repoPath, S.Repository);
      return data && state(data);
    },
    async whoami() {
      const { data } = await call("read the token's user", "GET", "/user", S.User);
      if (!data) throw new ForgeError(`gitea: the token's user was not found`);
      return data.login;
    },
    async create(c) {
      const path = c.personal ? "/user/repos" : `/orgs/${encodeURIComponent(opts.owner)}/repos`;
      const { data } = await call("create the repository", "POST", path, S.Repository, {
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
      // The creator may push, whatever the answer's permission block says.
      return { ...state(data), canPush: true };
    },
  };
}
