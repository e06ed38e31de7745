/** Worker-thread entry for the update pipeline's writers: batches of files in, replaced atomically; its problems out at the end. */
import { parentPort, workerData } from "node:worker_threads";
import { AtomicWriter } from "./fs.ts";
import type { WriteBatch, WriterReply } from "./pipeline.ts";
import type { Problem } from "./types.ts";

const writer = new AtomicWriter((workerData as { realRoot: string }).realRoot);
const problems: Problem[] = [];
let ms = 0;
parentPort?.on("message", (batch: WriteBatch | null) => {
  if (batch === null) {
    parentPort?.postMessage({ problems, ms } satisfies WriterReply);
    parentPort?.close();
    return;
  }
  const t0 = performance.now();
  for (const [path, content, stamp] of batch) {
    const problem = writer.write(path, content, stamp);
    if (problem) problems.push(problem);
  }
  ms += performance.now() - t0;
});
