/**
 * One run's view of a fleet checkout: shipmate.yaml loaded once, the tree
 * walked once (src/config/tree.ts's rules), each policy file read once. Built by
 * the use cases in src/run/ and shared by everything a run does in that
 * checkout: the policy load, the scan, both delivery halves (push and pull
 * request) and the App's dashboard. When the run itself changes files (its
 * own writes, a checkout moved to another commit), `changed` brings just
 * those paths up to date, so the walk stays true without walking again.
 */
import { realpathSync } from "node:fs";
import { posix, resolve } from "node:path";
import { FLEET_FILE, type Fleet, readFleet } from "./fleet.ts";
import { MAX_FILE_BYTES } from "./limits.ts";
import {
  entryAt,
  inside,
  isYamlAnyCase,
  isYamlName,
  readTreeFile,
  realpathOr,
  type TreeFile,
  type TreeProblem,
  type TreeSource,
  type TreeWalk,
  type WalkOptions,
  walkTree,
} from "./tree.ts";

/**
 * Texts kept for the rest of the run (shipmate.yaml and the policy files),
 * in bytes at most. Past it a file is read again when asked again.
 */
const MAX_CACHED_BYTES = 64 * 1024 * 1024;

type Read = { text: string } | { problem: TreeProblem };

/** Whether `path` (`/`-separated, relative) lies in `dir` (`.` is everything). */
function under(dir: string, path: string): boolean {
  return dir === "." || path === dir || path.startsWith(`${dir}/`);
}

function normalDir(subdir: string | undefined): string {
  const d = posix.normalize((subdir ?? ".").replace(/\\/g, "/")).replace(/\/+$/, "");
  return d === "" ? "." : d;
}

export class FleetContext implements TreeSource {
  /** The checkout as given (paths of policies and problems are spelled from it), and with symlinks resolved. */
  readonly root: string;
  readonly realRoot: string;
  readonly fleet: Fleet | undefined;
  /** Walks made by this context (one per run unless it walked folders first: see `open`). */
  walks = 0;
  /** Walked folders (`.` for the whole tree), each with what its walk found; only the whole tree when eager. */
  readonly #walked = new Map<string, TreeWalk>();
  readonly #texts = new Map<string, { stamp: string; read: Read }>();
  #cachedBytes = 0;
  /** Paths changed since they were walked: looked at again before the walk is next used. */
  readonly #stale = new Set<string>();

  private constructor(root: string, realRoot: string, fleet: Fleet | undefined) {
    this.root = root;
    this.realRoot = realRoot;
    this.fleet = fleet;
  }

  /**
   * Loads shipmate.yaml (when there is one) and, with `walk: "all"`, walks
   * the whole tree now. A run that reads only some folders (a scan: the
   * policies) leaves it lazy: each folder is walked when first listed, and
   * never again.
   */
  static async open(root: string, opts: { walk?: "all" | "lazy" } = {}): Promise<FleetContext> {
    const loaded = await readFleet(root);
    const ctx = new FleetContext(root, realpathSync(root), loaded?.fleet);
    if (opts.walk === "all") ctx.#walk(".");
    if (loaded) {
      // Its one read serves the walk too: a later read of the file finds it here.
      const entry = entryAt(ctx.realRoot, FLEET_FILE, { match: isYamlAnyCase });
      if (entry.file) ctx.#keep(entry.file, { text: loaded.text });
    }
    return ctx;
  }

  /** Whether `dir` is this context's checkout (a worktree beside it is not). */
  covers(dir: string): boolean {
    const d = resolve(dir);
    if (d === resolve(this.root)) return true;
    try {
      return realpathSync(d) === this.realRoot;
    } catch {
      return false;
    }
  }

