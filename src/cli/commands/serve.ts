import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pino } from "pino";
import type { PolicySource } from "../../config/policy-set.ts";
import type { UpdateMode } from "../../config/types.ts";
import { registerSecret, UsageError } from "../../errors.ts";
import { createForge, forgeOptions } from "../../forge/index.ts";
import { parseIdentity, Workspace } from "../../git/workspace.ts";
import { defaultJournalPath } from "../../webhooks/journal.ts";
import { DEFAULT_MAX_BODY_BYTES, DEFAULT_WEBHOOK_PATH } from "../../webhooks/receiver.ts";
import { parseListen, startWebhookService } from "../../webhooks/service.ts";
import { durationMs, parseFlags, positiveInt, readableDir } from "../args.ts";
import type { Command } from "../command.ts";
import type { CliIO } from "../io.ts";
import { REGISTRY_FLAGS, registryScanOptions } from "../registry-flags.ts";

const DEFAULT_SECRET_ENV = "SHIPMATE_WEBHOOK_SECRET";

const usage = `shipmate serve --repo PATH|URL [--policies DIR] [--branch BRANCH] [--path SUBDIR]
       [--listen HOST:PORT] [--webhook-path PATH] [--secret-env VAR | --allow-unauthenticated]
       [--mode push|pull-request] [--interval DURATION] [--dry-run]
       [--forge github|gitlab|gitea] [--forge-url URL] [--forge-repo OWNER/NAME] [--forge-token-env VAR]
       [--insecure-registry HOST:PORT]... [--pull-secret FILE]... [--cache-dir DIR | --no-cache]
       [--platform OS/ARCH] [--token-env VAR] [--author "Name <email>"] [--message-template FILE]
       [--max-body-bytes N] [--log-level LEVEL]
       [--dashboard [--kubeconfig FILE] [--trust-proxy-headers]]

  Receives registry webhooks (CNCF Distribution notifications, Docker Hub, GHCR registry_package,
  Harbor) and, for each pushed tag, scans the policies watching that image and delivers the result:
  pushed to the branch (push mode, staging) or proposed as a pull request.

  --repo PATH|URL           fleet repository: a local checkout, or a clone URL (token from --token-env)
  --policies DIR            local policy directory read on every run (default: the policies in the
                            repository: shipmate.yaml's first environments, or every policy in the tree)
  --listen HOST:PORT        address to listen on (default 127.0.0.1:8080; 0.0.0.0:8080 in a container)
  --webhook-path PATH       endpoint path (default ${DEFAULT_WEBHOOK_PATH}; <path>/<sender> forces the sender:
                            distribution, dockerhub, ghcr, harbor)
  --secret-env VAR          variable holding the shared secret (default ${DEFAULT_SECRET_ENV}); deliveries
                            must carry it as HMAC (X-Hub-Signature-256), Authorization: Bearer, or ?token=
  --allow-unauthenticated   accept deliveries without the secret (only behind a trusted network boundary)
  --mode MODE               delivery of policies that name none (default: their environment's mode in
                            shipmate.yaml, else push)
  --interval DURATION       also scan everything this often (Go duration, e.g. 30m), for quiet registries
  --dry-run                 scan and log what would change; write nothing
  --max-body-bytes N        larger deliveries are refused with 413 (default ${DEFAULT_MAX_BODY_BYTES})

  --dashboard               also serve the fleet dashboard under /dashboard/ (docs/dashboard.md): its bearer
                            token from $SHIPMATE_DASHBOARD_TOKEN when set, --kubeconfig for the cluster view,
                            --trust-proxy-headers behind an authenticating proxy

  GET /healthz answers 200 while the server runs. Stops cleanly on SIGTERM/SIGINT after the current run.`;

