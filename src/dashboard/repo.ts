/**
 * The dashboard's copy of a fleet repository: a clone of one branch kept up
 * to date by fetching (a local path is cloned too, so what is shown is always
 * what is committed), the environment trees read exactly as `shipmate
 * promote` reads them, when a folder last changed (the soak gate), and an
 * app's history per environment: the commits that touched its folder, who
 * made them and which image versions each one moved (pins before → after).
 * Credentials come from the URL's userinfo or the token variable and reach
 * git through askpass only, never the remote's configuration.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { isYamlName } from "../config/tree.ts";
import { GitError } from "../errors.ts";
import { type AskPass, askPass, credentialsFromEnv, stripUserinfo } from "../git/auth.ts";
import { scanPins, versionOf } from "../promote/pins.ts";
import type { EnvTree } from "../promote/plan.ts";
import { readTree } from "../update/fs.ts";
import type { HistoryEntry } from "./types.ts";

export type { HistoryEntry } from "./types.ts";

const run = promisify(execFile);

/** How deep the clone goes: enough for a month of history in a busy fleet. */
const DEPTH = "500";

export function isBot(name: string, email: string): boolean {
  return /\[bot\]$|^shipmate$|renovate|dependabot|flux/i.test(name) || /bot@|\[bot\]|shipmate@/i.test(email);
}

export class RepoMirror {
  readonly dir: string;
  private readonly url: string;
  private readonly askpass: AskPass | undefined;
  private readonly env: NodeJS.ProcessEnv;
  private head: string | undefined;
  private readonly histories = new Map<string, HistoryEntry[]>();
  readonly branch: string | undefined;

  constructor(url: string, branch: string | undefined, env: NodeJS.ProcessEnv, tokenEnv?: string) {
    this.branch = branch;
    const { url: clean, credentials } = stripUserinfo(url);
    this.url = clean;
    const creds = credentials ?? credentialsFromEnv(env, tokenEnv);
    this.askpass = creds ? askPass(creds) : undefined;
    this.env = { ...env, GIT_TERMINAL_PROMPT: "0", ...this.askpass?.env };
    this.dir = mkdtempSync(join(tmpdir(), "shipmate-dashboard-"));
  }

  private async git(args: string[], cwd = this.dir): Promise<string> {
    const config = (this.askpass?.config ?? []).flatMap((c) => ["-c", c]);
    try {
      const { stdout } = await run("git", [...config, ...args], {
        cwd,
        env: this.env,
        maxBuffer: 64 * 1024 * 1024,
      });
      return stdout;
    } catch (err) {
      const text =
        `${(err as { stderr?: string }).stderr ?? ""}`.trim().split("\n").pop() || (err as Error).message;
      throw new GitError(`git ${args[0]} ${this.url}: ${text}`);
    }
  }

  /** Clones once, then fetches; the commit now checked out, and whether it moved. */
  async sync(): Promise<{ head: string; changed: boolean }> {
    if (!existsSync(join(this.dir, ".git"))) {
      const args = ["clone", "--quiet", "--no-tags", "--single-branch", `--depth=${DEPTH}`];
      if (this.branch) args.push("--branch", this.branch);
      await this.git([...args, "--", this.url, this.dir], tmpdir());
    } else {
      const ref = this.branch ?? "HEAD";
      await this.git(["fetch", "--quiet", "--no-tags", `--depth=${DEPTH}`, "origin", ref]);
      await this.git(["reset", "--quiet", "--hard", "FETCH_HEAD"]);
    }
    const head = (await this.git(["rev-parse", "HEAD"])).trim();
    const changed = head !== this.head;
    this.head = head;
    return { head, changed };
  }

  /** An environment's files, as `shipmate promote` reads them; undefined when its folder does not exist. */
  readEnv(name: string, path: string): EnvTree | undefined {
    if (!existsSync(join(this.dir, path))) return undefined;
    const read = readTree(this.dir, { subdir: path, claimed: () => true });
    return { name, path, files: read.files };
  }

  /** When anything under `path` last changed; undefined when the clone's history does not reach that far. */
  async lastChange(path: string): Promise<Date | undefined> {
    const out = (await this.git(["log", "-1", "--format=%H %ct", "--", path])).trim();
    const [sha, ts] = out.split(" ");
    if (!sha || !ts) return undefined;
    // The shallow boundary commit claims every file as new: its date says nothing.
    const shallow = await this.git(["rev-parse", "--git-path", "shallow"]).then((p) =>
      run("cat", [join(this.dir, p.trim())]).then(
        (r) => r.stdout,
        () => "",
      ),
    );
    if (shallow.split("\n").includes(sha)) return undefined;
    return new Date(Number(ts) * 1000);
  }

  /** The pins of every YAML file under `folder` at `commit`, by repository. */
  private async pinsAt(
    commit: string,
    folder: string,
  ): Promise<Map<string, { image: string; version: string }>> {
    const out = new Map<string, { image: string; version: string }>();
    const names = (await this.git(["ls-tree", "-r", "--name-only", commit, "--", folder]).catch(() => ""))
      .split("\n")
      .filter((n) => n && isYamlName(n.split("/").pop() ?? ""));
    for (const name of names) {
      const content = await this.git(["show", `${commit}:${name}`]).catch(() => "");
      for (const s of scanPins(name, content).sites)
        if (!out.has(s.repository)) out.set(s.repository, { image: s.name, version: versionOf(s) });
    }
    return out;
  }

  /**
   * The last `limit` commits that touched `folder`, newest first, with the
   * versions each moved; remembered per checked-out commit, so a page
   * re-rendered on every cluster change reads git once per fetch.
   */
  async history(folder: string, limit = 20): Promise<HistoryEntry[]> {
    const key = `${this.head}\u0000${folder}\u0000${limit}`;
    const seen = this.histories.get(key);
    if (seen) return seen;
    const entries = await this.readHistory(folder, limit);
    this.histories.set(key, entries);
    // A few dozen app pages are enough; the oldest goes first.
    if (this.histories.size > 64) this.histories.delete(this.histories.keys().next().value!);
    return entries;
  }

  private async readHistory(folder: string, limit: number): Promise<HistoryEntry[]> {
    const log = await this.git([
      "log",
      `-${limit}`,
      "--format=%H%x09%P%x09%an%x09%ae%x09%cI%x09%s",
      "--",
      folder,
    ]);
    const shallow = new Set(
      (
        await run("cat", [
          join(this.dir, (await this.git(["rev-parse", "--git-path", "shallow"])).trim()),
        ]).catch(() => ({ stdout: "" }))
      ).stdout.split("\n"),
    );
    const out: HistoryEntry[] = [];
    for (const line of log.split("\n")) {
      const [commit, parents, author, email, time, ...subject] = line.split("\t");
      if (!commit || author === undefined || email === undefined || time === undefined) continue;
      const parent = shallow.has(commit) ? undefined : parents?.split(" ")[0] || undefined;
      const after = await this.pinsAt(commit, folder);
      const before = parent ? await this.pinsAt(parent, folder) : new Map();
      const moves: HistoryEntry["moves"] = [];
      for (const [repo, a] of after) {
        const b = before.get(repo);
        if (b?.version !== a.version) moves.push({ image: a.image, from: b?.version ?? "", to: a.version });
      }
      for (const [repo, b] of before)
        if (!after.has(repo)) moves.push({ image: b.image, from: b.version, to: "" });
      out.push({
        commit,
        author,
        email,
        bot: isBot(author, email),
        time,
        subject: subject.join("\t"),
        moves,
      });
    }
    return out;
  }

  close(): void {
    this.askpass?.dispose();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
