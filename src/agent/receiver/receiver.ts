/**
 * Flux's Receiver served by the agent (`--receivers`, on with
 * `--image-automation`): each Receiver's token is read from its Secret, its
 * webhook path derived as notification-controller derives it and written to
 * `status.webhookPath`; a genuine request to that path (./rules.ts: verify)
 * annotates the Receiver's resources with `reconcile.fluxcd.io/requestedAt`,
 * so the agent (which watches them) scans, fetches or runs them now. The
 * agent's HTTP server (../server.ts) hands `/hook/…` requests here.
 */

import type { Logger } from "pino";
import { describeError, registerSecret } from "../../errors.ts";
import { apiError, type KubeClient } from "../../kube/client.ts";
import { isFluxKind, objectPath, requestReconcile } from "../../kube/control.ts";
import type { Condition } from "../../kube/schema.ts";
import type { EventRecorder } from "../events.ts";
import { refusedFields, unsupportedMessage } from "../fields/support.ts";
import { writeOutcome } from "../status.ts";
import {
  type HookRequest,
  RECEIVER_API_VERSION,
  RECEIVER_FIELDS,
  RECEIVER_KINDS,
  ReceiverSpec,
  verify,
  webhookPath,
} from "./rules.ts";

/** The agent writes the reconcile requests it makes for a webhook as itself. */
const FIELD_MANAGER = "shipmate-agent";

interface ReceiverObject {
  metadata: { name: string; namespace: string; uid?: string; generation?: number };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown> & { conditions?: Condition[] };
}

interface Served {
  key: string;
  namespace: string;
  name: string;
  uid: string | undefined;
  token: string;
  spec: ReceiverSpec;
}

export interface HookAnswer {
  code: number;
  message: string;
}

export interface ReceiverOptions {
  client: KubeClient;
  events: EventRecorder;
  log: Logger;
  /** Whether a resource in another namespace may be named (Flux's --no-cross-namespace-refs turns it off). */
  crossNamespace?: boolean;
}

export class ReceiverServer {
  private readonly opts: ReceiverOptions;
  private byPath = new Map<string, Served>();
  private lastRefresh = 0;
  private refreshing: Promise<void> | undefined;
  /** Requests answered, by status code (the benchmark's and tests' figure). */
  readonly answered = new Map<number, number>();

  constructor(opts: ReceiverOptions) {
    this.opts = opts;
  }

  /** Reads every Receiver and its token, and writes its status; the paths served change at once. */
  async reconcileAll(): Promise<void> {
    this.refreshing ??= this.refresh().finally(() => {
      this.refreshing = undefined;
    });
    await this.refreshing;
  }

  private async refresh(): Promise<void> {
    this.lastRefresh = Date.now();
    const res = await this.opts.client.raw({
      method: "GET",
      path: `/apis/${RECEIVER_API_VERSION}/receivers`,
    });
    if (res.code === 404) {
      this.byPath = new Map();
      return;
    }
    if (res.code !== 200) throw apiError("list receivers", res.code, res.body);
    const next = new Map<string, Served>();
    for (const r of ((res.body as { items?: ReceiverObject[] }).items ?? []) as ReceiverObject[]) {
      try {
        const served = await this.reconcileOne(r);
        if (served) next.set(webhookPath(served.token, served.name, served.namespace), served);
      } catch (err) {
        this.opts.log.error({ receiver: `${r.metadata.namespace}/${r.metadata.name}` }, describeError(err));
      }
    }
    this.byPath = next;
  }