export const command: Command = {
  summary: "Receive registry webhooks and update the fleet repository within seconds of a push.",
  usage,
  async run(argv: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseFlags("serve", argv, {
      repo: { type: "string" },
      policies: { type: "string" },
      branch: { type: "string" },
      path: { type: "string" },
      listen: { type: "string" },
      "webhook-path": { type: "string" },
      "secret-env": { type: "string" },
      "allow-unauthenticated": { type: "boolean" },
      mode: { type: "string" },
      interval: { type: "string" },
      "dry-run": { type: "boolean" },
      forge: { type: "string" },
      "forge-url": { type: "string" },
      "forge-repo": { type: "string" },
      "forge-token-env": { type: "string" },
      ...REGISTRY_FLAGS,
      "token-env": { type: "string" },
      author: { type: "string" },
      "message-template": { type: "string" },
      "max-body-bytes": { type: "string" },
      "log-level": { type: "string" },
      dashboard: { type: "boolean" },
      kubeconfig: { type: "string" },
      "trust-proxy-headers": { type: "boolean" },
    });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    if (!values.repo) throw new UsageError("--repo is required (a local checkout or a clone URL)");
    const scan = await registryScanOptions(values, io);
    const mode = values.mode;
    if (mode !== undefined && mode !== "push" && mode !== "pull-request")
      throw new UsageError(`--mode must be push or pull-request, got "${mode}"`);
    const level = values["log-level"] ?? "info";
    if (!["trace", "debug", "info", "warn", "error", "silent"].includes(level))
      throw new UsageError("--log-level must be trace, debug, info, warn, error or silent");

    const secretEnv = values["secret-env"] ?? DEFAULT_SECRET_ENV;
    const secret = io.env[secretEnv] || undefined;
    registerSecret(secret);
    if (!secret && !values["allow-unauthenticated"])
      throw new UsageError(
        `no webhook secret: set $${secretEnv} (or name another variable with --secret-env); ` +
          "--allow-unauthenticated accepts unauthenticated deliveries",
      );
    if (secret && secret.length < 16)
      throw new UsageError(`the webhook secret in $${secretEnv} is shorter than 16 characters`);

    const intervalMs =
      values.interval === undefined ? undefined : durationMs(values.interval, "--interval", 0, { min: 1000 });
    parseListen(values.listen ?? "127.0.0.1:8080");
    const isUrl = Workspace.isUrl(values.repo);
    if (!isUrl) readableDir(resolve(io.cwd, values.repo), "--repo");
    const repo = isUrl ? values.repo : resolve(io.cwd, values.repo);
    const policies: PolicySource = values.policies
      ? { kind: "dir", dir: resolve(io.cwd, values.policies) }
      : { kind: "repo" };
    let template: string | undefined;
    if (values["message-template"] !== undefined) {
      try {
        template = readFileSync(resolve(io.cwd, values["message-template"]), "utf8");
      } catch (err) {
        throw new UsageError(`--message-template ${values["message-template"]}: ${(err as Error).message}`);
      }
    }
    const forgeFlags = {
      ...(values.forge ? { forge: values.forge } : {}),
      ...(values["forge-url"] ? { forgeUrl: values["forge-url"] } : {}),
      ...(values["forge-repo"] ? { forgeRepo: values["forge-repo"] } : {}),
      ...(values["forge-token-env"] ? { tokenEnv: values["forge-token-env"] } : {}),
    };
    // The forge is only built when a pull-request policy needs it; its flag problems surface then.
    const forge = () =>
      createForge(forgeOptions({ ...forgeFlags, ...(isUrl ? { remote: repo } : {}) }, io.env));
    if (mode === "pull-request") forge();

    const log = pino({ level, base: { component: "shipmate-serve" } }, io.stderr);
    if (!values.dashboard && (values.kubeconfig || values["trust-proxy-headers"]))
      throw new UsageError("--kubeconfig and --trust-proxy-headers belong to --dashboard");
    const dashboardToken = io.env.SHIPMATE_DASHBOARD_TOKEN || undefined;
    registerSecret(dashboardToken);
    const dashboard = values.dashboard
      ? await (await import("../../dashboard/index.ts")).mountDashboard(
          {
            repo,
            ...(values.branch ? { branch: values.branch } : {}),
            env: io.env,
            ...(values["token-env"] ? { tokenEnv: values["token-env"] } : {}),
            ...(values.kubeconfig ? { kubeconfig: resolve(io.cwd, values.kubeconfig) } : {}),
            forge: forgeFlags,
            log,
          },
          {
            ...(dashboardToken ? { token: dashboardToken } : {}),
            trustProxyHeaders: values["trust-proxy-headers"] ?? false,
          },
        )
      : undefined;
    const service = await startWebhookService({
      ...(dashboard ? { mount: (req, res) => dashboard.handler.handle(req, res) } : {}),
      listen: values.listen ?? "127.0.0.1:8080",
      path: values["webhook-path"] ?? DEFAULT_WEBHOOK_PATH,
      auth: { ...(secret ? { secret } : {}), allowUnauthenticated: values["allow-unauthenticated"] ?? false },
      maxBodyBytes: positiveInt(values["max-body-bytes"], "--max-body-bytes") ?? DEFAULT_MAX_BODY_BYTES,
      ...(intervalMs ? { intervalMs } : {}),
      journal: defaultJournalPath(JSON.stringify([repo, values.branch ?? "", values.path ?? ""]), io.env),
      log,
      job: {
        repo,
        ...(values.branch ? { branch: values.branch } : {}),
        ...(values.path ? { path: values.path } : {}),
        policies,
        delivery: { kind: "by-mode", ...(mode ? { mode: { fallback: mode as UpdateMode } } : {}) },
        dryRun: values["dry-run"] ?? false,
        env: io.env,
        ...(values["token-env"] ? { tokenEnv: values["token-env"] } : {}),
        scan,
        forge,
        ...(values.author ? { author: parseIdentity(values.author, "--author") } : {}),
        ...(template !== undefined
          ? { messageTemplate: template, messageTemplateSource: values["message-template"] }
          : {}),
        onRetry: (attempt, reason) =>
          log.warn({ attempt }, `push rejected (${reason}); retrying on the new head`),
      },
    });
    if (!secret) log.warn("accepting unauthenticated webhook deliveries (--allow-unauthenticated)");
    log.info(
      { url: `${service.url}${values["webhook-path"] ?? DEFAULT_WEBHOOK_PATH}`, interval: values.interval },
      "listening for registry webhooks",
    );
    await new Promise<void>((done) => {
      const stop = () => {
        process.off("SIGTERM", stop);
        process.off("SIGINT", stop);
        done();
      };
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    });
    log.info("stopping: finishing the current run");
    dashboard?.handler.close();
    await service.close();
    await dashboard?.close();
    return 0;
  },
};
