/**
 * Flux's notification-controller inside the agent: the events the agent
 * records about its objects (./events.ts: apply, prune, health, drift
 * reverted, source and release outcomes) go to every matching
 * `notification.toolkit.fluxcd.io/v1beta3` Alert's Provider, with Flux's
 * semantics (src/notify/alert.ts) and pacing (src/notify/notifier.ts).
 *
 * `record` only queues: Alerts, Providers and Secrets are read here, in
 * the background, a few seconds' list shared by every event of a pass, so
 * a reconcile never waits on the API server for notifications, nor on a
 * provider. v1beta3 Alerts and Providers have no status in Flux (their
 * CRDs carry none); an Alert or Provider that cannot be used is said in one
 * Warning Event on it (reason `InvalidAlert` / `InvalidProvider` /
 * `UnsupportedField`), once per generation, and in the log; a delivery
 * given up is one Warning Event on the Alert (`NotificationFailed`). No
 * address or token is ever logged or put in an event.
 */
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { parseGoDuration } from "../config/duration.ts";
import { registerSecret } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import { type AlertRule, alertMatches, compileAlert, decorate, needsLabels } from "../notify/alert.ts";
import { ProviderConfigError } from "../notify/errors.ts";
import { controllerFor, type NotifyEvent } from "../notify/event.ts";
import { NOTIFICATION_GROUP, PROVIDER_FIELDS } from "../notify/fields.ts";
import { Notifier, type NotifierOptions, type NotifyTarget } from "../notify/notifier.ts";
import { createProvider } from "../notify/providers/index.ts";
import type { Involved } from "./events.ts";
import { refusedFields, unsupportedMessage } from "./fields/support.ts";

const VERSION = `${NOTIFICATION_GROUP}/v1beta3`;
const CACHE_MS = 2_000;

const ProviderSpec = z.strictObject({
  type: z.string().min(1),
  address: z.string().max(2048).optional(),
  channel: z.string().max(2048).optional(),
  username: z.string().max(2048).optional(),
  secretRef: z.strictObject({ name: z.string().min(1) }).optional(),
  timeout: z.string().optional(),
  suspend: z.boolean().optional(),
  // Deprecated and unused in v1beta3 (Flux ignores it too).
  interval: z.string().optional(),
});

/** Secret keys Flux reads that shipmate does not honour: refused rather than silently unused. */
const REFUSED_SECRET_KEYS = ["proxy", "username", "password"];

interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
}
interface Listed {
  metadata?: ObjectMeta;
  spec?: unknown;
}

export interface AgentNotificationsOptions {
  client: KubeClient;
  log: { warn(obj: object, msg: string): void; debug(obj: object, msg: string): void };
  /** Records a Warning Event on an Alert or Provider (the agent's EventRecorder). */
  warn: (obj: Involved, reason: string, message: string) => Promise<unknown>;
  notifier?: NotifierOptions;
  instance?: string;
}

interface Snapshot {
  at: number;
  alerts: Listed[];
  providers: Map<string, Listed>;
}

const plural = (kind: string) => (kind.endsWith("y") ? `${kind.slice(0, -1)}ies` : `${kind}s`).toLowerCase();
const b64 = (v: unknown) => (typeof v === "string" ? Buffer.from(v, "base64").toString("utf8") : undefined);

export class AgentNotifications {
  readonly notifier: Notifier;
  private readonly opts: AgentNotificationsOptions;
  private readonly queue: NotifyEvent[] = [];
  private pumping: Promise<void> | undefined;
  private snapshot: Snapshot | undefined;
  /** Compiled Alerts and Providers by uid + resourceVersion (+ the Secret's), so each is checked once. */
  private readonly alerts = new Map<string, ReturnType<typeof compileAlert>>();
  private readonly targets = new Map<string, NotifyTarget | ProviderConfigError>();
  private readonly warned = new Set<string>();
  private unserved = 0;