  private async reconcileOne(r: ReceiverObject): Promise<Served | undefined> {
    const { namespace, name } = r.metadata;
    const refused = refusedFields(r.spec, RECEIVER_FIELDS);
    if (refused.length) {
      await this.writeStatus(r, {
        reason: "UnsupportedField",
        message: unsupportedMessage("Receiver", refused, RECEIVER_FIELDS),
        stalled: true,
      });
      return undefined;
    }
    const parsed = ReceiverSpec.safeParse(r.spec ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      await this.writeStatus(r, {
        reason: "InvalidSpec",
        message: `invalid spec: ${issue?.path.join(".") || "spec"}: ${issue?.message}`,
        stalled: true,
      });
      return undefined;
    }
    const spec = parsed.data;
    const secret = await this.opts.client.raw({
      method: "GET",
      path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(spec.secretRef.name)}`,
    });
    const encoded = (secret.body as { data?: Record<string, string> } | undefined)?.data?.token;
    if (secret.code !== 200 || !encoded) {
      await this.writeStatus(r, {
        reason: "TokenNotFound",
        message: `secret ${namespace}/${spec.secretRef.name}: ${secret.code === 404 ? "not found" : secret.code !== 200 ? `HTTP ${secret.code}` : 'no "token" key'}`,
      });
      return undefined;
    }
    const token = Buffer.from(encoded, "base64").toString("utf8").trim();
    registerSecret(token);
    const path = webhookPath(token, name, namespace);
    if (spec.suspend) return undefined;
    await this.writeStatus(r, { message: `Receiver initialized for path: ${path}` }, { webhookPath: path });
    return { key: `${namespace}/${name}`, namespace, name, uid: r.metadata.uid, token, spec };
  }

  /** Answers a request to `/hook/…`: 404 unknown path, 400 not genuine, 200 with the resources annotated. */
  async handle(path: string, req: HookRequest): Promise<HookAnswer> {
    let served = this.byPath.get(path);
    // A Receiver created since the last pass: read them again, at most once a second.
    if (!served && Date.now() - this.lastRefresh > 1000) {
      await this.reconcileAll().catch(() => undefined);
      served = this.byPath.get(path);
    }
    const answer = (code: number, message: string): HookAnswer => {
      this.answered.set(code, (this.answered.get(code) ?? 0) + 1);
      return { code, message };
    };
    if (!served) return answer(404, "no Receiver for this path");
    const verdict = verify(served.spec.type, served.token, served.spec.events, req);
    if (!verdict.ok) {
      this.opts.log.warn({ receiver: served.key }, verdict.message);
      return answer(400, `Receiver ${served.key}: ${verdict.message}`);
    }
    if (!verdict.notify) return answer(200, verdict.note ?? "ok");
    const now = new Date();
    let notified = 0;
    const failures: string[] = [];
    for (const ref of served.spec.resources) {
      const ns = ref.namespace ?? served.namespace;
      if (ns !== served.namespace && this.opts.crossNamespace === false) {
        failures.push(`${ref.kind} ${ns}/${ref.name}: cross-namespace references are not allowed`);
        continue;
      }
      const kind = ref.kind;
      if (!(kind in RECEIVER_KINDS) || !isFluxKind(kind)) continue;
      let names = [ref.name];
      if (ref.name === "*") {
        const selector = Object.entries(ref.matchLabels ?? {})
          .map(([k, v]) => `${k}=${v}`)
          .join(",");
        const list = await this.opts.client.raw({
          method: "GET",
          path: objectPath(kind, ns),
          ...(selector ? { query: { labelSelector: selector } } : {}),
        });
        if (list.code !== 200) {
          failures.push(`${ref.kind} ${ns}/*: HTTP ${list.code}`);
          continue;
        }
        names = ((list.body as { items?: { metadata: { name: string } }[] }).items ?? []).map(
          (i) => i.metadata.name,
        );
      }
      for (const n of names) {
        try {
          await requestReconcile(this.opts.client, kind, ns, n, now, FIELD_MANAGER);
          notified++;
        } catch (err) {
          failures.push(describeError(err));
        }
      }
    }
    const involved = {
      apiVersion: RECEIVER_API_VERSION,
      kind: "Receiver",
      name: served.name,
      namespace: served.namespace,
      uid: served.uid,
    };
    if (failures.length) {
      const message = `annotating failed: ${failures.join("; ")}`;
      await this.opts.events
        .emit(involved, "Warning", "ReconciliationFailed", message)
        .catch(() => undefined);
      return answer(notified ? 200 : 500, `Receiver ${served.key}: ${message}`);
    }
    this.opts.log.info({ receiver: served.key, resources: notified }, "reconcile requested");
    return answer(200, `requested a reconcile of ${notified} object${notified === 1 ? "" : "s"}`);
  }

  private async writeStatus(
    obj: ReceiverObject,
    outcome: { message: string; reason?: string; stalled?: boolean },
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    const { namespace, name } = obj.metadata;
    const path = `/apis/${RECEIVER_API_VERSION}/namespaces/${encodeURIComponent(namespace)}/receivers/${encodeURIComponent(name)}`;
    await writeOutcome(this.opts.client, path, `Receiver ${namespace}/${name}`, obj, outcome, extra, {
      handlesRequests: true,
    });
  }
}
