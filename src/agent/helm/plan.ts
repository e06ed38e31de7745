/**
 * What one HelmRelease reconcile does, decided from the release Helm holds
 * and what the HelmRelease asks for, as helm-controller decides it: no
 * action while the release is deployed, managed and in sync (the no-op);
 * install when there is none; upgrade when the chart or values moved or
 * the release is not (yet) ours (adoption); and no further attempt once the
 * remediation retries are spent, until the desired state changes; and
 * whether the release has moved (uninstalled first). Pure.
 */

export interface ReleaseState {
  version: number;
  status: string;
  chartName: string;
  chartVersion: string;
  configDigest: string;
}

export interface Desired {
  chartName: string;
  chartVersion: string;
  configDigest: string;
}

export interface Remediation {
  /** Negative: unlimited. */
  retries: number;
  remediateLastFailure: boolean;
}

export type Plan =
  | { action: "none" }
  | { action: "install"; reinstall: boolean; why: string }
  | { action: "upgrade"; why: string }
  | { action: "exhausted"; which: "install" | "upgrade"; failures: number };

export function retriesExhausted(failures: number, r: Remediation): boolean {
  return r.retries >= 0 && failures > r.retries;
}

/** Whether a failed action is remediated (rollback or uninstall) right after it failed. */
export function remediates(failures: number, r: Remediation): boolean {
  return !retriesExhausted(failures, r) || r.remediateLastFailure;
}

export function planRelease(i: {
  latest: ReleaseState | undefined;
  /** Whether the latest release is one this HelmRelease recorded in its history. */
  managed: boolean;
  /** Whether any revision in storage was ever deployed (an upgrade has something to build on). */
  everDeployed: boolean;
  desired: Desired;
  /** The post-renderers (or commonMetadata) differ from those the release was made with. */
  postRenderersChanged?: boolean;
  installFailures: number;
  upgradeFailures: number;
  install: Remediation;
  upgrade: Remediation;
}): Plan {
  const { latest, desired } = i;
  if (!latest || latest.status === "uninstalled" || (!i.everDeployed && latest.status === "failed")) {
    if (i.installFailures > 0 && retriesExhausted(i.installFailures, i.install))
      return { action: "exhausted", which: "install", failures: i.installFailures };
    const reinstall = latest !== undefined && latest.status !== "uninstalled";
    return {
      action: "install",
      reinstall,
      why: latest ? `release is ${latest.status}` : "no release in storage",
    };
  }
  const inSync =
    latest.status === "deployed" &&
    latest.chartName === desired.chartName &&
    latest.chartVersion === desired.chartVersion &&
    latest.configDigest === desired.configDigest &&
    !i.postRenderersChanged;
  if (inSync && i.managed) return { action: "none" };
  if (i.upgradeFailures > 0 && retriesExhausted(i.upgradeFailures, i.upgrade))
    return { action: "exhausted", which: "upgrade", failures: i.upgradeFailures };
  let why = "release is not managed by this HelmRelease yet";
  if (latest.status !== "deployed") why = `release is ${latest.status}`;
  else if (latest.chartName !== desired.chartName) why = `chart ${latest.chartName} → ${desired.chartName}`;
  else if (latest.chartVersion !== desired.chartVersion)
    why = `chart version ${latest.chartVersion} → ${desired.chartVersion}`;
  else if (latest.configDigest !== desired.configDigest) why = "values changed";
  else if (i.postRenderersChanged) why = "post-renderers changed";
  return { action: "upgrade", why };
}

/**
 * The release this HelmRelease recorded last, when it is no longer where the
 * spec puts it (helm-controller's releaseTargetChanged, without the chart
 * name rule): storage namespace, release namespace or release name moved.
 */
export function movedRelease(
  status: { storageNamespace?: string; history?: { name: string; namespace: string }[] } | undefined,
  now: { release: string; targetNs: string; storageNs: string },
): { name: string; namespace: string; storage: string } | undefined {
  const head = status?.history?.[0];
  const storage = status?.storageNamespace;
  if (!storage || !head) return undefined;
  if (storage === now.storageNs && head.namespace === now.targetNs && head.name === now.release)
    return undefined;
  return { name: head.name, namespace: head.namespace, storage };
}
