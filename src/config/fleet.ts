/**
 * The fleet repository configuration, `shipmate.yaml` at a repository's root
 * (`apiVersion: shipmate.dev/v1alpha1`, `kind: Fleet`): which environments
 * exist, in which order changes travel through them, where each one's
 * manifests and image policies live (a path in this repository, or another
 * repository), and how updates reach each one (pushed, or proposed as a pull
 * request, possibly after promotion gates). docs/configuration.md is the
 * user's reference; this schema is the source of truth.
 */
import { lstat, readFile, realpath } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { isMap, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import { z } from "zod";
import { ConfigError } from "../errors.ts";
import { documentValue } from "./limits.ts";
import { inside } from "./tree.ts";

export const FLEET_FILE = "shipmate.yaml";
export const FLEET_API_VERSION = "shipmate.dev/v1alpha1";

/** RFC 1123 label, as Kubernetes requires for namespaces and most names. */
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const label = z
  .string()
  .max(63, "must be at most 63 characters")
  .regex(DNS1123_LABEL, "must be a DNS-1123 label (lowercase letters, digits and '-')");

/** A folder inside a repository: relative, forward slashes, never leaving the repository. */
const repoPath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith("/") && !p.split("/").includes(".."), {
    message: "must be a relative path inside the repository (no leading '/', no '..')",
  })
  .transform((p) => p.replace(/^\.\//, "").replace(/\/+$/, "") || ".");

/** Go duration syntax (`90s`, `1h`, `1h30m`), as Flux intervals are written. */
const duration = z
  .string()
  .regex(/^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/, "must be a duration such as 30m, 1h or 1h30m");

const gitRepository = z
  .object({
    url: z.string().min(1),
    branch: z.string().min(1).default("main"),
  })
  .strict();

/** What must hold before a promotion into an environment is proposed or merged. */
const gates = z
  .object({
    /** The source environment's last commit has green status checks. */
    checks: z.boolean().default(false),
    /** The source environment reports the workloads healthy (agent status). */
    health: z.boolean().default(false),
    /** The version has run in the source environment at least this long. */
    soak: duration.optional(),
    /** The target environment's Flagger Canaries of the promoted apps finished their last rollout (Succeeded). */
    canary: z.boolean().default(false),
    /** A conformance test against the source environment at the promoted revision passes. */
    conformance: z
      .object({
        /** A Job created from this CronJob's jobTemplate (a suspended CronJob is a named Job template). */
        job: z
          .object({ name: label, namespace: label.default("shipmate-system") })
          .strict()
          .optional(),
        /** Or a command, run in the source checkout with KUBECONFIG and SHIPMATE_REVISION set. */
        command: z.array(z.string().min(1)).min(1).optional(),
        /** How long it may take before the gate fails. */
        timeout: duration.default("10m"),
      })
      .strict()
      .refine((c) => (c.job === undefined) !== (c.command === undefined), {
        message: "names exactly one of job (a CronJob used as the Job template) or command",
      })
      .optional(),
  })
  .strict();

/** How the requests into an environment are opened: on top of the command's own flags. */
const pullRequest = z
  .object({
    /** Labels every request into the environment carries. */
    labels: z.array(z.string().min(1)).optional(),
    /** Users asked to review (GitHub/Gitea logins, GitLab usernames). */
    reviewers: z.array(z.string().min(1)).optional(),
    /** Merge by itself once the checks pass (where the forge allows it). */
    autoMerge: z.boolean().optional(),
  })
  .strict();

const environment = z
  .object({
    name: label,
    /** Folder holding this environment's manifests (overlays), relative to its repository. */
    path: repoPath,
    /** Folder holding this environment's image policies; defaults to `path`. */
    policies: repoPath.optional(),
    /** Folder holding the cluster sync objects (GitRepository, Kustomization, agent). */
    cluster: repoPath.optional(),
    /** Set when the environment lives in a repository of its own (repo per environment). */
    repository: gitRepository.optional(),
    /** push: commit to the branch; pull-request: open or update a pull request. */
    mode: z.enum(["push", "pull-request"]).default("push"),
    /** The environment whose versions are promoted into this one. */
    promoteFrom: label.optional(),
    gates: gates.optional(),
    /** The kubeconfig context that reaches this environment's cluster (default: a context named like it, else the current one). */
    kubeContext: z.string().min(1).optional(),
    /** Labels, reviewers and auto-merge of the requests into this environment (updates and promotions). */
    pullRequest: pullRequest.optional(),
  })
  .strict();

/**
 * Where a secret setting is read from: an environment variable or a file
 * (a mounted Secret), never the YAML itself, which is committed.
 */
const secretSource = z.union([
  z
    .object({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name") })
    .strict(),
  z.object({ file: z.string().min(1) }).strict(),
]);

/** What a run reports (src/notify/run.ts): each provider names the ones it wants (default: all). */
export const NOTIFY_EVENTS = ["bump-pushed", "request-opened", "request-merged", "promoted"] as const;

/** One provider of the `notifications:` block: Flux's provider types, settings as a Flux Provider has them. */
const notificationProvider = z
  .object({
    name: label,
    type: z.enum([
      "slack",
      "msteams",
      "discord",
      "generic",
      "generic-hmac",
      "alertmanager",
      "github",
      "gitlab",
      "gitea",
    ]),
    /** The webhook URL (a secret: from `env` or `file`); for github/gitlab/gitea the repository's URL may be written as it is. */
    address: z.union([secretSource, z.string().url()]).optional(),
    /** Bot token, HMAC key or forge token. */
    token: secretSource.optional(),
    channel: z.string().min(1).optional(),
    username: z.string().min(1).optional(),
    events: z.array(z.enum(NOTIFY_EVENTS)).min(1).optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (typeof p.address === "string" && !["github", "gitlab", "gitea"].includes(p.type))
      ctx.addIssue({
        code: "custom",
        path: ["address"],
        message: `a ${p.type} address is a secret: give it as {env: NAME} or {file: PATH}, never in shipmate.yaml`,
      });
  });

const notifications = z
  .object({ providers: z.array(notificationProvider).min(1, "lists no provider") })
  .strict();

export const fleetSchema = z
  .object({
    apiVersion: z.literal(FLEET_API_VERSION),
    kind: z.literal("Fleet"),
    metadata: z.object({ name: label }).strict(),
    spec: z
      .object({
        layout: z.enum(["monorepo", "repo-per-env", "repo-per-team", "repo-per-app"]).optional(),
        /** This repository, for the agent and the Action. */
        repository: gitRepository.optional(),
        /** In promotion order: an environment may only promote from one listed before it. */
        environments: z.array(environment).min(1, "lists no environment"),
        /** Where runs (CLI, Action, App) report bumps pushed, requests opened and merged, promotions. */
        notifications: notifications.optional(),
        /** `shipmate dashboard`: who may act from the page (read-only for everyone else). */
        dashboard: z
          .object({
            /** Groups (X-Forwarded-Groups, or --token-groups for the bearer token) allowed to promote, reconcile, suspend and resume. */
            actionGroups: z.array(z.string().min(1)).min(1, "names no group"),
          })
          .strict()
          .optional(),
      })
      .strict(),
  })
  .strict()
  .superRefine((fleet, ctx) => {
    const seen = new Map<string, number>();
    fleet.spec.environments.forEach((env, i) => {
      if (seen.has(env.name)) {
        ctx.addIssue({
          code: "custom",
          path: ["spec", "environments", i, "name"],
          message: `environment "${env.name}" is listed twice`,
        });
      }
      if (env.promoteFrom !== undefined && !seen.has(env.promoteFrom)) {
        ctx.addIssue({
          code: "custom",
          path: ["spec", "environments", i, "promoteFrom"],
          message:
            env.promoteFrom === env.name
              ? `environment "${env.name}" cannot promote from itself`
              : `promoteFrom "${env.promoteFrom}" is not an environment listed before "${env.name}"`,
        });
      }
      seen.set(env.name, i);
    });
  });

export type Fleet = z.infer<typeof fleetSchema>;
export type FleetEnvironment = Fleet["spec"]["environments"][number];
export type PromotionGates = z.infer<typeof gates>;
export type PullRequestSettings = z.infer<typeof pullRequest>;
export type NotificationSettings = z.infer<typeof notifications>;
export type NotifyEventName = (typeof NOTIFY_EVENTS)[number];

/** Line of the node at `path`, or of the deepest ancestor that exists. */
function lineOf(root: Node | null, path: PropertyKey[], counter: LineCounter): number | undefined {
  let node: Node | null = root;
  let best = node?.range?.[0];
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === key);
      if (!pair) break;
      node = (pair.value as Node | null) ?? (pair.key as Node);
    } else if (isSeq(node) && typeof key === "number") {
      node = (node.items[key] as Node | undefined) ?? null;
    } else break;
    if (node?.range) best = node.range[0];
  }
  return best === undefined ? undefined : counter.linePos(best).line;
}

/** Parses `shipmate.yaml` text; `file` names it in errors (one ConfigError, first problem, with its line). */
export function parseFleet(text: string, file: string = FLEET_FILE): Fleet {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const line = counter.linePos(yamlError.pos[0]).line;
    throw new ConfigError(`invalid YAML: ${yamlError.message.split("\n")[0]}`, { file, line });
  }
  const converted = documentValue(doc, { file, text, counter });
  if (converted.refusal)
    throw new ConfigError(converted.refusal.message, {
      file,
      ...(converted.refusal.line ? { line: converted.refusal.line } : {}),
    });
  const parsed = fleetSchema.safeParse(converted.value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const where = issue.path.length ? `${issue.path.join(".")}: ` : "";
  throw new ConfigError(`${where}${issue.message}`, {
    file,
    line: lineOf(doc.contents, issue.path, counter),
  });
}

/** The repository has no `shipmate.yaml`: told apart by its class, never by its message. */
export class NoFleetError extends ConfigError {
  override name = "NoFleetError";
  constructor(file: string) {
    super(`no ${FLEET_FILE} (run 'shipmate init' or write one)`, { file });
  }
}

/** An environment shipmate.yaml does not declare was named. */
export class UnknownEnvironmentError extends ConfigError {
  override name = "UnknownEnvironmentError";
  readonly environment: string;
  readonly declared: readonly string[];
  constructor(environment: string, declared: readonly string[]) {
    super(`environment "${environment}" is not declared (environments: ${declared.join(", ")})`, {
      file: FLEET_FILE,
    });
    this.environment = environment;
    this.declared = declared;
  }
}

/** A promotion into an environment that nothing is promoted into (the first one, without `promoteFrom`). */
export class NoPromotionSourceError extends ConfigError {
  override name = "NoPromotionSourceError";
  readonly environment: string;
  constructor(environment: string) {
    super(`${environment} has no environment before it to promote from: name the source`, {
      file: FLEET_FILE,
    });
    this.environment = environment;
  }
}

/** Reads `<repoDir>/shipmate.yaml`; a missing file is a NoFleetError naming it. */
export async function loadFleet(repoDir: string): Promise<Fleet> {
  const loaded = await readFleet(repoDir);
  if (!loaded) throw new NoFleetError(join(repoDir, FLEET_FILE));
  return loaded.fleet;
}

/** `<repoDir>/shipmate.yaml` when there is one; undefined when the repository has none. */
export async function loadFleetIfAny(repoDir: string): Promise<Fleet | undefined> {
  return (await readFleet(repoDir))?.fleet;
}

/** shipmate.yaml's fleet and its text (src/config/context.ts keeps the text for the run); undefined when there is none. */
export async function readFleet(repoDir: string): Promise<{ fleet: Fleet; text: string } | undefined> {
  const file = join(repoDir, FLEET_FILE);
  let text: string;
  try {
    // A link is followed only while it stays in the repository (src/config/tree.ts's rule for every file).
    if ((await lstat(file)).isSymbolicLink() && !inside(await realpath(repoDir), await realpath(file)))
      throw new ConfigError("symlink points outside the repository; not followed", { file });
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  return { fleet: parseFleet(text, file), text };
}

/**
 * The environment whose versions are promoted into `to`: its `promoteFrom`,
 * else the environment listed just before it; undefined for the first one
 * (or an environment the fleet does not list).
 */
export function promotionSource(fleet: Fleet, to: string): FleetEnvironment | undefined {
  const envs = fleet.spec.environments;
  const i = envs.findIndex((e) => e.name === to);
  const target = envs[i];
  if (!target) return undefined;
  if (target.promoteFrom) return envs.find((e) => e.name === target.promoteFrom);
  return i > 0 ? envs[i - 1] : undefined;
}

/** Environments in promotion order with the one each promotes from resolved. */
export function promotionChain(fleet: Fleet): { env: FleetEnvironment; from?: FleetEnvironment }[] {
  const byName = new Map(fleet.spec.environments.map((e) => [e.name, e]));
  return fleet.spec.environments.map((env) => {
    const from = env.promoteFrom ? byName.get(env.promoteFrom) : undefined;
    return from ? { env, from } : { env };
  });
}

/**
 * The environment a file of the repository at `root` belongs to: the one
 * whose policies folder (or path) holds it, the most specific folder winning
 * (`policies/staging` over `policies`). Environments in other repositories
 * never match.
 */
export function environmentOfFile(
  root: string,
  fleet: Fleet | undefined,
  file: string,
): FleetEnvironment | undefined {
  if (!fleet) return undefined;
  const rel = relative(root, file).split(sep).join("/");
  if (rel.startsWith("..")) return undefined;
  return environmentOfPath(fleet, rel, "policies");
}

/**
 * The environment a repository-relative path belongs to, by the folder of
 * `what` (its policies folder, defaulting to its path; or its manifests
 * path), the most specific folder winning. Environments in other
 * repositories never match.
 */
export function environmentOfPath(
  fleet: Fleet,
  rel: string,
  what: "policies" | "manifests",
): FleetEnvironment | undefined {
  const path = rel.replace(/^\.\//, "");
  let best: { env: FleetEnvironment; len: number } | undefined;
  for (const env of fleet.spec.environments) {
    if (env.repository) continue;
    const dir = what === "policies" ? (env.policies ?? env.path) : env.path;
    if (dir === "." || path === dir || path.startsWith(`${dir}/`)) {
      const len = dir === "." ? 0 : dir.length;
      if (!best || len > best.len) best = { env, len };
    }
  }
  return best?.env;
}
