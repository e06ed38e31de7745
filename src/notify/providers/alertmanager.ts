/**
 * `alertmanager`: one alert posted to Alertmanager's v2 API
 * (`/api/v2/alerts`, the address), as Flux builds it: labels `alertname`
 * (`Flux<Kind><Reason>`), `severity`, `reason`, `timestamp` and the object's
 * `kind`, `name`, `namespace`, plus the event metadata (except `summary`,
 * which goes to the annotations with the `message`); `startsAt` is the
 * event's time and an info event ends at once (it is news, not a firing
 * condition). `token` from the Secret is sent as a bearer token.
 */
import type { NotifyEvent } from "../event.ts";
import { postJson, requireHttpUrl } from "./http.ts";
import type { ProviderFactory } from "./types.ts";

export function alertmanagerPayload(event: NotifyEvent) {
  const { summary, ...rest } = event.metadata ?? {};
  const o = event.involvedObject;
  const title = (s: string) => (s ? s[0]!.toUpperCase() + s.slice(1) : s);
  const labels: Record<string, string> = {
    ...rest,
    alertname: `Flux${o.kind}${title(event.reason)}`,
    severity: event.severity,
    reason: event.reason,
    timestamp: event.timestamp,
    kind: o.kind,
    name: o.name,
    namespace: o.namespace,
  };
  const annotations: Record<string, string> = { message: event.message, ...(summary ? { summary } : {}) };
  const startsAt = event.timestamp;
  return [
    {
      labels,
      annotations,
      startsAt,
      ...(event.severity === "info" ? { endsAt: new Date(Date.parse(startsAt) + 1000).toISOString() } : {}),
    },
  ];
}

export const alertmanager: ProviderFactory = (s) => {
  const url = requireHttpUrl(s.address, s.label);
  const headers: Record<string, string> = { ...(s.headers ?? {}) };
  if (s.token) headers.authorization = `Bearer ${s.token}`;
  return {
    type: "alertmanager",
    async post(event, signal) {
      const res = await postJson(url, alertmanagerPayload(event), { label: s.label, headers, signal });
      await res.body?.cancel().catch(() => undefined);
    },
  };
};
