/** Worker-thread entry for applyUpdatesParallel: one share of the files in, its result out. */
import { parentPort, workerData } from "node:worker_threads";
import { applyUpdates } from "./apply.ts";
import type { WorkerRequest } from "./parallel.ts";

const req = workerData as WorkerRequest;
parentPort?.postMessage(
  applyUpdates(req.files, {
    selections: new Map(req.selections),
    policies: req.policies,
    ...(req.deferred ? { deferred: req.deferred } : {}),
  }),
);
