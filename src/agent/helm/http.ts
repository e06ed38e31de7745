/**
 * Bounded HTTP GETs for chart repositories: basic auth in a header (never
 * in a URL that could reach a message), a timeout, and a byte limit enforced
 * while streaming so a 100 MB `index.yaml` is refused without being held.
 */
import { redact, registerSecret } from "../../errors.ts";

export interface BasicAuth {
  username: string;
  password: string;
}

export class HttpFetchError extends Error {
  override name = "HttpFetchError";
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
}

/** Basic-auth credentials from a Flux Secret's `username`/`password` (base64, as the API returns them). */
export function basicAuthFrom(data: Record<string, string>, secret: string): BasicAuth {
  const decode = (k: string) =>
    data[k] === undefined ? undefined : Buffer.from(data[k], "base64").toString();
  const username = decode("username");
  const password = decode("password");
  if (username === undefined || password === undefined) {
    const has = Object.keys(data).sort().join(", ") || "no keys";
    throw new Error(`secret ${secret} has ${has}; basic auth needs "username" and "password"`);
  }
  registerSecret(password);
  return { username, password };
}

/** `scheme://host/path` without userinfo or query, for messages. */
export function displayUrl(url: URL | string): string {
  try {
    const u = new URL(url.toString());
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return redact(String(url));
  }
}

export async function getBounded(
  url: URL,
  opts: { auth?: BasicAuth; timeoutMs: number; maxBytes: number; what: string },
): Promise<Buffer> {
  const headers: Record<string, string> = { "user-agent": "shipmate-agent" };
  const target = new URL(url);
  let auth = opts.auth;
  if (target.username || target.password) {
    // Credentials in the URL itself (Helm accepts them): move them to the header.
    auth ??= { username: decodeURIComponent(target.username), password: decodeURIComponent(target.password) };
    registerSecret(auth.password);
    target.username = "";
    target.password = "";
  }
  if (auth)
    headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}`;
  const where = displayUrl(target);
  let res: Response;
  try {
    res = await fetch(target, { headers, signal: AbortSignal.timeout(opts.timeoutMs), redirect: "follow" });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why =
      e.name === "TimeoutError"
        ? `timed out after ${opts.timeoutMs} ms`
        : (e.cause?.code ?? e.cause?.message ?? e.message);
    throw new HttpFetchError(redact(`${opts.what} ${where}: ${why}`));
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    const hint =
      res.status === 401 || res.status === 403
        ? auth
          ? " (credentials refused)"
          : " (credentials needed)"
        : "";
    throw new HttpFetchError(
      `${opts.what} ${where}: HTTP ${res.status} ${res.statusText}${hint}`,
      res.status,
    );
  }
  const declared = Number(res.headers.get("content-length") ?? "NaN");
  if (declared > opts.maxBytes) {
    await res.body?.cancel();
    throw new HttpFetchError(
      `${opts.what} ${where}: ${declared} bytes is over the ${opts.maxBytes}-byte limit`,
    );
  }
  const chunks: Buffer[] = [];
  let total = 0;
  if (res.body) {
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > opts.maxBytes) {
        await reader.cancel();
        throw new HttpFetchError(`${opts.what} ${where}: more than the ${opts.maxBytes}-byte limit`);
      }
      chunks.push(Buffer.from(value));
    }
  }
  return Buffer.concat(chunks);
}
