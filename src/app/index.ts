/**
 * The shipmate GitHub App (Probot). Each handler turns one event into one
 * call of the service (src/app/service.ts), which runs the engine after
 * the delivery has been answered. Runs with `probot run ./src/app/index.ts`
 * (default export), as middleware (`createNodeMiddleware(appFn, …)`), or
 * standalone with src/app/server.ts; the registry webhook endpoint of
 * `shipmate serve` is mounted in the same server.
 */
import type { ApplicationFunction, Probot } from "probot";
import { parseGoDuration } from "../config/index.ts";
import { registerSecret } from "../errors.ts";
import { pushesFromGitHubPackageEvent } from "../webhooks/events.ts";
import {
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_WEBHOOK_PATH,
  registryWebhookHandler,
  sendJson,
} from "../webhooks/receiver.ts";
import {
  DEFAULT_GITHUB_MAX_BODY_BYTES,
  DEFAULT_GITHUB_WEBHOOK_PATH,
  githubWebhookHandler,
} from "./ingress.ts";
import * as S from "./schemas.ts";
import { type AppSettings, ShipmateService } from "./service.ts";

export { type AppSettings, ShipmateService } from "./service.ts";

export interface AppOptions {
  settings: AppSettings;
  /** GitHub deliveries (Probot's default path). */
  webhookPath?: string;
  maxBodyBytes?: number;
  /** The registry webhook endpoint (as `shipmate serve`); its secret is required unless allowUnauthenticated. */
  registry?: { path?: string; secret?: string; allowUnauthenticated?: boolean; maxBodyBytes?: number };
}

/** Events with handlers; everything else is acknowledged and logged. */
export const HANDLED_EVENTS: readonly string[] = [
  "registry_package.published",
  "registry_package.updated",
  "package.published",
  "package.updated",
  "push",
  "pull_request.closed",
  "pull_request.opened",
  "pull_request.reopened",
  "pull_request.synchronize",
  "issue_comment.created",
  "installation.created",
  "installation_repositories.added",
];

export function createShipmateApp(opts: AppOptions): {
  appFn: ApplicationFunction;
  service: ShipmateService;
} {
  const service = new ShipmateService(opts.settings);
  const appFn: ApplicationFunction = (app: Probot, { addHandler }) => {
    service.attach(app);
    const pkg = (payload: unknown) =>
      service.packagePublished(
        S.PackageEvent.parse(payload).installation.id,
        pushesFromGitHubPackageEvent(payload),
      );
    app.on(["registry_package.published", "registry_package.updated"], (ctx) => pkg(ctx.payload));
    app.on(["package.published", "package.updated"], (ctx) => pkg(ctx.payload));
    app.on("push", (ctx) => service.push(S.PushEvent.parse(ctx.payload)));
    app.on("pull_request.closed", (ctx) => service.pullRequestMerged(S.PullRequestEvent.parse(ctx.payload)));
    app.on(["pull_request.opened", "pull_request.reopened", "pull_request.synchronize"], (ctx) =>
      service.pullRequestChanged(S.PullRequestEvent.parse(ctx.payload)),
    );
    app.on("issue_comment.created", (ctx) => service.comment(S.IssueCommentEvent.parse(ctx.payload)));
    app.on(["installation.created", "installation_repositories.added"], (ctx) =>
      service.installed(S.InstallationEvent.parse(ctx.payload).installation.id),
    );

    const log = app.log.child({ name: "shipmate" });
    addHandler(
      githubWebhookHandler(app, {
        path: opts.webhookPath ?? DEFAULT_GITHUB_WEBHOOK_PATH,
        maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_GITHUB_MAX_BODY_BYTES,
        handled: new Set(HANDLED_EVENTS),
        log,
      }),
    );
    const registry = opts.registry ?? {};
    registerSecret(registry.secret);
    addHandler(
      registryWebhookHandler({
        path: registry.path ?? DEFAULT_WEBHOOK_PATH,
        auth: {
          ...(registry.secret ? { secret: registry.secret } : {}),
          allowUnauthenticated: registry.allowUnauthenticated ?? false,
        },
        maxBodyBytes: registry.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
        log,
        onPushes: (pushes) => service.registryPushes(pushes),
      }),
    );
    addHandler((req, res) => {
      if ((req.url ?? "").split("?")[0] !== "/healthz") return false;
      sendJson(res, 200, { ok: true });
      return true;
    });
  };
  return { appFn, service };
}

const truthy = (v: string | undefined, dflt: boolean) =>
  v === undefined || v === "" ? dflt : !/^(false|0|no|off)$/i.test(v);

/** Settings from the environment (docs/app.md lists the variables). */
export function appOptionsFromEnv(env: NodeJS.ProcessEnv): AppOptions {
  const schedule = env.SHIPMATE_SCHEDULE ?? "30m";
  const scheduleMs = /^(0|off)$/i.test(schedule) ? 0 : parseGoDuration(schedule);
  if (scheduleMs === undefined)
    throw new Error(`SHIPMATE_SCHEDULE must be a duration such as 30m or off, got "${schedule}"`);
  const maxBody = env.SHIPMATE_MAX_BODY_BYTES ? Number(env.SHIPMATE_MAX_BODY_BYTES) : undefined;
  return {
    settings: {
      scheduleMs,
      dashboard: truthy(env.SHIPMATE_DASHBOARD, true),
      checks: truthy(env.SHIPMATE_CHECKS, true),
      insecureRegistries: (env.SHIPMATE_INSECURE_REGISTRIES ?? "")
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
      env,
    },
    ...(env.WEBHOOK_PATH ? { webhookPath: env.WEBHOOK_PATH } : {}),
    ...(maxBody && Number.isInteger(maxBody) && maxBody > 0 ? { maxBodyBytes: maxBody } : {}),
    registry: {
      ...(env.SHIPMATE_REGISTRY_WEBHOOK_PATH ? { path: env.SHIPMATE_REGISTRY_WEBHOOK_PATH } : {}),
      ...(env.SHIPMATE_WEBHOOK_SECRET ? { secret: env.SHIPMATE_WEBHOOK_SECRET } : {}),
      allowUnauthenticated: truthy(env.SHIPMATE_ALLOW_UNAUTHENTICATED_WEBHOOKS, false),
    },
  };
}

/** For `probot run ./src/app/index.ts`: settings from the environment. */
const shipmate: ApplicationFunction = (app, options) =>
  createShipmateApp(appOptionsFromEnv(process.env)).appFn(app, options);
export default shipmate;
