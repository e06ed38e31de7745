/**
 * The OpenAPI-validated fake GitHub (test/infra/openapi-forge.ts) over a
 * real git repository: its branches are the bare repository's refs, so a
 * bot branch pushed by the engine over smart HTTP is what `pulls/create`
 * sees, and deleting a branch through the API deletes the ref.
 */
import { execFileSync } from "node:child_process";
import { GitHubState } from "../infra/openapi-forge.ts";

/** `Map<branch, sha>` read from and written to a bare repository. */
class GitBranches extends Map<string, string> {
  readonly #bare: string;
  constructor(bare: string) {
    super();
    this.#bare = bare;
  }
  #git(args: string[]): string | undefined {
    try {
      return execFileSync("git", args, {
        cwd: this.#bare,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      }).trim();
    } catch {
      return undefined;
    }
  }
  override get(branch: string): string | undefined {
    return this.#git(["rev-parse", "--verify", "--quiet", `refs/heads/${branch}^{commit}`]) || undefined;
  }
  override has(branch: string): boolean {
    return this.get(branch) !== undefined;
  }
  override set(branch: string, sha: string): this {
    this.#git(["update-ref", `refs/heads/${branch}`, sha]);
    return this;
  }
  override delete(branch: string): boolean {
    if (!this.has(branch)) return false;
    return this.#git(["update-ref", "-d", `refs/heads/${branch}`]) !== undefined;
  }
}

export class GitBackedGitHubState extends GitHubState {
  override readonly branches: Map<string, string>;
  constructor(owner: string, repo: string, bare: string) {
    super(owner, repo);
    this.branches = new GitBranches(bare);
  }
}
