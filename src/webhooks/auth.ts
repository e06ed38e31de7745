/**
 * Who may trigger a scan: a delivery must prove it knows the shared secret,
 * in whichever way its sender can.
 * - HMAC-SHA256 of the raw body, `X-Hub-Signature-256: sha256=<hex>` (GitHub,
 *   GHCR; any sender that can sign);
 * - the secret itself as a bearer token, `Authorization: Bearer <secret>`
 *   (Distribution's endpoint `headers`, Harbor's "auth header"), or as the
 *   whole Authorization value;
 * - `?token=<secret>` in the URL, for senders that can set neither (Docker
 *   Hub). The URL then holds the secret: it is redacted from every log line.
 * Comparisons are constant-time. Without a secret, deliveries are refused
 * unless the operator explicitly allowed unauthenticated ones.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export interface WebhookAuth {
  /** The shared secret (HMAC key and bearer token). */
  secret?: string;
  /** Accept deliveries that prove nothing (only behind a trusted network boundary). */
  allowUnauthenticated?: boolean;
}

export type AuthVerdict =
  | { ok: true; method: "hmac" | "bearer" | "query" | "none" }
  | { ok: false; message: string };

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function hmacSignature(secret: string, body: Buffer | string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

export function authenticate(
  auth: WebhookAuth,
  headers: Record<string, string | undefined>,
  query: URLSearchParams,
  rawBody: Buffer,
): AuthVerdict {
  const secret = auth.secret;
  if (!secret) {
    return auth.allowUnauthenticated
      ? { ok: true, method: "none" }
      : {
          ok: false,
          message: "no webhook secret is configured, and unauthenticated deliveries are not allowed",
        };
  }
  const signature = headers["x-hub-signature-256"];
  if (signature !== undefined)
    return same(signature, hmacSignature(secret, rawBody))
      ? { ok: true, method: "hmac" }
      : { ok: false, message: "the X-Hub-Signature-256 signature does not match the body" };
  const authorization = headers.authorization;
  if (authorization !== undefined) {
    const token = /^Bearer\s+(.+)$/i.exec(authorization)?.[1]?.trim() ?? authorization.trim();
    return same(token, secret)
      ? { ok: true, method: "bearer" }
      : { ok: false, message: "the Authorization header does not carry the webhook secret" };
  }
  const token = query.get("token");
  if (token !== null)
    return same(token, secret)
      ? { ok: true, method: "query" }
      : { ok: false, message: "the token parameter is not the webhook secret" };
  return { ok: false, message: "the delivery is neither signed nor carries the webhook secret" };
}