  constructor(opts: AgentNotificationsOptions) {
    this.opts = opts;
    this.notifier = new Notifier({ log: opts.log, ...(opts.notifier ?? {}) });
  }

  /** Queues an event the agent recorded; returns at once. Events about Alerts and Providers are not notified. */
  record(
    obj: Involved,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
    metadata?: Record<string, string>,
  ): void {
    if (obj.apiVersion.startsWith(`${NOTIFICATION_GROUP}/`)) return;
    if (this.queue.length >= 1000) this.queue.shift();
    this.queue.push({
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: obj.name,
        namespace: obj.namespace,
        ...(obj.uid ? { uid: obj.uid } : {}),
      },
      severity: type === "Warning" ? "error" : "info",
      timestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      message,
      reason,
      ...(metadata && Object.keys(metadata).length ? { metadata } : {}),
      reportingController: controllerFor(obj.kind),
      ...(this.opts.instance ? { reportingInstance: this.opts.instance } : {}),
    });
    this.pumping ??= this.pump().finally(() => {
      this.pumping = undefined;
    });
  }

  /** Waits (at most `ms`) until every queued event is matched and delivered or given up: the end of a `--once` run. */
  async settle(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((r) => (timer = setTimeout(r, ms)));
    while (this.pumping && Date.now() < deadline) await Promise.race([this.pumping, bound]);
    await Promise.race([this.notifier.idle(), bound]);
    clearTimeout(timer);
  }

  close(): void {
    this.queue.length = 0;
    this.notifier.close();
  }

  private async pump(): Promise<void> {
    while (this.queue.length) {
      const event = this.queue.shift() as NotifyEvent;
      try {
        await this.dispatch(event);
      } catch (err) {
        this.opts.log.warn({ reason: event.reason }, `notifications: ${(err as Error).message}`);
      }
    }
  }

  private async load(): Promise<Snapshot> {
    if (this.snapshot && Date.now() - this.snapshot.at < CACHE_MS) return this.snapshot;
    const empty: Snapshot = { at: Date.now(), alerts: [], providers: new Map() };
    // The CRDs are not installed: look again in a minute, not on every event.
    if (this.unserved && Date.now() - this.unserved < 60_000) return empty;
    const alerts = await this.opts.client.raw({ method: "GET", path: `/apis/${VERSION}/alerts` });
    if (alerts.code === 404 || alerts.code === 403) {
      // 403: the agent's role predates notifications (deploy/agent/rbac.yaml grants alerts and providers).
      if (alerts.code === 403 && !this.warned.has("forbidden")) {
        this.warned.add("forbidden");
        this.opts.log.warn(
          {},
          "notifications off: the agent may not list Alerts (grant alerts and providers of notification.toolkit.fluxcd.io)",
        );
      }
      this.unserved = Date.now();
      this.snapshot = empty;
      return empty;
    }
    this.unserved = 0;
    if (alerts.code !== 200) throw new Error(`list Alerts: HTTP ${alerts.code}`);
    const items = ((alerts.body as { items?: Listed[] }).items ?? []) as Listed[];
    const providers = new Map<string, Listed>();
    if (items.length) {
      const res = await this.opts.client.raw({ method: "GET", path: `/apis/${VERSION}/providers` });
      if (res.code !== 200) throw new Error(`list Providers: HTTP ${res.code}`);
      for (const p of ((res.body as { items?: Listed[] }).items ?? []) as Listed[])
        providers.set(`${p.metadata?.namespace}/${p.metadata?.name}`, p);
    }
    this.snapshot = { at: Date.now(), alerts: items, providers };
    return this.snapshot;
  }

  private async dispatch(event: NotifyEvent): Promise<void> {
    const snap = await this.load();
    let labels: Record<string, string> | undefined;
    let labelsRead = false;
    for (const alert of snap.alerts) {
      const rule = await this.rule(alert);
      if (!rule) continue;
      if (needsLabels(rule, event) && !labelsRead) {
        labels = await this.labelsOf(event);
        labelsRead = true;
      }
      if (!alertMatches(rule, event, labels)) continue;
      const provider = snap.providers.get(`${rule.namespace}/${rule.spec.providerRef.name}`);
      if (!provider) {
        await this.warnOnce(
          alertRef(alert),
          `${alert.metadata?.uid}/${alert.metadata?.generation}/missing`,
          "ProviderNotFound",
          `Alert ${rule.namespace}/${rule.name}: Provider ${rule.namespace}/${rule.spec.providerRef.name} not found`,
        );
        continue;
      }
      const target = await this.target(provider);
      // As in Flux, each matching Alert sends (dedupe per Alert and Provider); the pace is per Provider.
      if (target)
        this.notifier.send(decorate(rule, event), [
          {
            ...target,
            id: `${target.id} (Alert ${rule.namespace}/${rule.name})`,
            rateKey: target.id,
            onGiveUp: (message) =>
              void this.opts.warn(
                alertRef(alert),
                "NotificationFailed",
                message.replace(target.id, `${target.id} (Alert ${rule.namespace}/${rule.name})`),
              ),
          },
        ]);
    }
  }

  private async rule(alert: Listed): Promise<AlertRule | undefined> {
    const m = alert.metadata ?? {};
    const key = `${m.uid}/${m.resourceVersion}`;
    let compiled = this.alerts.get(key);
    if (!compiled) {
      compiled = compileAlert(m.namespace ?? "", m.name ?? "", alert.spec);
      this.alerts.set(key, compiled);
    }
    if ("rule" in compiled) return compiled.rule;
    const reason = compiled.refusal.reason === "UnsupportedField" ? "UnsupportedField" : "InvalidAlert";
    await this.warnOnce(alertRef(alert), `${m.uid}/${m.generation}`, reason, compiled.refusal.message);
    return undefined;
  }

  private async target(provider: Listed): Promise<NotifyTarget | undefined> {
    const m = provider.metadata ?? {};
    const label = `Provider ${m.namespace}/${m.name}`;
    const refused = refusedFields(provider.spec as Record<string, unknown> | undefined, PROVIDER_FIELDS);
    const parsed = ProviderSpec.safeParse(provider.spec ?? {});
    let secret: { rv: string; data: Record<string, string> } | undefined | null;
    let result: NotifyTarget | ProviderConfigError;
    if (refused.length) {
      result = new ProviderConfigError(
        `${label}: ${unsupportedMessage("Provider", refused, PROVIDER_FIELDS)}`,
        "UnsupportedField",
      );
    } else if (!parsed.success) {
      const issue = parsed.error.issues[0];
      result = new ProviderConfigError(`${label}: spec.${issue?.path.join(".")}: ${issue?.message}`);
    } else {
      const spec = parsed.data;
      if (spec.suspend) return undefined;
      secret = spec.secretRef ? await this.secret(m.namespace ?? "", spec.secretRef.name) : undefined;
      const cacheKey = `${m.uid}/${m.resourceVersion}/${secret?.rv ?? ""}`;
      const cached = this.targets.get(cacheKey);
      if (cached) result = cached;
      else {
        result = this.build(label, m, spec, secret);
        this.targets.set(cacheKey, result);
      }
    }
    if (result instanceof ProviderConfigError) {
      await this.warnOnce(
        {
          apiVersion: VERSION,
          kind: "Provider",
          name: m.name ?? "",
          namespace: m.namespace ?? "",
          uid: m.uid,
        },
        `${m.uid}/${m.generation}/${secret?.rv ?? ""}`,
        result.reason,
        result.message,
      );
      return undefined;
    }
    return result;
  }

  private build(
    label: string,
    m: ObjectMeta,
    spec: z.infer<typeof ProviderSpec>,
    secret: { rv: string; data: Record<string, string> } | undefined | null,
  ): NotifyTarget | ProviderConfigError {
    try {
      if (secret === null)
        throw new ProviderConfigError(`${label}: Secret ${spec.secretRef?.name} not found`, "SecretNotFound");
      const data = secret?.data ?? {};
      const key = REFUSED_SECRET_KEYS.find((k) => data[k] !== undefined);
      if (key)
        throw new ProviderConfigError(
          `${label}: key "${key}" of Secret ${spec.secretRef?.name} is not supported by shipmate`,
          "UnsupportedField",
        );
      let headers: Record<string, string> | undefined;
      if (data.headers !== undefined) {
        const h = z.record(z.string(), z.string()).safeParse(parseYaml(data.headers));
        if (!h.success)
          throw new ProviderConfigError(
            `${label}: key "headers" of Secret ${spec.secretRef?.name} is not a map of strings`,
          );
        headers = h.data;
        for (const v of Object.values(headers)) registerSecret(v);
      }
      const address = data.address ?? spec.address;
      registerSecret(data.address);
      registerSecret(data.token);
      const timeoutMs = spec.timeout ? parseGoDuration(spec.timeout) : undefined;
      if (spec.timeout && timeoutMs === undefined)
        throw new ProviderConfigError(`${label}: spec.timeout "${spec.timeout}" is not a duration`);
      const provider = createProvider({
        type: spec.type,
        label,
        ...(address ? { address } : {}),
        ...(spec.channel ? { channel: spec.channel } : {}),
        ...(spec.username ? { username: spec.username } : {}),
        ...(data.token ? { token: data.token.trim() } : {}),
        ...(headers ? { headers } : {}),
        ...(m.uid ? { uid: m.uid } : {}),
        ...(timeoutMs ? { timeoutMs } : {}),
      });
      return { id: label, provider, ...(timeoutMs ? { timeoutMs } : {}) };
    } catch (err) {
      if (err instanceof ProviderConfigError) return err;
      throw err;
    }
  }

  /** The Secret's decoded data and resourceVersion; null when it does not exist. */
  private async secret(namespace: string, name: string) {
    const res = await this.opts.client.raw({
      method: "GET",
      path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`,
    });
    if (res.code === 404) return null;
    if (res.code !== 200) throw new Error(`read Secret ${namespace}/${name}: HTTP ${res.code}`);
    const body = res.body as { metadata?: ObjectMeta; data?: Record<string, string> };
    const data: Record<string, string> = {};
    for (const [k, v] of Object.entries(body.data ?? {})) data[k] = b64(v) ?? "";
    return { rv: body.metadata?.resourceVersion ?? "", data };
  }

  private async labelsOf(event: NotifyEvent): Promise<Record<string, string> | undefined> {
    const o = event.involvedObject;
    if (!o.apiVersion) return undefined;
    const res = await this.opts.client.raw({
      method: "GET",
      path: `/apis/${o.apiVersion}/namespaces/${encodeURIComponent(o.namespace)}/${plural(o.kind)}/${encodeURIComponent(o.name)}`,
    });
    return res.code === 200 ? ((res.body as { metadata?: ObjectMeta }).metadata?.labels ?? {}) : undefined;
  }

  private async warnOnce(obj: Involved, key: string, reason: string, message: string): Promise<void> {
    const k = `${obj.kind}/${key}/${reason}`;
    if (this.warned.has(k)) return;
    this.warned.add(k);
    this.opts.log.warn({ [obj.kind.toLowerCase()]: `${obj.namespace}/${obj.name}`, reason }, message);
    await this.opts.warn(obj, reason, message);
  }
}

function alertRef(alert: Listed): Involved {
  const m = alert.metadata ?? {};
  return {
    apiVersion: VERSION,
    kind: "Alert",
    name: m.name ?? "",
    namespace: m.namespace ?? "",
    ...(m.uid ? { uid: m.uid } : {}),
  };
}
