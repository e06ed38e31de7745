/**
 * The update pipeline over a walked tree: this thread reads each file and
 * rewrites it with the pure engine; writer threads replace the changed files
 * atomically meanwhile. Replacing a file is kernel work with waits in it (a
 * new inode, a rename, the old inode freed), so writers beside the reader
 * finish a large update in about the time the writes alone take. Small
 * updates never start a thread: their files are written here at the end.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { readTreeFile } from "../config/tree.ts";
import { pathMatches, updateFile, withPlainEnv } from "../manifest/apply.ts";
import type { FileUpdate, Problem, UpdateInput } from "../manifest/types.ts";
import { AtomicWriter, type Candidate, readCandidate, type TreeSource } from "./fs.ts";

/** Files per message to a writer. */
const BATCH_FILES = 64;
/** Below this many files to write, writing here costs less than starting threads. */
const MIN_FILES_FOR_WRITERS = 256;

export interface TreeJob {
  /** The repository root with symlinks resolved (the walk's `realRoot`). */
  realRoot: string;
  candidates: readonly Candidate[];
  /** Where the candidates are read (a run's FleetContext reads each file once); default: the disk. */
  source?: Pick<TreeSource, "read">;
  input: UpdateInput;
  /** Write the updated files (false: each changed file is returned with its content instead). */
  write: boolean;
  /** Without writing, keep each changed file's original text too, for a diff (default: true). */
  originals?: boolean;
}

/** Where the time went: reading and rewriting in this thread, writing summed over the writers. */
export interface PipelineTimings {
  readMs: number;
  rewriteMs: number;
  writeMs: number;
  /** Writer threads started (0: the files were written in this thread). */
  writers: number;
}

export interface TreeResult {
  /** Files with changes, in path order; when writing, only those written, without their content. */
  files: FileUpdate[];
  /** The engine's problems in path order, then the writes' in path order. */
  problems: Problem[];
  /** Dry runs: the original text of each updated file, for the diff. */
  originals: Map<string, string>;
  timings: PipelineTimings;
}

/** `[path, content, stamp]` of each file in a message to a writer. */
export type WriteBatch = [string, string, string][];
/** What the main thread sends a writer: files to stage, the question whether all are, the order to replace them. */
export type WriterMessage = WriteBatch | "staged?" | "commit" | "discard";
export interface WriterReply {
  problems: Problem[];
  ms: number;
  /** Answering "staged?": the filesystem refused a write (full, read-only), so no writer commits. */
  refused?: Problem;
}

interface Writer {
  worker: Worker;
  /** The writer's next reply. */
  next(): Promise<WriterReply>;
}

function startWriter(realRoot: string): Writer {
  const worker = new Worker(new URL("./write-worker.ts", import.meta.url), {
    workerData: { realRoot },
    // Writers hold a batch at a time; a small heap keeps the process's peak RSS low.
    resourceLimits: { maxYoungGenerationSizeMb: 4 },
  });
  let failure: Error | undefined;
  const waiting: { resolve: (r: WriterReply) => void; reject: (e: Error) => void }[] = [];
  const fail = (err: Error) => {
    failure ??= err;
    for (const w of waiting.splice(0)) w.reject(err);
  };
  worker.on("message", (r: WriterReply) => waiting.shift()?.resolve(r));
  worker.once("error", fail);
  worker.once("exit", (code) => {
    if (code !== 0) fail(new Error(`update writer thread exited with code ${code}`));
  });
  return {
    worker,
    next: () =>
      failure ? Promise.reject(failure) : new Promise((resolve, reject) => waiting.push({ resolve, reject })),
  };
}

/**
 * The writes of one run: queued here until enough of them make threads
 * worth starting, then sent in batches to the writers in turn.
 */
class Writes {
  private readonly realRoot: string;
  private readonly threads: number;
  private readonly queue: WriteBatch = [];
  private writers: Writer[] = [];
  private sent = 0;

  constructor(realRoot: string, threads: number) {
    this.realRoot = realRoot;
    this.threads = threads;
  }

