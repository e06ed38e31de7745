/**
 * The conformance gate's run against the source environment at the promoted
 * revision: a Job made from a named CronJob's jobTemplate (one Job per
 * revision, so a later run reads the same Job instead of starting another),
 * or a command run in the source checkout. Either is given `timeout`; the
 * outcome, a log tail and where to read the rest become ConformanceEvidence
 * (./gates.ts judges it).
 */
import { spawn } from "node:child_process";
import { z } from "zod";
import { parseDuration } from "../agent/kustomization.ts";
import type { KubeClient } from "../kube/client.ts";
import type { ConformanceConfig, ConformanceEvidence } from "./gates.ts";

const LOG_LINES = 20;
const LOG_BYTES = 4096;

/** The last lines of an output, bounded (a request body has a size limit). */
export function tail(text: string): string {
  const lines = text.replace(/\s+$/, "").split("\n").slice(-LOG_LINES).join("\n");
  return lines.length > LOG_BYTES ? `…${lines.slice(-LOG_BYTES)}` : lines;
}

export interface ConformanceRun {
  config: ConformanceConfig;
  revision: string;
  environment: string;
  /** Source checkout (the command's working directory). */
  dir: string;
  kubeconfig?: string;
  /** The source environment's cluster (Job form). */
  client?: () => KubeClient;
  env: NodeJS.ProcessEnv;
  pollMs?: number;
  now?: () => number;
}

export async function runConformance(run: ConformanceRun): Promise<ConformanceEvidence> {
  const timeoutMs = parseDuration(run.config.timeout);
  if (run.config.command) return runCommand(run, run.config.command, timeoutMs);
  if (run.config.job && run.client) {
    const client = run.client();
    try {
      return await runJob(run, client, run.config.job, timeoutMs);
    } finally {
      client.close();
    }
  }
  return {
    what: "conformance",
    state: "error",
    elapsedMs: 0,
    timeout: run.config.timeout,
    reason: "no job or command",
  };
}

