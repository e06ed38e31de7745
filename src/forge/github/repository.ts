/**
 * Bootstrap's repository on GitHub (or GitHub Enterprise Server), over
 * fetch: read it with the token's rights, the token's user, and creating it
 * for the token's user or in an organisation, auto-initialised.
 */
import { ForgeError } from "../../errors.ts";
import { jsonCaller, type RepoState, type RepositoryHost, type RepositoryOptions } from "../repository.ts";
import type { ForgeProvider } from "../types.ts";
import { githubApiUrl } from "./api-url.ts";
import * as S from "./schemas.ts";

export function githubRepository(opts: RepositoryOptions, forge: ForgeProvider): RepositoryHost {
  const fullName = `${opts.owner}/${opts.name}`;
  const call = jsonCaller(
    forge,
    "github",
    fullName,
    githubApiUrl(opts.url),
    { authorization: `Bearer ${opts.token}`, "x-github-api-version": "2022-11-28" },
    opts,
  );
  const state = (r: S.Repository): RepoState => ({
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
        S.Repository,
      );
      return data && state(data);
    },
    async whoami() {
      const { data } = await call("read the token's user", "GET", "/user", S.User);
      if (!data) throw new ForgeError("github: the token's user was not found");
      return data.login;
    },
    async create(c) {
      const path = c.personal ? "/user/repos" : `/orgs/${encodeURIComponent(opts.owner)}/repos`;
      const { data } = await call("create the repository", "POST", path, S.Repository, {
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
      // The creator may push, whatever the answer's permission block says.
      return { ...state(data), canPush: true };
    },
  };
}
