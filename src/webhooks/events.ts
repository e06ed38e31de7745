/**
 * Registry webhook payloads, parsed into the one thing shipmate acts on: an
 * image repository received a tag. Pure: headers and body in, pushes out.
 * Four senders are understood; each schema names the document it follows
 * and keeps only the fields read here (senders add fields freely).
 */
import { z } from "zod";
import { familiarName, normaliseImage, parseReference, repositoryName } from "../registry/index.ts";

export type WebhookSource = "distribution" | "dockerhub" | "ghcr" | "harbor";

/** One tag pushed to one image repository. */
export interface ImagePush {
  /** Normalised repository, as the scanner groups policies: `docker.io/library/nginx`, `127.0.0.1:5000/team/app`. */
  image: string;
  tag?: string;
  digest?: string;
}

export type ParsedWebhook =
  | { ok: true; source: WebhookSource; pushes: ImagePush[]; ignored: number }
  /** Not a delivery shipmate understands, or one that carries nothing to act on (a ping). */
  | { ok: false; reason: "unknown" | "invalid"; message: string };

export interface WebhookRequest {
  /** Lower-case header names. */
  headers: Record<string, string | undefined>;
  body: unknown;
  /**
   * The registry's name as policies write it, when the sender does not say
   * (Docker Hub) or says it differently (a Distribution registry reached
   * through another host name): the `?registry=` parameter of the endpoint URL.
   */
  registry?: string;
}

// CNCF Distribution notifications (docs/notifications.md "Envelope" and "Events"; distribution v2.8).
const DistributionEnvelope = z.object({
  events: z.array(
    z.object({
      action: z.string(),
      target: z.object({
        mediaType: z.string().optional(),
        digest: z.string().optional(),
        repository: z.string(),
        url: z.string().optional(),
        tag: z.string().optional(),
      }),
      request: z.object({ host: z.string().optional() }).optional(),
    }),
  ),
});

// Docker Hub webhooks (docs.docker.com/docker-hub/repos/manage/webhooks, "Example webhook payload").
const DockerHubPayload = z.object({
  push_data: z.object({ tag: z.string().optional() }),
  repository: z.object({ repo_name: z.string() }),
});

// GitHub `registry_package` and `package` events (docs.github.com webhook-events-and-payloads#registry_package).
const GitHubPackagePayload = z.object({
  action: z.string(),
  package: z.unknown().optional(),
  registry_package: z.unknown().optional(),
});
const GitHubPackage = z.object({
  name: z.string(),
  namespace: z.string().optional(),
  package_type: z.string(),
  owner: z.object({ login: z.string() }),
  package_version: z
    .object({
      version: z.string().optional(),
      package_url: z.string().optional(),
      container_metadata: z
        .object({
          tag: z.object({ name: z.string().optional(), digest: z.string().optional() }).optional(),
        })
        .nullish(),
    })
    .nullish(),
  registry: z.object({ url: z.string().optional() }).nullish(),
});

// Harbor webhooks (goharbor.io/docs/2.x configure-webhooks: "Default" and "CloudEvents" payload formats).
const HarborData = z.object({
  resources: z.array(
    z.object({
      digest: z.string().optional(),
      tag: z.string().optional(),
      resource_url: z.string().optional(),
    }),
  ),
  repository: z.object({ repo_full_name: z.string() }),
});
const HarborDefault = z.object({ type: z.string(), event_data: HarborData });
const HarborCloudEvent = z.object({ specversion: z.string(), type: z.string(), data: HarborData });

const DIGEST = /^sha256:[a-f0-9]{64}$/;

export { normaliseImage };

function push(image: string | undefined, tag?: string, digest?: string): ImagePush | undefined {
  if (!image) return undefined;
  return {
    image,
    ...(tag ? { tag } : {}),
    ...(digest && DIGEST.test(digest) ? { digest } : {}),
  };
}

function hostOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    return new URL(url).host || undefined;
  } catch {
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function parseDistribution(req: WebhookRequest): ParsedWebhook {
  const env = DistributionEnvelope.safeParse(req.body);
  if (!env.success) return { ok: false, reason: "invalid", message: "not a Distribution event envelope" };
  const pushes: ImagePush[] = [];
  let ignored = 0;
  for (const e of env.data.events) {
    // A manifest pushed by tag; blob uploads, pulls, mounts, deletes and by-digest pushes move no tag.
    if (e.action !== "push" || !e.target.tag) {
      ignored++;
      continue;
    }
    const host = req.registry ?? e.request?.host ?? hostOf(e.target.url);
    const p = push(
      host ? normaliseImage(`${host}/${e.target.repository}`) : undefined,
      e.target.tag,
      e.target.digest,
    );
    if (p) pushes.push(p);
    else ignored++;
  }
  return { ok: true, source: "distribution", pushes, ignored };
}

function parseDockerHub(req: WebhookRequest): ParsedWebhook {
  const hub = DockerHubPayload.safeParse(req.body);
  if (!hub.success) return { ok: false, reason: "invalid", message: "not a Docker Hub webhook payload" };
  const registry = req.registry ?? "docker.io";
  const p = push(normaliseImage(`${registry}/${hub.data.repository.repo_name}`), hub.data.push_data.tag);
  return p
    ? { ok: true, source: "dockerhub", pushes: [p], ignored: 0 }
    : { ok: false, reason: "invalid", message: `invalid repository "${hub.data.repository.repo_name}"` };
}

function parseGitHubPackage(req: WebhookRequest): ParsedWebhook {
  const event = GitHubPackagePayload.safeParse(req.body);
  if (!event.success) return { ok: false, reason: "invalid", message: "not a GitHub package event" };
  const pkg = GitHubPackage.safeParse(event.data.registry_package ?? event.data.package);
  if (!pkg.success) return { ok: false, reason: "invalid", message: "the package event carries no package" };
  if (
    !["published", "updated"].includes(event.data.action) ||
    pkg.data.package_type.toLowerCase() !== "container"
  )
    return { ok: true, source: "ghcr", pushes: [], ignored: 1 };
  return { ok: true, source: "ghcr", pushes: ghcrPushes(pkg.data, req.registry), ignored: 0 };
}

type GitHubPackageData = z.infer<typeof GitHubPackage>;

function ghcrPushes(pkg: GitHubPackageData, registry?: string): ImagePush[] {
  const version = pkg.package_version;
  const tag = version?.container_metadata?.tag?.name || undefined;
  const digest = version?.container_metadata?.tag?.digest ?? version?.version;
  // package_url is the pullable reference (`ghcr.io/owner/name:tag`); owner/name is the fallback.
  let image: string | undefined;
  const url = version?.package_url;
  if (url && !registry) {
    try {
      const ref = parseReference(url.replace(/^[a-z]+:\/\//, ""));
      image = repositoryName(ref);
    } catch {
      image = undefined;
    }
  }
  const host = registry ?? hostOf(pkg.registry?.url ?? undefined) ?? "ghcr.io";
  image ??= normaliseImage(`${host}/${pkg.namespace || pkg.owner.login}/${pkg.name}`.toLowerCase());
  const p = push(image, tag, digest);
  return p ? [p] : [];
}

function parseHarbor(req: WebhookRequest): ParsedWebhook {
  const body = req.body;
  const def = HarborDefault.safeParse(body);
  const cloud = def.success ? undefined : HarborCloudEvent.safeParse(body);
  const data = def.success ? def.data.event_data : cloud?.success ? cloud.data.data : undefined;
  const type = def.success ? def.data.type : cloud?.success ? cloud.data.type : "";
  if (!data) return { ok: false, reason: "invalid", message: "not a Harbor webhook payload" };
  // PUSH_ARTIFACT (Default) / harbor.artifact.pushed (CloudEvents); scans, pulls and deletes move nothing.
  if (type !== "PUSH_ARTIFACT" && type !== "harbor.artifact.pushed")
    return { ok: true, source: "harbor", pushes: [], ignored: data.resources.length || 1 };
  const pushes: ImagePush[] = [];
  let ignored = 0;
  for (const r of data.resources) {
    const fromUrl = r.resource_url?.split("/")[0];
    const host = req.registry ?? (fromUrl?.includes(".") || fromUrl?.includes(":") ? fromUrl : undefined);
    const p = push(
      host ? normaliseImage(`${host}/${data.repository.repo_full_name}`) : undefined,
      r.tag,
      r.digest,
    );
    if (p) pushes.push(p);
    else ignored++;
  }
  return { ok: true, source: "harbor", pushes, ignored };
}

/**
 * Which sender a delivery comes from, by its headers first (GitHub names its
 * event, Distribution its media type), then by the shape of its body.
 */
export function detectSource(req: WebhookRequest): WebhookSource | undefined {
  const event = req.headers["x-github-event"];
  if (event) return event === "registry_package" || event === "package" ? "ghcr" : undefined;
  const type = req.headers["content-type"] ?? "";
  if (type.includes("application/vnd.docker.distribution.events")) return "distribution";
  const b = req.body;
  if (!isObject(b)) return undefined;
  if (Array.isArray(b.events)) return "distribution";
  if (isObject(b.push_data) && isObject(b.repository)) return "dockerhub";
  if (isObject(b.event_data) || (typeof b.specversion === "string" && isObject(b.data))) return "harbor";
  if (isObject(b.registry_package) || isObject(b.package)) return "ghcr";
  return undefined;
}

export function parseWebhook(req: WebhookRequest, source = detectSource(req)): ParsedWebhook {
  switch (source) {
    case "distribution":
      return parseDistribution(req);
    case "dockerhub":
      return parseDockerHub(req);
    case "ghcr":
      return parseGitHubPackage(req);
    case "harbor":
      return parseHarbor(req);
    default: {
      const event = req.headers["x-github-event"];
      return {
        ok: false,
        reason: "unknown",
        message: event
          ? `GitHub event "${event}" is not a package event`
          : "not a registry webhook shipmate knows",
      };
    }
  }
}

/** The GHCR part of a `registry_package` payload already verified by the App (same rules as above). */
export function pushesFromGitHubPackageEvent(payload: unknown): ImagePush[] {
  const parsed = parseGitHubPackage({ headers: {}, body: payload });
  return parsed.ok ? parsed.pushes : [];
}

/** The short name of a normalised repository, for log lines and comments. */
export function shortImage(image: string): string {
  try {
    return familiarName(parseReference(image));
  } catch {
    return image;
  }
}