  /** The folder's walk: from the whole tree's, from an enclosing folder's, or walked now. */
  #walk(dir: string): TreeWalk {
    this.#refresh();
    for (const [d, w] of this.#walked) if (under(d, dir)) return w;
    const walked = walkTree(this.realRoot, {
      ...(dir !== "." ? { subdir: dir } : {}),
      // Every YAML file, every size: each caller's names and size bound are applied to the listing.
      match: isYamlAnyCase,
      maxFileBytes: Number.MAX_SAFE_INTEGER,
    });
    this.walks++;
    // A walk of an enclosing folder replaces those of the folders in it.
    for (const d of [...this.#walked.keys()]) if (under(dir, d)) this.#walked.delete(d);
    this.#walked.set(dir, walked);
    return walked;
  }

  /** The files under `subdir` that match and fit the size bound, with the walk's problems there. */
  list(opts: Pick<WalkOptions, "subdir" | "maxFileBytes" | "match"> = {}): TreeWalk {
    const dir = normalDir(opts.subdir);
    const out: TreeWalk = { realRoot: this.realRoot, files: [], problems: [] };
    if (!inside(this.realRoot, resolve(this.realRoot, dir))) {
      out.problems.push({
        file: dir,
        kind: "symlink",
        severity: "error",
        message: "path is outside the repository",
      });
      return out;
    }
    const match = opts.match ?? isYamlName;
    const max = opts.maxFileBytes ?? MAX_FILE_BYTES;
    const full = resolve(this.realRoot, dir);
    if (realpathOr(full) !== full) {
      // A folder reached through a link inside the tree (a policies folder linked from another): the whole
      // tree's walk never enters links, so this one is walked on its own, as the walker allows a link as its start.
      this.walks++;
      return walkTree(this.realRoot, { subdir: dir, match, maxFileBytes: max });
    }
    const walked = this.#walk(dir);
    const name = (p: string) => p.slice(p.lastIndexOf("/") + 1);
    // The walk's own problems (links, unreadable folders, the file bound) where they concern this folder.
    for (const p of walked.problems) if (under(dir, p.file) || under(p.file, dir)) out.problems.push(p);
    for (const f of walked.files) {
      if (!under(dir, f.path) || !match(name(f.path))) continue;
      if (f.size > max)
        out.problems.push({
          file: f.path,
          kind: "too-large",
          severity: "warning",
          message: `file is ${f.size} bytes, over the ${max}-byte bound; skipped`,
        });
      else out.files.push(f);
    }
    return out;
  }

  /**
   * One listed file's text. A text kept for the run (`keep` said so when it
   * was read: shipmate.yaml, the policy files) is read once while the file
   * stays as walked; any other file is read from disk each time, so a run
   * over a large tree never holds the whole tree in memory.
   */
  read(file: TreeFile, opts: { keep?: (text: string) => boolean } = {}): Read {
    const kept = this.#texts.get(file.path);
    if (kept && kept.stamp === file.stamp) return kept.read;
    const read = readTreeFile(this.realRoot, file);
    if ("text" in read && opts.keep?.(read.text)) this.#keep(file, read);
    return read;
  }

  #keep(file: TreeFile, read: Read): void {
    const size = "text" in read ? read.text.length : 0;
    const prior = this.#texts.get(file.path);
    if (prior && "text" in prior.read) this.#cachedBytes -= prior.read.text.length;
    if (this.#cachedBytes + size > MAX_CACHED_BYTES) {
      this.#texts.delete(file.path);
      return;
    }
    this.#cachedBytes += size;
    this.#texts.set(file.path, { stamp: file.stamp, read });
  }

  /**
   * Paths (relative, `/`-separated) the run changed in the checkout: its
   * own writes, or git bringing the working files to another commit. Each
   * is looked at again under the walk's rules when the tree is next asked
   * for; the rest of the walk stands.
   */
  changed(paths: Iterable<string> | "all"): void {
    if (paths === "all") {
      // Anything may have changed: the next listing walks again.
      this.#walked.clear();
      this.#texts.clear();
      this.#stale.clear();
      this.#cachedBytes = 0;
      return;
    }
    for (const path of paths) {
      this.#stale.add(path);
      const kept = this.#texts.get(path);
      if (kept && "text" in kept.read) this.#cachedBytes -= kept.read.text.length;
      this.#texts.delete(path);
    }
  }

  #refresh(): void {
    if (this.#stale.size === 0) return;
    const entries = new Map(
      [...this.#stale].map((path) => [
        path,
        entryAt(this.realRoot, path, { match: isYamlAnyCase, maxFileBytes: Number.MAX_SAFE_INTEGER }),
      ]),
    );
    this.#stale.clear();
    for (const [dir, walked] of this.#walked) {
      const mine = [...entries].filter(([path]) => under(dir, path));
      if (mine.length === 0) continue;
      walked.problems = walked.problems.filter((p) => !entries.has(p.file));
      walked.files = walked.files.filter((f) => !entries.has(f.path));
      for (const [, entry] of mine) {
        if (entry.problem) walked.problems.push(entry.problem);
        if (entry.file) walked.files.push(entry.file);
      }
      walked.files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    }
  }
}
