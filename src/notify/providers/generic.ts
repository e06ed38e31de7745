/**
 * `generic` and `generic-hmac`: the event itself as JSON, as Flux posts it,
 * with a `gotk-component` header naming the reporting controller and the
 * Secret's `headers`. `generic-hmac` also signs the exact body with the
 * Secret's `token`: `X-Signature: sha256=<hex HMAC-SHA256>`, the header
 * Flux documents for receivers to verify.
 */
import { createHmac } from "node:crypto";
import { ProviderConfigError } from "../errors.ts";
import type { NotifyEvent } from "../event.ts";
import { postJson, requireHttpUrl } from "./http.ts";
import type { ProviderFactory, ProviderSettings } from "./types.ts";

/** The body a generic receiver gets: Flux's event fields, in Flux's order. */
export function genericBody(event: NotifyEvent): string {
  return JSON.stringify({
    involvedObject: event.involvedObject,
    severity: event.severity,
    timestamp: event.timestamp,
    message: event.message,
    reason: event.reason,
    ...(event.metadata && Object.keys(event.metadata).length ? { metadata: event.metadata } : {}),
    reportingController: event.reportingController,
    ...(event.reportingInstance ? { reportingInstance: event.reportingInstance } : {}),
  });
}

export function signature(body: string, key: string): string {
  return `sha256=${createHmac("sha256", key).update(body).digest("hex")}`;
}

function make(type: "generic" | "generic-hmac", s: ProviderSettings) {
  const url = requireHttpUrl(s.address, s.label);
  if (type === "generic-hmac" && !s.token)
    throw new ProviderConfigError(
      `${s.label}: generic-hmac needs a "token" key in the Secret (the HMAC key)`,
    );
  return {
    type,
    async post(event: NotifyEvent, signal: AbortSignal) {
      const raw = genericBody(event);
      const headers: Record<string, string> = {
        ...(s.headers ?? {}),
        "gotk-component": event.reportingController,
      };
      if (type === "generic-hmac" && s.token) headers["x-signature"] = signature(raw, s.token);
      const res = await postJson(url, undefined, { label: s.label, headers, signal, raw });
      await res.body?.cancel().catch(() => undefined);
    },
  };
}

export const generic: ProviderFactory = (s) => make("generic", s);
export const genericHmac: ProviderFactory = (s) => make("generic-hmac", s);
