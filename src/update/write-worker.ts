/**
 * Worker-thread entry for the update pipeline's writers: batches of files
 * come in and are staged; "staged?" is answered once all are, and "commit"
 * replaces them and answers with the problems of the files not written;
 * "discard" removes them (another writer's filesystem refused a write).
 */
import { parentPort, workerData } from "node:worker_threads";
import type { Problem } from "../manifest/types.ts";
import { AtomicWriter } from "./fs.ts";
import type { WriteBatch, WriterMessage, WriterReply } from "./pipeline.ts";

const writer = new AtomicWriter((workerData as { realRoot: string }).realRoot);
const problems: Problem[] = [];
let ms = 0;
parentPort?.on("message", (message: WriterMessage) => {
  const t0 = performance.now();
  if (message === "staged?") {
    const refused = writer.fsProblem;
    parentPort?.postMessage({ problems: [], ms: 0, ...(refused ? { refused } : {}) } satisfies WriterReply);
    return;
  }
  if (message === "discard") {
    writer.discard();
    parentPort?.postMessage({ problems: [], ms } satisfies WriterReply);
    return;
  }
  if (message === "commit") {
    problems.push(...writer.commit());
    ms += performance.now() - t0;
    parentPort?.postMessage({ problems, ms } satisfies WriterReply);
    return;
  }
  for (const [path, content, stamp] of message as WriteBatch) {
    const problem = writer.stage(path, content, stamp);
    if (problem) problems.push(problem);
  }
  ms += performance.now() - t0;
});
