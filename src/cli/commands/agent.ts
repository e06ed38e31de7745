import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pino } from "pino";
import { Agent, type PassSummary } from "../../agent/agent.ts";
import { serve } from "../../agent/server.ts";
import { registerSecret, UsageError } from "../../errors.ts";
import { parseForgeKind } from "../../forge/index.ts";
import { loadKubeConfig } from "../../kube/client.ts";
import { durationMs, parseFlags, positiveInt } from "../args.ts";
import type { Command } from "../command.ts";
import { type CliIO, writeLine } from "../io.ts";

const USAGE = `shipmate agent --repo URL --path clusters/<env> [--branch main] [--interval 1m] [--poll-interval 5s]
       [--once] [--kubeconfig FILE] [--namespace shipmate-system] [--name shipmate-system] [--workdir DIR]
       [--listen :8080] [--force-conflicts] [--no-leader-elect] [--token-env VAR] [--json]
       [--log-level info] [--max-artifact-size 256Mi] [--max-bucket-objects 10000]
       [--default-service-account NAME] [--no-cross-namespace-refs] [--no-remote-bases]
       [--image-automation] [--forge github|gitlab|gitea] [--receivers] [--helm-concurrency 8]

  --poll-interval D          how often to look for due work unprompted (default 5s; changes and
                             reconcile requests are watched and start a pass at once)
  --max-artifact-size SIZE   largest OCIRepository layer pulled (bytes, or Ki/Mi/Gi; default 256Mi)
  --max-bucket-objects N     most objects a Bucket listing may hold (default 10000)
  --default-service-account NAME  reconcile Kustomizations and HelmReleases without serviceAccountName as NAME of their namespace
  --no-cross-namespace-refs  refuse a sourceRef or dependsOn into another namespace
  --no-remote-bases          refuse kustomizations that would fetch from the network
  --image-automation         serve Flux's ImageRepository, ImagePolicy and ImageUpdateAutomation objects
                             (and Receivers)
  --forge KIND               the forge of the fleet repository, for pull requests of an automation's push
                             branch (default: told from the GitRepository URL's host)
  --receivers                serve Flux's Receiver objects on --listen's /hook/<sha256> paths
  --helm-concurrency N       HelmReleases reconciled at once, in one shipmate-helm process (default 8, at most 64)`;

/** A byte size flag: `1048576`, `512Ki`, `256Mi`, `1Gi`. */
function byteSize(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const m = /^([0-9]+)(Ki|Mi|Gi)?$/.exec(value.trim());
  const n = m ? Number(m[1]) * { "": 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }[m[2] ?? ""]! : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new UsageError(
      `${flag} must be a size in bytes such as 1048576, 512Ki, 256Mi or 1Gi, got "${value}"`,
    );
  return n;
}

function durationFlag(value: string | undefined, flag: string, dflt: string): number {
  return durationMs(value ?? dflt, flag, 0);
}

