/**
 * The pure engine spread over worker threads for large trees: parsing is
 * CPU-bound and files are independent, so each thread takes a contiguous
 * share (by bytes) and the results are joined in the original order.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { applyUpdates, type SourceFile } from "./apply.ts";
import type { UpdateInput, UpdateResult } from "./types.ts";

/** Below this much YAML a thread costs more to start than it saves. */
const MIN_PARALLEL_BYTES = 2 * 1024 * 1024;

export interface WorkerRequest {
  files: SourceFile[];
  selections: [string, import("./types.ts").ImageSelection][];
  policies: UpdateInput["policies"];
  deferred: UpdateInput["deferred"];
}

function split(files: readonly SourceFile[], parts: number): SourceFile[][] {
  const total = files.reduce((n, f) => n + f.content.length, 0);
  const chunks: SourceFile[][] = [[]];
  let size = 0;
  for (const f of files) {
    if (size >= (total / parts) * chunks.length && chunks.length < parts) chunks.push([]);
    (chunks.at(-1) as SourceFile[]).push(f);
    size += f.content.length;
  }
  return chunks;
}

function inWorker(req: WorkerRequest): Promise<UpdateResult> {
  return new Promise((resolve, reject) => {
    // A small young generation keeps the thread's heap (and the process's peak RSS) low; its objects are short-lived.
    const worker = new Worker(new URL("./worker.ts", import.meta.url), {
      workerData: req,
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
    });
    worker.once("message", (r: UpdateResult) => {
      resolve(r);
      void worker.terminate();
    });
    worker.once("error", reject);
    worker.once("exit", (code) => {
      if (code !== 0) reject(new Error(`update worker exited with code ${code}`));
    });
  });
}

export async function applyUpdatesParallel(
  files: readonly SourceFile[],
  input: UpdateInput,
  opts: { threads?: number } = {},
): Promise<UpdateResult> {
  const bytes = files.reduce((n, f) => n + f.content.length, 0);
  const threads = Math.max(1, Math.min(opts.threads ?? availableParallelism(), 8));
  if (threads === 1 || bytes < MIN_PARALLEL_BYTES) return applyUpdates(files, input);
  const [mine = [], ...theirs] = split(files, threads);
  const selections = [...input.selections.entries()];
  const pending = theirs.map((chunk) =>
    inWorker({ files: chunk, selections, policies: input.policies, deferred: input.deferred }),
  );
  // This thread takes the first share while the workers start and run.
  const results = [applyUpdates(mine, input), ...(await Promise.all(pending))];
  return {
    files: results.flatMap((r) => r.files),
    problems: results.flatMap((r) => r.problems),
  };
}
