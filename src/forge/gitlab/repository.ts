/**
 * Bootstrap's project on GitLab (gitlab.com or self-managed), over fetch:
 * read it with the token user's access level, the token's user, and
 * creating it in a user's namespace or a (nested) group, initialised on the
 * branch bootstrap asks for.
 */
import { ForgeError, UsageError } from "../../errors.ts";
import { jsonCaller, type RepoState, type RepositoryHost, type RepositoryOptions } from "../repository.ts";
import type { ForgeProvider } from "../types.ts";
import * as S from "./schemas.ts";

/** GitLab's Developer role (30) is the first that may push. */
const GITLAB_DEVELOPER = 30;

export function gitlabRepository(opts: RepositoryOptions, forge: ForgeProvider): RepositoryHost {
  const fullName = `${opts.owner}/${opts.name}`;
  const base = (opts.url ?? "https://gitlab.com").replace(/\/+$/, "").replace(/\/api\/v4$/, "");
  const call = jsonCaller(forge, "gitlab", fullName, `${base}/api/v4`, { "private-token": opts.token }, opts);
  const state = (p: S.Project): RepoState => {
    const level = Math.max(
      p.permissions?.project_access?.access_level ?? 0,
      p.permissions?.group_access?.access_level ?? 0,
    );
    return {
      cloneUrl: p.http_url_to_repo,
      defaultBranch: p.default_branch ?? "main",
      empty: p.empty_repo === true,
      canPush: level >= GITLAB_DEVELOPER,
      private: p.visibility === "private",
    };
  };
  return {
    kind: "gitlab",
    fullName,
    async get() {
      const { data } = await call(
        "read the project",
        "GET",
        `/projects/${encodeURIComponent(fullName)}`,
        S.Project,
      );
      return data && state(data);
    },
    async whoami() {
      const { data } = await call("read the token's user", "GET", "/user", S.User);
      if (!data) throw new ForgeError("gitlab: the token's user was not found");
      return data.username;
    },
    async create(c) {
      const { data: ns } = await call(
        `find the namespace ${opts.owner}`,
        "GET",
        `/namespaces/${encodeURIComponent(opts.owner)}`,
        S.Namespace,
      );
      if (!ns)
        throw new ForgeError(
          `GitLab ${fullName}: namespace ${opts.owner} not found (or the token cannot see it)`,
          404,
        );
      if (c.personal !== (ns.kind === "user"))
        throw new UsageError(
          `--owner ${opts.owner} is a GitLab ${ns.kind === "user" ? "user" : "group"}: ${ns.kind === "user" ? "add" : "drop"} --personal`,
        );
      const { data } = await call("create the project", "POST", "/projects", S.Project, {
        name: opts.name,
        path: opts.name,
        namespace_id: ns.id,
        visibility: c.private ? "private" : "public",
        initialize_with_readme: true,
        default_branch: c.branch,
        description: c.description,
      });
      if (!data) throw new ForgeError(`GitLab ${fullName}: could not create the project`, 404);
      // The creator may push, whatever the answer's permission block says (GitLab leaves it empty).
      return { ...state(data), canPush: true };
    },
  };
}
