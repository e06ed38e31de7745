/**
 * Health of an applied object, in the spirit of kstatus (the library Flux
 * uses): Current (healthy), InProgress (wait), Failed (stop waiting). Pure:
 * takes the live object, returns a verdict and a reason a person can read.
 */

export type HealthStatus = "Current" | "InProgress" | "Failed";
export interface Health {
  status: HealthStatus;
  message: string;
}

type Obj = { kind: string; metadata?: { generation?: number }; spec?: unknown; status?: unknown };
type Cond = { type?: string; status?: string; reason?: string; message?: string };

function rec(v: unknown): Record<string, unknown> {
  return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
function num(v: unknown, dflt = 0): number {
  return typeof v === "number" ? v : dflt;
}
function conditions(status: Record<string, unknown>): Cond[] {
  return Array.isArray(status.conditions) ? (status.conditions as Cond[]) : [];
}
function condition(status: Record<string, unknown>, type: string): Cond | undefined {
  return conditions(status).find((c) => c.type === type);
}

const current = (message = "current"): Health => ({ status: "Current", message });
const progressing = (message: string): Health => ({ status: "InProgress", message });
const failed = (message: string): Health => ({ status: "Failed", message });

/** The controller has not looked at the latest spec yet. */
function stale(obj: Obj): Health | undefined {
  const generation = obj.metadata?.generation;
  const observed = rec(obj.status).observedGeneration;
  if (generation !== undefined && typeof observed === "number" && observed < generation) {
    return progressing(`observed generation ${observed} < ${generation}`);
  }
  if (
    generation !== undefined &&
    observed === undefined &&
    (hasWorkloadStatus(obj.kind) || obj.kind === "HelmRelease")
  ) {
    return progressing("not yet observed by its controller");
  }
  return undefined;
}

function hasWorkloadStatus(kind: string): boolean {
  return kind === "Deployment" || kind === "StatefulSet" || kind === "DaemonSet" || kind === "ReplicaSet";
}

function deployment(obj: Obj): Health {
  const spec = rec(obj.spec);
  const st = rec(obj.status);
  const want = num(spec.replicas, 1);
  const p = condition(st, "Progressing");
  if (p?.status === "False" && p.reason === "ProgressDeadlineExceeded") {
    return failed(`progress deadline exceeded: ${p.message ?? ""}`.trim());
  }
  const updated = num(st.updatedReplicas);
  const available = num(st.availableReplicas);
  const total = num(st.replicas);
  if (updated < want) return progressing(`${updated}/${want} replicas updated`);
  if (total > updated) return progressing(`${total - updated} old replicas pending termination`);
  if (available < want) return progressing(`${available}/${want} replicas available`);
  return current(`${available}/${want} replicas available`);
}

function statefulSet(obj: Obj): Health {
  const spec = rec(obj.spec);
  const st = rec(obj.status);
  const want = num(spec.replicas, 1);
  const ready = num(st.readyReplicas);
  const strategy = rec(spec.updateStrategy).type ?? "RollingUpdate";
  if (strategy === "RollingUpdate") {
    const partition = num(rec(rec(spec.updateStrategy).rollingUpdate).partition);
    const updated = num(st.updatedReplicas);
    if (updated < want - partition) return progressing(`${updated}/${want - partition} replicas updated`);
    if (partition === 0 && st.updateRevision !== undefined && st.currentRevision !== st.updateRevision) {
      return progressing(`revision ${String(st.updateRevision)} rolling out`);
    }
  }
  if (ready < want) return progressing(`${ready}/${want} replicas ready`);
  return current(`${ready}/${want} replicas ready`);
}

function daemonSet(obj: Obj): Health {
  const st = rec(obj.status);
  const desired = num(st.desiredNumberScheduled);
  const updated = num(st.updatedNumberScheduled);
  const available = num(st.numberAvailable);
  if (updated < desired) return progressing(`${updated}/${desired} pods updated`);
  if (available < desired) return progressing(`${available}/${desired} pods available`);
  return current(`${available}/${desired} pods available`);
}

function job(obj: Obj): Health {
  const st = rec(obj.status);
  const failedCond = condition(st, "Failed");
  if (failedCond?.status === "True")
    return failed(`job failed: ${failedCond.reason ?? ""} ${failedCond.message ?? ""}`.trim());
  const complete = condition(st, "Complete");
  if (complete?.status === "True") return current("job complete");
  return progressing(`job running (${num(st.succeeded)} succeeded)`);
}

function pod(obj: Obj): Health {
  const st = rec(obj.status);
  if (st.phase === "Succeeded") return current("pod succeeded");
  if (st.phase === "Failed") return failed("pod failed");
  return condition(st, "Ready")?.status === "True"
    ? current("pod ready")
    : progressing(`pod ${String(st.phase ?? "pending")}`);
}

/** Objects reporting a `Ready` (or CRD `Established`) condition, as Flux and most operators do. */
function generic(obj: Obj): Health {
  const st = rec(obj.status);
  if (obj.kind === "CustomResourceDefinition") {
    return condition(st, "Established")?.status === "True"
      ? current("established")
      : progressing("not established");
  }
  if (obj.kind === "PersistentVolumeClaim") {
    return st.phase === "Bound" ? current("bound") : progressing(`phase ${String(st.phase ?? "Pending")}`);
  }
  if (obj.kind === "Namespace") {
    return st.phase === "Terminating" ? progressing("terminating") : current("active");
  }
  const stalled = condition(st, "Stalled");
  if (stalled?.status === "True") return failed(`stalled: ${stalled.message ?? stalled.reason ?? ""}`.trim());
  const ready = condition(st, "Ready");
  if (ready?.status === "True") return current(ready.message || "ready");
  if (ready) return progressing(`not ready: ${ready.message || ready.reason || ready.status}`);
  // A HelmRelease is healthy only once its release is reconciled: no Ready yet means not looked at.
  if (obj.kind === "HelmRelease") return progressing("not yet reconciled");
  // No status to judge by (ConfigMap, Service, RBAC…): existing is being healthy.
  return current();
}

export function assessHealth(obj: Obj): Health {
  const pending = stale(obj);
  if (pending) return pending;
  switch (obj.kind) {
    case "Deployment":
      return deployment(obj);
    case "StatefulSet":
      return statefulSet(obj);
    case "DaemonSet":
      return daemonSet(obj);
    case "Job":
      return job(obj);
    case "Pod":
      return pod(obj);
    default:
      return generic(obj);
  }
}
