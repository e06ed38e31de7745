/**
 * One POST of a JSON payload for the webhook providers. A failure names the
 * provider and the HTTP status, never the address (a Slack or Discord
 * webhook URL is itself the secret) and never a header value.
 */
import { DeliveryError, ProviderConfigError } from "../errors.ts";

/** The address as a URL, or a ProviderConfigError: not a URL, or not http(s). */
export function requireHttpUrl(address: string | undefined, label: string, field = "address"): URL {
  if (!address)
    throw new ProviderConfigError(`${label}: no ${field} (spec.address or the Secret's "address")`);
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw new ProviderConfigError(`${label}: ${field} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new ProviderConfigError(`${label}: ${field} must be an http or https URL, not ${url.protocol}`);
  return url;
}

/** Whether a failed answer may succeed later. */
export function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export async function postJson(
  url: URL | string,
  body: unknown,
  opts: { label: string; headers?: Record<string, string>; signal: AbortSignal; raw?: string },
): Promise<Response> {
  const text = opts.raw ?? JSON.stringify(body);
  // fetch refuses credentials in a URL: `https://user:pass@host/…` becomes basic auth, as Flux does.
  const target = new URL(url);
  const auth: Record<string, string> = {};
  if (target.username || target.password) {
    const pair = `${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`;
    auth.authorization = `Basic ${Buffer.from(pair).toString("base64")}`;
    target.username = "";
    target.password = "";
  }
  let res: Response;
  try {
    res = await fetch(target, {
      method: "POST",
      headers: { "content-type": "application/json", ...auth, ...(opts.headers ?? {}) },
      body: text,
      signal: opts.signal,
      redirect: "error",
    });
  } catch (err) {
    const e = err as Error;
    const why = e.name === "TimeoutError" || e.name === "AbortError" ? "timed out" : "could not connect";
    throw new DeliveryError(`${opts.label}: ${why}`, true);
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new DeliveryError(`${opts.label}: HTTP ${res.status}`, retryableStatus(res.status));
  }
  return res;
}
