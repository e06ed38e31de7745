import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A working clone used by the tests to push bot branches the way the update/promote engines do. */
export class TestClone {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }

  static async clone(url: string): Promise<TestClone> {
    const parent = await mkdtemp(join(tmpdir(), "shipmate-forge-clone-"));
    const dir = join(parent, "repo");
    await run("git", ["clone", "-q", url, dir]);
    const c = new TestClone(dir);
    await c.git("config", "user.name", "shipmate-test");
    await c.git("config", "user.email", "shipmate-test@example.test");
    return c;
  }

  async git(...args: string[]): Promise<string> {
    return (await run("git", args, { cwd: this.dir })).stdout.trim();
  }

  /** Branch `branch` from the remote `base`, write `files`, commit, force-push; returns the new head SHA. */
  async pushBranch(branch: string, files: Record<string, string>, base = "main"): Promise<string> {
    await this.git("fetch", "-q", "origin");
    await this.git("checkout", "-q", "-B", branch, `origin/${base}`);
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(this.dir, path)), { recursive: true });
      await writeFile(join(this.dir, path), content);
    }
    await this.git("add", "-A");
    await this.git("commit", "-q", "-m", `update ${Object.keys(files).join(", ")}`);
    await this.git("push", "-q", "-f", "origin", `HEAD:refs/heads/${branch}`);
    return this.git("rev-parse", "HEAD");
  }

  async remove(): Promise<void> {
    await rm(dirname(this.dir), { recursive: true, force: true });
  }
}