function runCommand(run: ConformanceRun, argv: string[], timeoutMs: number): Promise<ConformanceEvidence> {
  const what = `command \`${argv.join(" ")}\``;
  const started = Date.now();
  return new Promise((resolve) => {
    let out = "";
    let timedOut = false;
    const child = spawn(argv[0] ?? "", argv.slice(1), {
      cwd: run.dir,
      env: {
        ...run.env,
        SHIPMATE_REVISION: run.revision,
        SHIPMATE_ENVIRONMENT: run.environment,
        ...(run.kubeconfig ? { KUBECONFIG: run.kubeconfig } : {}),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const keep = (d: Buffer) => {
      out = (out + d.toString()).slice(-16 * LOG_BYTES);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    const base = { what, timeout: run.config.timeout };
    child.once("error", (err) => {
      clearTimeout(timer);
      resolve({ ...base, state: "error", elapsedMs: Date.now() - started, reason: err.message });
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      const logs = tail(out);
      const elapsedMs = Date.now() - started;
      if (timedOut) resolve({ ...base, state: "timeout", elapsedMs, ...(logs ? { logs } : {}) });
      else if (code === 0) resolve({ ...base, state: "succeeded", elapsedMs, ...(logs ? { logs } : {}) });
      else
        resolve({
          ...base,
          state: "failed",
          elapsedMs,
          reason: signal ? `killed by ${signal}` : `exit code ${code}`,
          ...(logs ? { logs } : {}),
        });
    });
  });
}

// batch/v1 Job status, the fields read here.
const JobSchema = z.looseObject({
  metadata: z.looseObject({ name: z.string(), creationTimestamp: z.string().optional() }),
  status: z
    .looseObject({
      startTime: z.string().optional(),
      completionTime: z.string().optional(),
      succeeded: z.number().optional(),
      failed: z.number().optional(),
      conditions: z
        .array(
          z.looseObject({
            type: z.string(),
            status: z.string(),
            message: z.string().optional(),
            reason: z.string().optional(),
          }),
        )
        .optional(),
    })
    .optional(),
});
const CronJobSchema = z.looseObject({
  spec: z.looseObject({
    jobTemplate: z.looseObject({
      metadata: z.looseObject({}).optional(),
      spec: z.looseObject({
        template: z.looseObject({ spec: z.looseObject({ containers: z.array(z.looseObject({})) }) }),
      }),
    }),
  }),
});

/** One Job per CronJob and revision: `<cronjob>-<revision[:12]>`, at most 63 characters. */
export function jobName(template: string, revision: string): string {
  return `${template.slice(0, 50)}-${revision.slice(0, 12)}`;
}

async function runJob(
  run: ConformanceRun,
  client: KubeClient,
  ref: { name: string; namespace: string },
  timeoutMs: number,
): Promise<ConformanceEvidence> {
  const name = jobName(ref.name, run.revision);
  const what = `Job ${ref.namespace}/${name}`;
  const base = { what, timeout: run.config.timeout, link: `kubectl logs -n ${ref.namespace} job/${name}` };
  const now = run.now ?? Date.now;
  const jobPath = `/apis/batch/v1/namespaces/${ref.namespace}/jobs/${name}`;
  let res = await client.raw({ method: "GET", path: jobPath });
  if (res.code === 404) {
    const cron = await client.raw({
      method: "GET",
      path: `/apis/batch/v1/namespaces/${ref.namespace}/cronjobs/${ref.name}`,
    });
    if (cron.code === 404)
      return {
        ...base,
        what: `CronJob ${ref.namespace}/${ref.name}`,
        state: "error",
        elapsedMs: 0,
        reason: "the Job template (a CronJob) does not exist",
      };
    const parsed = CronJobSchema.safeParse(cron.body);
    if (cron.code !== 200 || !parsed.success)
      return {
        ...base,
        state: "error",
        elapsedMs: 0,
        reason: `cannot read CronJob ${ref.namespace}/${ref.name}: HTTP ${cron.code}`,
      };
    const tmpl = parsed.data.spec.jobTemplate;
    const podSpec = tmpl.spec.template.spec;
    // The revision under test, for the test itself.
    const containers = (podSpec.containers as { env?: { name: string; value: string }[] }[]).map((c) => ({
      ...c,
      env: [
        ...(c.env ?? []).filter((e) => e.name !== "SHIPMATE_REVISION"),
        { name: "SHIPMATE_REVISION", value: run.revision },
      ],
    }));
    const meta = (tmpl.metadata ?? {}) as {
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
    };
    res = await client.raw({
      method: "POST",
      path: `/apis/batch/v1/namespaces/${ref.namespace}/jobs`,
      body: {
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: {
          name,
          namespace: ref.namespace,
          labels: { ...(meta.labels ?? {}), "shipmate.dev/conformance": ref.name },
          annotations: {
            ...(meta.annotations ?? {}),
            "shipmate.dev/revision": run.revision,
            "cronjob.kubernetes.io/instantiate": "manual",
          },
        },
        spec: { ...tmpl.spec, template: { ...tmpl.spec.template, spec: { ...podSpec, containers } } },
      },
    });
    if (res.code !== 201 && res.code !== 409)
      return {
        ...base,
        state: "error",
        elapsedMs: 0,
        reason:
          `cannot create ${what}: HTTP ${res.code} ${(res.body as { message?: string })?.message ?? ""}`.trim(),
      };
    if (res.code === 409) res = await client.raw({ method: "GET", path: jobPath });
  }
  const poll = run.pollMs ?? 1000;
  for (;;) {
    const parsed = JobSchema.safeParse(res.body);
    if (res.code !== 200 && res.code !== 201)
      return { ...base, state: "error", elapsedMs: 0, reason: `GET ${what}: HTTP ${res.code}` };
    if (!parsed.success)
      return { ...base, state: "error", elapsedMs: 0, reason: `${what}: unexpected answer` };
    const job = parsed.data;
    const started = Date.parse(job.status?.startTime ?? job.metadata.creationTimestamp ?? "") || now();
    const cond = (type: string) =>
      job.status?.conditions?.find((c) => c.type === type && c.status === "True");
    const complete = cond("Complete");
    const failed = cond("Failed");
    // A finished Job took what it took: the same figure on every later run.
    const ended = complete || failed ? Date.parse(job.status?.completionTime ?? "") || now() : now();
    const elapsedMs = Math.max(0, ended - started);
    if (complete || failed) {
      const logs = await jobLogs(client, ref.namespace, name);
      const extra = logs ? { logs } : {};
      if (complete) return { ...base, state: "succeeded", elapsedMs, ...extra };
      return {
        ...base,
        state: "failed",
        elapsedMs,
        reason: failed?.message ?? failed?.reason ?? "the Job failed",
        ...extra,
      };
    }
    if (elapsedMs >= timeoutMs) {
      const logs = await jobLogs(client, ref.namespace, name);
      return { ...base, state: "timeout", elapsedMs, ...(logs ? { logs } : {}) };
    }
    await new Promise((r) => setTimeout(r, Math.min(poll, timeoutMs - elapsedMs)));
    res = await client.raw({ method: "GET", path: jobPath });
  }
}

/** The last pod's log tail, when the Job ran a pod the API server can read logs of. */
async function jobLogs(client: KubeClient, namespace: string, job: string): Promise<string | undefined> {
  const pods = await client.raw({
    method: "GET",
    path: `/api/v1/namespaces/${namespace}/pods`,
    query: { labelSelector: `job-name=${job}` },
  });
  const items =
    (pods.body as { items?: { metadata: { name: string; creationTimestamp?: string } }[] })?.items ?? [];
  const last = [...items]
    .sort((a, b) => (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? ""))
    .at(-1);
  if (pods.code !== 200 || !last) return undefined;
  const log = await client.raw({
    method: "GET",
    path: `/api/v1/namespaces/${namespace}/pods/${last.metadata.name}/log`,
    query: { tailLines: String(LOG_LINES) },
    accept: "text/plain",
  });
  return log.code === 200 && typeof log.body === "string" && log.body ? tail(log.body) : undefined;
}
