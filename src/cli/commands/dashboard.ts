import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { setFlagsFromString } from "node:v8";
import { pino } from "pino";
import { registerSecret, UsageError } from "../../errors.ts";
import { durationMs, parseFlags, readableDir } from "../args.ts";
import type { Command } from "../command.ts";
import type { CliIO } from "../io.ts";
import { REGISTRY_FLAGS, registryScanOptions } from "../registry-flags.ts";

const DEFAULT_TOKEN_ENV = "SHIPMATE_DASHBOARD_TOKEN";

const usage = `shipmate dashboard --repo URL|PATH [--branch BRANCH] [--kubeconfig FILE | --in-cluster] [--listen 127.0.0.1:8080]
       [--token-env VAR | --token-file FILE] [--token-groups GROUP,...] [--trust-proxy-headers]
       [--sync-interval 30s] [--scan-interval DURATION] [--insecure-registry HOST:PORT]... [--pull-secret FILE]...
       [--forge github|gitlab|gitea] [--forge-url URL] [--forge-repo OWNER/NAME] [--forge-token-env VAR]
       [--git-token-env VAR] [--log-level LEVEL]

  Serves the fleet at a glance on http://HOST:PORT/dashboard/: apps × environments with what git pins and
  what the cluster runs, promotions and their gates, the agent's objects, policies; live (server-sent events).

  --repo URL|PATH          fleet repository (a local path is cloned too: its committed state is shown)
  --kubeconfig FILE        the cluster whose agent objects are shown (one watch per kind)
  --in-cluster             the cluster the dashboard runs in (its pod's service account)
  --token-env VAR          variable holding the bearer token every request needs (default ${DEFAULT_TOKEN_ENV}
                           when set); browsers sign in at /dashboard/login
  --token-file FILE        the token from a file (a mounted Secret)
  --token-groups G,...     groups of the token's holder (actions need one named in shipmate.yaml
                           spec.dashboard.actionGroups)
  --trust-proxy-headers    take the user and groups from X-Forwarded-User / X-Forwarded-Groups (only behind an
                           authenticating proxy)
  --scan-interval DURATION scan the registries this often to show the newest allowed tags (default: never)

  Read-only unless shipmate.yaml names action groups and the user is in one of them.`;

export const command: Command = {
  summary:
    "Serve a live web page of the fleet: versions per environment, promotions, cluster state, policies.",
  usage,
  async run(argv: string[], io: CliIO): Promise<number> {
    // A long-running server that allocates little per request: V8's young generation stays at its
    // first size instead of growing (to tens of MB while the modules below load) and never shrinking
    // back. The modules load after this line, and only the ones a read-only page needs.
    setFlagsFromString("--semi-space-growth-factor=1");
    const [{ startDashboard }, { Workspace }, { parseListen }] = await Promise.all([
      import("../../dashboard/index.ts"),
      import("../../git/workspace.ts"),
      import("../../webhooks/service.ts"),
    ]);
    const { values, positionals } = parseFlags("dashboard", argv, {
      repo: { type: "string" },
      branch: { type: "string" },
      kubeconfig: { type: "string" },
      "in-cluster": { type: "boolean" },
      listen: { type: "string" },
      "token-env": { type: "string" },
      "token-file": { type: "string" },
      "token-groups": { type: "string" },
      "trust-proxy-headers": { type: "boolean" },
      "sync-interval": { type: "string" },
      "scan-interval": { type: "string" },
      forge: { type: "string" },
      "forge-url": { type: "string" },
      "forge-repo": { type: "string" },
      "forge-token-env": { type: "string" },
      "git-token-env": { type: "string" },
      "log-level": { type: "string" },
      ...REGISTRY_FLAGS,
    });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    if (!values.repo) throw new UsageError("--repo is required (a clone URL or a local checkout)");
    const listen = parseListen(values.listen ?? "127.0.0.1:8080");
    const isUrl = Workspace.isUrl(values.repo);
    if (!isUrl) readableDir(resolve(io.cwd, values.repo), "--repo");
    if (values.kubeconfig && values["in-cluster"])
      throw new UsageError("--kubeconfig and --in-cluster exclude each other");
    if (values["token-env"] && values["token-file"])
      throw new UsageError("--token-env and --token-file exclude each other");
    let token: string | undefined;
    if (values["token-file"]) {
      try {
        token = readFileSync(resolve(io.cwd, values["token-file"]), "utf8").trim();
      } catch (err) {
        throw new UsageError(`--token-file ${values["token-file"]}: ${(err as Error).message}`);
      }
      if (!token) throw new UsageError(`--token-file ${values["token-file"]} is empty`);
    } else {
      const name = values["token-env"] ?? DEFAULT_TOKEN_ENV;
      token = io.env[name] || undefined;
      if (values["token-env"] && !token) throw new UsageError(`$${name} is not set`);
    }
    registerSecret(token);
    if (token && token.length < 16) throw new UsageError("the dashboard token is shorter than 16 characters");
    const level = values["log-level"] ?? "info";
    if (!["trace", "debug", "info", "warn", "error", "silent"].includes(level))
      throw new UsageError("--log-level must be trace, debug, info, warn, error or silent");
    const scanIntervalMs =
      values["scan-interval"] === undefined
        ? undefined
        : durationMs(values["scan-interval"], "--scan-interval", 0, { min: 10_000 });
    const scan = scanIntervalMs ? await registryScanOptions(values, io) : undefined;
    const log = pino({ level, base: { component: "shipmate-dashboard" } }, io.stderr);
    const app = await startDashboard(
      {
        repo: isUrl ? values.repo : resolve(io.cwd, values.repo),
        ...(values.branch ? { branch: values.branch } : {}),
        env: io.env,
        ...(values["git-token-env"] ? { tokenEnv: values["git-token-env"] } : {}),
        ...(values.kubeconfig ? { kubeconfig: resolve(io.cwd, values.kubeconfig) } : {}),
        ...(values["in-cluster"] ? { cluster: true } : {}),
        forge: {
          ...(values.forge ? { forge: values.forge } : {}),
          ...(values["forge-url"] ? { forgeUrl: values["forge-url"] } : {}),
          ...(values["forge-repo"] ? { forgeRepo: values["forge-repo"] } : {}),
          ...(values["forge-token-env"] ? { tokenEnv: values["forge-token-env"] } : {}),
        },
        syncIntervalMs: durationMs(values["sync-interval"], "--sync-interval", 30_000, { min: 1000 }),
        ...(scanIntervalMs ? { scanIntervalMs } : {}),
        ...(scan ? { scan } : {}),
        log,
      },
      {
        ...(token ? { token } : {}),
        ...(values["token-groups"]
          ? {
              tokenGroups: values["token-groups"]
                .split(",")
                .map((g) => g.trim())
                .filter(Boolean),
            }
          : {}),
        trustProxyHeaders: values["trust-proxy-headers"] ?? false,
      },
      listen,
    );
    log.info({ url: `${app.url}/dashboard/` }, "dashboard listening");
    await new Promise<void>((done) => {
      const stop = () => {
        process.off("SIGTERM", stop);
        process.off("SIGINT", stop);
        done();
      };
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    });
    await app.close();
    return 0;
  },
};
