/**
 * What the `github`, `gitlab` and `gitea` providers share: a commit status
 * on the revision the event names, through the forge clients of src/forge,
 * as Flux sets it. The address is the repository's web URL
 * (`https://github.com/org/fleet`), the Secret's `token` the forge token;
 * the state is `success` for an info event and `failure` for an error;
 * `Progressing` events are skipped (they are not an outcome); the context
 * is `<kind>/<name>/<first segment of the Provider's uid>`, lowercased, so
 * two Providers on one repository do not overwrite each other; the
 * description is the reason in words (`reconciliation succeeded`). A status
 * the commit already carries with the same context and state is not set
 * again. The description is cut to 140 characters (GitHub's limit).
 */
import { ForgeError } from "../../errors.ts";
import { createForge } from "../../forge/index.ts";
import type { CommitStatusSpec, Forge, ForgeKind } from "../../forge/types.ts";
import { DeliveryError, ProviderConfigError } from "../errors.ts";
import { commitOf, type NotifyEvent, revisionOf } from "../event.ts";
import { requireHttpUrl, retryableStatus } from "./http.ts";
import type { NotificationProvider, ProviderSettings } from "./types.ts";

const PUBLIC_HOST: Partial<Record<ForgeKind, string>> = { github: "github.com", gitlab: "gitlab.com" };

/** `ReconciliationSucceeded` → `reconciliation succeeded`. */
export function describeReason(reason: string): string {
  return reason
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/([A-Z])([A-Z][a-z])/g, "$1 $2")
    .toLowerCase();
}

export function statusContext(event: NotifyEvent, providerUid?: string): string {
  const o = event.involvedObject;
  const uid = providerUid?.split("-")[0];
  return `${o.kind}/${o.name}${uid ? `/${uid}` : ""}`.toLowerCase();
}

/**
 * The longest description set: GitHub refuses one over 140 characters (422,
 * "description is too long"); GitLab and Gitea document no limit, and the
 * three providers share the rule, so a status is never lost to its length.
 */
export const MAX_DESCRIPTION = 140;

/** The status an event sets, or undefined when it sets none (Progressing). */
export function commitStatusFor(event: NotifyEvent, providerUid?: string): CommitStatusSpec | undefined {
  if (event.reason === "Progressing") return undefined;
  const description = describeReason(event.reason);
  return {
    state: event.severity === "error" ? "failure" : "success",
    context: statusContext(event, providerUid),
    description:
      description.length > MAX_DESCRIPTION ? `${description.slice(0, MAX_DESCRIPTION - 1)}…` : description,
  };
}

export function commitStatusProvider(kind: ForgeKind, s: ProviderSettings): NotificationProvider {
  const url = requireHttpUrl(s.address, s.label);
  const repo = url.pathname
    .replace(/^\/+/, "")
    .replace(/\.git\/?$/, "")
    .replace(/\/+$/, "");
  if (!repo.includes("/"))
    throw new ProviderConfigError(
      `${s.label}: address must be the repository's URL (https://host/owner/name)`,
    );
  if (!s.token) throw new ProviderConfigError(`${s.label}: ${kind} needs a "token" key in the Secret`);
  const base = `${url.protocol}//${url.host}`;
  let forge: Forge | undefined;
  const connect = () => {
    forge ??= createForge({
      kind,
      repo,
      ...(PUBLIC_HOST[kind] === url.host ? {} : { url: base }),
      token: s.token,
      tokenSource: `the Secret of ${s.label}`,
      maxRateLimitWaitMs: 0,
    });
    return forge;
  };
  return {
    type: kind,
    async post(event) {
      const status = commitStatusFor(event, s.uid);
      if (!status) return;
      const revision = revisionOf(event);
      const sha = revision ? commitOf(revision) : undefined;
      if (!sha) throw new DeliveryError(`${s.label}: the event carries no commit revision`, false);
      try {
        await connect().setCommitStatus(sha, status);
      } catch (err) {
        if (err instanceof ForgeError) {
          const retry = err.status === undefined || retryableStatus(err.status);
          throw new DeliveryError(`${s.label}: ${err.message}`, retry);
        }
        throw err;
      }
    },
  };
}
