/**
 * Helm's release storage read directly: the `sh.helm.release.v1.<name>.v<N>`
 * Secrets (labels `owner=helm`, `name=<release>`) in the storage namespace,
 * each holding the release as base64 of gzipped JSON. Reading them costs
 * one API read and no Helm process, which is what lets an in-sync
 * HelmRelease reconcile with no Helm action at all.
 */
import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { z } from "zod";
import { apiError, type KubeClient } from "../../kube/client.ts";
import { KubeList } from "../../kube/schema.ts";
import { configDigest, type Values } from "./rules.ts";

/** helm.sh/helm/v4/pkg/release/v1 Release, the fields the agent reads. */
export const StoredRelease = z.looseObject({
  name: z.string(),
  namespace: z.string(),
  version: z.number(),
  info: z.looseObject({
    status: z.string(),
    first_deployed: z.string().optional(),
    last_deployed: z.string().optional(),
    deleted: z.string().optional(),
    description: z.string().optional(),
  }),
  chart: z.looseObject({
    metadata: z.looseObject({ name: z.string(), version: z.string(), appVersion: z.string().optional() }),
  }),
  config: z.record(z.string(), z.unknown()).nullish(),
  /** The rendered (and post-rendered) objects: what drift detection compares the cluster with. */
  manifest: z.string().nullish(),
  hooks: z
    .array(
      z.looseObject({
        name: z.string(),
        events: z.array(z.string()).nullish(),
        last_run: z
          .looseObject({
            started_at: z.string().nullish(),
            completed_at: z.string().nullish(),
            phase: z.string().nullish(),
          })
          .nullish(),
      }),
    )
    .nullish(),
});
export type StoredRelease = z.infer<typeof StoredRelease> & { digest: string };

/** One release record, decoded from the Secret's `release` key. */
export function decodeRelease(secretData: string): StoredRelease {
  const helmEncoded = Buffer.from(secretData, "base64").toString("utf8");
  let raw = Buffer.from(helmEncoded, "base64");
  if (raw[0] === 0x1f && raw[1] === 0x8b) raw = gunzipSync(raw, { maxOutputLength: 64 * 1024 * 1024 });
  const json = raw.toString("utf8");
  const rel = StoredRelease.parse(JSON.parse(json));
  return { ...rel, digest: `sha256:${createHash("sha256").update(json).digest("hex")}` };
}

/** Every stored revision of a release, oldest first. */
export async function listReleases(
  client: KubeClient,
  namespace: string,
  release: string,
): Promise<StoredRelease[]> {
  const res = await client.raw({
    method: "GET",
    path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`,
    query: { labelSelector: `owner=helm,name=${release}` },
  });
  if (res.code !== 200) throw apiError(`list Helm release storage in ${namespace}`, res.code, res.body);
  const out: StoredRelease[] = [];
  for (const item of KubeList.parse(res.body).items ?? []) {
    const data = (item as { data?: Record<string, string> }).data?.release;
    if (!data) continue;
    try {
      out.push(decodeRelease(data));
    } catch {
      // A record Helm itself could not read either: skipped, as `helm history` does not list it.
    }
  }
  return out.sort((a, b) => a.version - b.version);
}

/** Flux's `status.history` snapshot of a stored release. */
export interface Snapshot {
  apiVersion?: string;
  digest: string;
  name: string;
  namespace: string;
  version: number;
  status: string;
  chartName: string;
  chartVersion: string;
  appVersion?: string;
  configDigest: string;
  firstDeployed: string;
  lastDeployed: string;
  deleted?: string;
  /** The test hooks' last run (Flux's `testHooks`), once tests ran on this revision. */
  testHooks?: Record<string, { lastStarted?: string; lastCompleted?: string; phase?: string }>;
}

/** Test hooks of a release that have run: name → last run, as Flux's snapshot keeps them. */
export function testHooksOf(rel: StoredRelease): Snapshot["testHooks"] {
  const out: NonNullable<Snapshot["testHooks"]> = {};
  for (const h of rel.hooks ?? []) {
    const run = h.last_run;
    if (!h.events?.includes("test") || !run?.phase || run.phase === "Unknown") continue;
    out[h.name] = {
      ...(run.started_at ? { lastStarted: run.started_at } : {}),
      ...(run.completed_at ? { lastCompleted: run.completed_at } : {}),
      phase: run.phase,
    };
  }
  return Object.keys(out).length ? out : undefined;
}

export function snapshotOf(rel: StoredRelease): Snapshot {
  return {
    apiVersion: "v2",
    digest: rel.digest,
    name: rel.name,
    namespace: rel.namespace,
    version: rel.version,
    status: rel.info.status,
    chartName: rel.chart.metadata.name,
    chartVersion: rel.chart.metadata.version,
    ...(rel.chart.metadata.appVersion ? { appVersion: rel.chart.metadata.appVersion } : {}),
    configDigest: configDigest((rel.config ?? {}) as Values),
    firstDeployed: rel.info.first_deployed ?? "",
    lastDeployed: rel.info.last_deployed ?? "",
    ...(rel.info.deleted ? { deleted: rel.info.deleted } : {}),
    ...(testHooksOf(rel) ? { testHooks: testHooksOf(rel) } : {}),
  };
}