/** Puts the token from `--token-env` into an http(s) URL's userinfo, registered so it is never printed. */
function withToken(url: string, token: string | undefined): string {
  if (!token || !/^https?:\/\//.test(url)) return url;
  registerSecret(token);
  const u = new URL(url);
  u.username = "x-access-token";
  u.password = token;
  return u.toString();
}

function printSummary(io: CliIO, s: PassSummary, json: boolean): void {
  if (json) {
    writeLine(
      io.stdout,
      JSON.stringify({ ...s, maxRssBytes: process.resourceUsage().maxRSS * 1024 }, null, 2),
    );
    return;
  }
  if (s.sourceError) writeLine(io.stdout, `source: ${s.sourceError}`);
  for (const k of s.reconciled) {
    const state = k.suspended ? "suspended" : k.ready ? "ready" : "not ready";
    writeLine(io.stdout, `${k.namespace}/${k.name}: ${state} (${k.inventory} objects) ${k.message}`);
  }
  writeLine(io.stdout, `revision ${s.revision ?? "-"}, ${s.writes} write request(s)`);
}

export const command: Command = {
  summary:
    "Run the in-cluster sync agent: fetch the fleet repository, apply, prune, revert drift, report health.",
  usage: USAGE,
  async run(argv: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseFlags("agent", argv, {
      repo: { type: "string" },
      branch: { type: "string" },
      path: { type: "string" },
      interval: { type: "string" },
      once: { type: "boolean" },
      kubeconfig: { type: "string" },
      namespace: { type: "string" },
      name: { type: "string" },
      workdir: { type: "string" },
      listen: { type: "string" },
      "force-conflicts": { type: "boolean" },
      "no-leader-elect": { type: "boolean" },
      "token-env": { type: "string" },
      json: { type: "boolean" },
      "log-level": { type: "string" },
      "poll-interval": { type: "string" },
      "default-service-account": { type: "string" },
      "no-cross-namespace-refs": { type: "boolean" },
      "no-remote-bases": { type: "boolean" },
      "image-automation": { type: "boolean" },
      receivers: { type: "boolean" },
      forge: { type: "string" },
      "helm-concurrency": { type: "string" },
      "lease-duration": { type: "string" },
      "max-artifact-size": { type: "string" },
      "max-bucket-objects": { type: "string" },
    });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    if (!values.repo) throw new UsageError("--repo is required");
    if (!values.path) throw new UsageError("--path is required (the cluster folder, e.g. clusters/staging)");
    const token = values["token-env"] ? io.env[values["token-env"]] : undefined;
    if (values["token-env"] && !token)
      throw new UsageError(`environment variable ${values["token-env"]} is empty`);
    const level = values["log-level"] ?? "info";
    if (!["trace", "debug", "info", "warn", "error", "silent"].includes(level)) {
      throw new UsageError(`--log-level must be trace, debug, info, warn, error or silent`);
    }
    const defaultSa = values["default-service-account"];
    if (defaultSa !== undefined && !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(defaultSa))
      throw new UsageError(
        `--default-service-account "${defaultSa}" is not a service account name (lowercase letters, digits, '-' and '.')`,
      );
    const leaseMs = durationFlag(values["lease-duration"], "--lease-duration", "15s");
    const log = pino({ level, base: { component: "shipmate-agent" } }, io.stderr);
    const kc = loadKubeConfig(values.kubeconfig);
    const namespace = values.namespace ?? "shipmate-system";
    const layerBytes = byteSize(values["max-artifact-size"], "--max-artifact-size");
    const bucketObjects = positiveInt(values["max-bucket-objects"], "--max-bucket-objects");
    const helmConcurrency = positiveInt(values["helm-concurrency"], "--helm-concurrency");
    if (helmConcurrency !== undefined && helmConcurrency > 64)
      throw new UsageError(`--helm-concurrency must be at most 64, got ${helmConcurrency}`);
    const agent = new Agent(
      kc,
      {
        repo: withToken(values.repo, token),
        branch: values.branch ?? "main",
        path: values.path,
        intervalMs: durationFlag(values.interval, "--interval", "1m"),
        name: values.name ?? namespace,
        namespace,
        workdir: resolve(io.cwd, values.workdir ?? join(tmpdir(), "shipmate-agent")),
        forceConflicts: values["force-conflicts"] ?? false,
        pollMs: durationFlag(values["poll-interval"], "--poll-interval", "5s"),
        leaseDurationMs: leaseMs,
        renewDeadlineMs: Math.round((leaseMs * 2) / 3),
        retryPeriodMs: Math.max(200, Math.round(leaseMs / 7)),
        artifactLimits: layerBytes ? { layerBytes } : {},
        bucketLimits: bucketObjects ? { objects: bucketObjects } : {},
        ...(defaultSa ? { defaultServiceAccount: defaultSa } : {}),
        noCrossNamespaceRefs: values["no-cross-namespace-refs"] ?? false,
        noRemoteBases: values["no-remote-bases"] ?? false,
        imageAutomation: values["image-automation"] ?? false,
        ...(values.receivers !== undefined ? { receivers: values.receivers } : {}),
        ...(values.forge ? { forge: parseForgeKind(values.forge) } : {}),
        ...(helmConcurrency ? { helmConcurrency } : {}),
      },
      log,
    );
    try {
      if (values.once) {
        const summary = await agent.once();
        printSummary(io, summary, values.json ?? false);
        const ok = !summary.sourceError && summary.reconciled.every((k) => k.ready || k.suspended);
        return ok ? 0 : 1;
      }
      const { server, url } = await serve(values.listen ?? ":8080", agent.metrics, agent.probes());
      log.info({ url, identity: agent.identity }, "serving /metrics, /healthz, /readyz");
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once("SIGTERM", onSignal);
      process.once("SIGINT", onSignal);
      try {
        const end = await agent.run(stop.signal, !values["no-leader-elect"]);
        if (end === "lost-leadership") {
          log.error(
            { identity: agent.identity },
            "leader lease lost; exiting so a fresh replica can stand by",
          );
          return 1;
        }
        return 0;
      } finally {
        process.off("SIGTERM", onSignal);
        process.off("SIGINT", onSignal);
        server.close();
      }
    } finally {
      agent.close();
    }
  },
};