  add(path: string, content: string, stamp: string): void {
    this.queue.push([path, content, stamp]);
    if (this.writers.length === 0 && this.threads > 0 && this.queue.length >= MIN_FILES_FOR_WRITERS)
      this.writers = Array.from({ length: this.threads }, () => startWriter(this.realRoot));
    if (this.writers.length > 0) while (this.queue.length >= BATCH_FILES) this.send(BATCH_FILES);
  }

  private send(n: number): void {
    const batch = this.queue.splice(0, n);
    (this.writers[this.sent++ % this.writers.length] as Writer).worker.postMessage(batch);
  }

  /** Waits for every write; the problems of the files not written, and the time spent writing. */
  async finish(): Promise<{ problems: Problem[]; ms: number; writers: number }> {
    if (this.writers.length === 0) {
      const t0 = performance.now();
      const problems = new AtomicWriter(this.realRoot).replace(this.queue);
      return { problems, ms: performance.now() - t0, writers: 0 };
    }
    if (this.queue.length > 0) this.send(this.queue.length);
    // Every writer stages all its files before any replaces one (see AtomicWriter).
    const staged = this.writers.map((w) => w.next());
    for (const w of this.writers) w.worker.postMessage("staged?");
    const refused = (await Promise.all(staged)).find((r) => r.refused)?.refused;
    const committed = this.writers.map((w) => w.next());
    for (const w of this.writers) w.worker.postMessage(refused ? "discard" : "commit");
    const replies = await Promise.all(committed);
    if (refused) {
      for (const w of this.writers) void w.worker.terminate();
      return { problems: [refused], ms: replies.reduce((n, r) => n + r.ms, 0), writers: this.writers.length };
    }
    for (const w of this.writers) void w.worker.terminate();
    const problems = replies.flatMap((r) => r.problems).sort((a, b) => (a.file < b.file ? -1 : 1));
    return { problems, ms: replies.reduce((n, r) => n + r.ms, 0), writers: this.writers.length };
  }
}

/** Reads, rewrites and (unless dry) writes the walked files; `writers`: threads for the writes (default: one per core, at most 3). */
export async function updateTree(job: TreeJob, opts: { writers?: number } = {}): Promise<TreeResult> {
  const { realRoot, candidates, input } = job;
  const source = job.source ?? { read: (c: Candidate) => readTreeFile(realRoot, c) };
  const known = new Set(input.policies.map((p) => p.id));
  const claimed = (path: string) => input.policies.some((p) => p.paths?.some((g) => pathMatches(path, g)));
  const writes = job.write
    ? new Writes(realRoot, opts.writers ?? Math.max(1, Math.min(3, availableParallelism())))
    : undefined;
  const files: FileUpdate[] = [];
  const problems: Problem[] = [];
  const originals = new Map<string, string>();
  let readMs = 0;
  let rewriteMs = 0;
  withPlainEnv(() => {
    for (const c of candidates) {
      const t0 = performance.now();
      const { file, problem } = readCandidate(source, c, claimed);
      const t1 = performance.now();
      readMs += t1 - t0;
      if (problem) problems.push(problem);
      if (!file) continue;
      const { update, problems: found } = updateFile(file, input, known);
      rewriteMs += performance.now() - t1;
      problems.push(...found);
      if (update?.content === undefined) continue;
      if (writes) {
        writes.add(update.path, update.content, c.stamp);
        files.push({ path: update.path, changes: update.changes });
      } else {
        files.push(update);
        if (job.originals !== false) originals.set(file.path, file.content);
      }
    }
  });
  const timings = { readMs: Math.round(readMs), rewriteMs: Math.round(rewriteMs), writeMs: 0, writers: 0 };
  if (!writes) return { files, problems, originals, timings };
  const written = await writes.finish();
  const failed = new Set(written.problems.map((p) => p.file));
  return {
    files: failed.size > 0 ? files.filter((f) => !failed.has(f.path)) : files,
    problems: [...problems, ...written.problems],
    originals,
    timings: { ...timings, writeMs: Math.round(written.ms), writers: written.writers },
  };
}
