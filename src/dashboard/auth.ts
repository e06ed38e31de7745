/**
 * Who is asking, and whether they may act. Pure over request headers and the
 * configuration:
 * - a bearer token (from a Secret file or an environment variable) guards
 *   everything when set: `Authorization: Bearer …`, or the session cookie
 *   the login form sets (an HMAC of the token, never the token itself);
 * - with `--trust-proxy-headers`, an authenticating proxy names the user and
 *   groups (`X-Forwarded-User`, `X-Forwarded-Groups`); a request without a
 *   user then did not come through the proxy and is refused;
 * - otherwise the page is read-only for anyone who can reach it.
 * Acting needs a user in one of shipmate.yaml's `dashboard.actionGroups` and
 * the CSRF token the page carries (an HMAC of the user under a per-process key).
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export interface AuthConfig {
  token?: string;
  /** Groups of the bearer token's holder (when no proxy names them). */
  tokenGroups: string[];
  trustProxyHeaders: boolean;
  /** Per-process key of CSRF tokens and session cookies. */
  key: Buffer;
}

export interface Identity {
  user: string;
  groups: string[];
}

export type AuthResult = { ok: true; identity?: Identity } | { ok: false; status: 401; message: string };

export const SESSION_COOKIE = "shipmate_dashboard";

type Headers = Record<string, string | string[] | undefined>;

const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const mac = (key: Buffer, what: string) => createHmac("sha256", key).update(what).digest("base64url");

export function sessionValue(cfg: AuthConfig): string {
  return mac(cfg.key, `session\u0000${cfg.token ?? ""}`);
}

export function cookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

export function authenticate(headers: Headers, cfg: AuthConfig): AuthResult {
  if (cfg.token) {
    const auth = one(headers.authorization) ?? "";
    const bearer = /^Bearer\s+(.+)$/i.exec(auth)?.[1]?.trim();
    const session = cookies(one(headers.cookie)).get(SESSION_COOKIE);
    const ok =
      (bearer !== undefined && same(bearer, cfg.token)) ||
      (session !== undefined && same(session, sessionValue(cfg)));
    if (!ok) return { ok: false, status: 401, message: "a bearer token is required" };
  }
  if (cfg.trustProxyHeaders) {
    const user = one(headers["x-forwarded-user"])?.trim();
    if (!user)
      return {
        ok: false,
        status: 401,
        message: "no X-Forwarded-User: requests must come through the authenticating proxy",
      };
    const groups = (one(headers["x-forwarded-groups"]) ?? "")
      .split(",")
      .map((g) => g.trim())
      .filter(Boolean);
    return { ok: true, identity: { user, groups } };
  }
  if (cfg.token) return { ok: true, identity: { user: "token", groups: cfg.tokenGroups } };
  return { ok: true };
}

export function mayAct(identity: Identity | undefined, actionGroups: readonly string[] | undefined): boolean {
  return !!identity && !!actionGroups?.length && identity.groups.some((g) => actionGroups.includes(g));
}

export function csrfToken(cfg: AuthConfig, identity: Identity): string {
  return mac(cfg.key, `csrf\u0000${identity.user}`);
}

export function csrfValid(cfg: AuthConfig, identity: Identity, token: string | undefined): boolean {
  return token !== undefined && same(token, csrfToken(cfg, identity));
}

/**
 * The verdict on an action: 401 without an identity, 403 without an action
 * group or with a bad CSRF token or a foreign Origin; undefined: allowed.
 */
export function refuseAction(
  auth: AuthResult,
  cfg: AuthConfig,
  actionGroups: readonly string[] | undefined,
  csrf: string | undefined,
  origin: { header?: string; host?: string },
): { status: 401 | 403; message: string } | undefined {
  if (!auth.ok) return { status: 401, message: auth.message };
  if (!auth.identity)
    return { status: 401, message: "actions need a signed-in user (bearer token or authenticating proxy)" };
  if (!actionGroups?.length)
    return {
      status: 403,
      message: "the dashboard is read-only: shipmate.yaml names no dashboard.actionGroups",
    };
  if (!mayAct(auth.identity, actionGroups))
    return {
      status: 403,
      message: `${auth.identity.user} is in none of the groups allowed to act (${actionGroups.join(", ")})`,
    };
  if (origin.header && origin.host) {
    let host: string | undefined;
    try {
      host = new URL(origin.header).host;
    } catch {
      host = undefined;
    }
    if (host !== origin.host) return { status: 403, message: "cross-origin request refused" };
  }
  if (!csrfValid(cfg, auth.identity, csrf)) return { status: 403, message: "missing or wrong CSRF token" };
  return undefined;
}
