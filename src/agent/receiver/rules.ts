/**
 * Flux's Receiver (notification.toolkit.fluxcd.io/v1) as pure rules: its
 * field table, spec, webhook path (`/hook/` + sha256 of token + name +
 * namespace, as notification-controller derives it), how a request is
 * authenticated per `spec.type`, and where each kind a Receiver may name
 * lives in the API. Tested with tables (test/agent/receiver-rules.test.ts).
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { FLUX_KINDS } from "../../kube/control.ts";
import { NOTIFICATION_GROUP } from "../../notify/fields.ts";
import type { FieldTable } from "../fields/support.ts";

export const RECEIVER_API_VERSION = `${NOTIFICATION_GROUP}/v1`;

/** The receiver types implemented; the others of Flux's enum are refused by name. */
export const RECEIVER_TYPES = ["generic", "generic-hmac", "github", "gitlab", "harbor", "dockerhub"] as const;
export type ReceiverType = (typeof RECEIVER_TYPES)[number];

/** Receiver spec fields (notification-controller v1 CRD), honoured or refused. */
export const RECEIVER_FIELDS: FieldTable = {
  type: {
    refused:
      "only the generic, generic-hmac, github, gitlab, harbor and dockerhub receiver types are implemented",
    accepts: RECEIVER_TYPES,
  },
  interval: "honoured",
  events: "honoured",
  secretRef: "honoured",
  "secretRef.name": "honoured",
  suspend: "honoured",
  resources: "honoured",
  "resources.apiVersion": "honoured",
  "resources.kind": "honoured",
  "resources.name": "honoured",
  "resources.namespace": "honoured",
  "resources.matchLabels": "honoured",
  "resources.filter": { refused: "CEL resource filters are not implemented" },
  resourceFilter: { refused: "CEL resource filters are not implemented" },
  oidcProviders: { refused: "generic-oidc receivers are not implemented" },
  "oidcProviders.audience": { refused: "generic-oidc receivers are not implemented" },
  "oidcProviders.issuerURL": { refused: "generic-oidc receivers are not implemented" },
  "oidcProviders.validations": { refused: "generic-oidc receivers are not implemented" },
  "oidcProviders.validations.expression": { refused: "generic-oidc receivers are not implemented" },
  "oidcProviders.validations.message": { refused: "generic-oidc receivers are not implemented" },
  "oidcProviders.variables": { refused: "generic-oidc receivers are not implemented" },
  "oidcProviders.variables.expression": { refused: "generic-oidc receivers are not implemented" },
  "oidcProviders.variables.name": { refused: "generic-oidc receivers are not implemented" },
};

/** Where each kind a Receiver may name is served: every Flux kind the agent answers but Receiver itself. */
export const RECEIVER_KINDS: Record<string, { apiVersion: string; plural: string }> = Object.fromEntries(
  Object.entries(FLUX_KINDS).filter(([kind]) => kind !== "Receiver"),
);

export const ReceiverSpec = z.looseObject({
  type: z.enum(RECEIVER_TYPES),
  interval: z.string().optional(),
  events: z.array(z.string()).optional(),
  secretRef: z.object({ name: z.string().min(1) }),
  suspend: z.boolean().optional(),
  resources: z
    .array(
      z.object({
        apiVersion: z.string().optional(),
        kind: z.string().refine((k) => k in RECEIVER_KINDS, "a kind a Receiver can notify"),
        name: z.string().min(1),
        namespace: z.string().optional(),
        matchLabels: z.record(z.string(), z.string()).optional(),
      }),
    )
    .min(1),
});
export type ReceiverSpec = z.infer<typeof ReceiverSpec>;

/** `/hook/<sha256(token + name + namespace)>`, hex. */
export function webhookPath(token: string, name: string, namespace: string): string {
  return `/hook/${createHash("sha256").update(`${token}${name}${namespace}`).digest("hex")}`;
}

export interface HookRequest {
  /** Lower-case header names. */
  headers: Record<string, string | undefined>;
  body: Buffer;
}

/** What a request means: accepted (annotate the resources), a no-op answer (GitHub's ping), or refused. */
export type Verdict = { ok: true; notify: boolean; note?: string } | { ok: false; message: string };

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** `sha256=<hex>` (or sha1/sha512) is the HMAC of `body` under `token`. */
function hmacMatches(header: string | undefined, token: string, body: Buffer): boolean {
  const m = /^(sha1|sha256|sha512)=([0-9a-fA-F]+)$/.exec(header?.trim() ?? "");
  if (!m?.[1] || !m[2]) return false;
  return equal(createHmac(m[1], token).update(body).digest("hex"), m[2].toLowerCase());
}

function eventAllowed(event: string | undefined, events: readonly string[] | undefined): boolean {
  if (!events?.length) return true;
  return event !== undefined && events.some((e) => e.toLowerCase() === event.toLowerCase());
}

/**
 * Whether a request to a Receiver's path is genuine, per its type, as
 * notification-controller checks it: generic (the secret path alone),
 * generic-hmac (`X-Signature: sha256=<hmac of the body>`), github
 * (`X-Hub-Signature-256`, the event in `events`; `ping` answered without
 * notifying), gitlab (`X-Gitlab-Token` equal to the token, the event in
 * `events`), harbor (`Authorization` equal to the token), dockerhub (a
 * push payload naming a repository).
 */
export function verify(
  type: ReceiverType,
  token: string,
  events: string[] | undefined,
  req: HookRequest,
): Verdict {
  const h = req.headers;
  switch (type) {
    case "generic":
      return { ok: true, notify: true };
    case "generic-hmac":
      return hmacMatches(h["x-signature"], token, req.body)
        ? { ok: true, notify: true }
        : {
            ok: false,
            message: "the X-Signature header is missing or is not the HMAC of the body under the token",
          };
    case "github": {
      const signature = h["x-hub-signature-256"] ?? h["x-hub-signature"];
      if (!hmacMatches(signature, token, req.body))
        return {
          ok: false,
          message: "the X-Hub-Signature-256 header is missing or is not the HMAC of the body under the token",
        };
      const event = h["x-github-event"];
      if (event === "ping") return { ok: true, notify: false, note: "pong" };
      if (!eventAllowed(event, events))
        return { ok: false, message: `GitHub event "${event ?? ""}" is not in the Receiver's events` };
      return { ok: true, notify: true };
    }
    case "gitlab": {
      if (!equal(h["x-gitlab-token"] ?? "", token))
        return { ok: false, message: "the X-Gitlab-Token header does not match the Receiver's token" };
      const event = h["x-gitlab-event"];
      if (!eventAllowed(event, events))
        return { ok: false, message: `GitLab event "${event ?? ""}" is not in the Receiver's events` };
      return { ok: true, notify: true };
    }
    case "harbor":
      return equal(h.authorization ?? "", token)
        ? { ok: true, notify: true }
        : { ok: false, message: "the Authorization header does not match the Receiver's token" };
    case "dockerhub": {
      let payload: unknown;
      try {
        payload = JSON.parse(req.body.toString("utf8"));
      } catch {
        return { ok: false, message: "the body is not a Docker Hub webhook payload (not JSON)" };
      }
      const repo = (payload as { repository?: { repo_name?: unknown } } | null)?.repository?.repo_name;
      return typeof repo === "string" && repo
        ? { ok: true, notify: true }
        : { ok: false, message: "the body is not a Docker Hub webhook payload (no repository.repo_name)" };
    }
  }
}
