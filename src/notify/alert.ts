/**
 * Flux's Alert semantics (notification.toolkit.fluxcd.io/v1beta3), pure:
 * which events an Alert takes (`eventSources` by kind, name or `*`,
 * namespace defaulting to the Alert's, `matchLabels` with `*`;
 * `eventSeverity`; `inclusionList` / `exclusionList` Go regexes on the
 * message; `suspend`) and what it adds to them (`summary` and
 * `eventMetadata` as metadata, never overriding the emitter's own keys).
 * An Alert field shipmate does not know is refused, never ignored.
 */
import { z } from "zod";
import { refusedFields, unsupportedMessage } from "../agent/fields/support.ts";
import { compileGoRegexp, type GoRegexp, RegexSyntaxError } from "../policy/regex.ts";
import type { NotifyEvent } from "./event.ts";
import { ALERT_FIELDS } from "./fields.ts";

const EventSource = z.strictObject({
  apiVersion: z.string().optional(),
  kind: z.string().min(1),
  name: z.string().min(1).max(253),
  namespace: z.string().min(1).max(253).optional(),
  matchLabels: z.record(z.string(), z.string()).optional(),
});

export const AlertSpec = z.strictObject({
  providerRef: z.strictObject({ name: z.string().min(1) }),
  eventSeverity: z.enum(["info", "error"]).default("info"),
  eventSources: z.array(EventSource),
  inclusionList: z.array(z.string()).optional(),
  exclusionList: z.array(z.string()).optional(),
  eventMetadata: z.record(z.string(), z.string()).optional(),
  summary: z.string().max(255).optional(),
  suspend: z.boolean().optional(),
});
export type AlertSpec = z.infer<typeof AlertSpec>;

export interface AlertRule {
  namespace: string;
  name: string;
  spec: AlertSpec;
  include: GoRegexp[];
  exclude: GoRegexp[];
}

/** Why an Alert cannot be used, in one line (reason as a condition would carry it). */
export interface AlertRefusal {
  reason: "UnsupportedField" | "InvalidSpec";
  message: string;
}

/** An Alert object's spec, checked and compiled once; a refusal names the Alert and the field. */
export function compileAlert(
  namespace: string,
  name: string,
  spec: unknown,
): { rule: AlertRule } | { refusal: AlertRefusal } {
  const where = `Alert ${namespace}/${name}`;
  const refused = refusedFields(spec as Record<string, unknown> | undefined, ALERT_FIELDS);
  if (refused.length)
    return {
      refusal: {
        reason: "UnsupportedField",
        message: `${where}: ${unsupportedMessage("Alert", refused, ALERT_FIELDS)}`,
      },
    };
  const parsed = AlertSpec.safeParse(spec ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.join(".") ?? "";
    if (issue?.code === "unrecognized_keys") {
      const key = issue.keys[0] ?? "";
      return {
        refusal: {
          reason: "UnsupportedField",
          message: `${where}: spec.${path ? `${path}.` : ""}${key} is not supported by shipmate`,
        },
      };
    }
    return { refusal: { reason: "InvalidSpec", message: `${where}: spec.${path}: ${issue?.message}` } };
  }
  const compile = (list: string[] | undefined, field: string) =>
    (list ?? []).map((p, i) => {
      try {
        return compileGoRegexp(p);
      } catch (err) {
        if (err instanceof RegexSyntaxError) throw new Error(`${where}: spec.${field}[${i}]: ${err.message}`);
        throw err;
      }
    });
  try {
    return {
      rule: {
        namespace,
        name,
        spec: parsed.data,
        include: compile(parsed.data.inclusionList, "inclusionList"),
        exclude: compile(parsed.data.exclusionList, "exclusionList"),
      },
    };
  } catch (err) {
    return { refusal: { reason: "InvalidSpec", message: (err as Error).message } };
  }
}

/** Whether a source entry selects the object, labels aside. */
function sourceSelects(rule: AlertRule, src: AlertSpec["eventSources"][number], event: NotifyEvent): boolean {
  const o = event.involvedObject;
  if (src.kind !== o.kind) return false;
  if ((src.namespace ?? rule.namespace) !== o.namespace) return false;
  if (src.apiVersion && o.apiVersion && src.apiVersion.split("/")[0] !== o.apiVersion.split("/")[0])
    return false;
  return src.name === "*" || src.name === o.name;
}

/** Whether deciding needs the involved object's labels (a `*` source with `matchLabels` selects it otherwise). */
export function needsLabels(rule: AlertRule, event: NotifyEvent): boolean {
  return rule.spec.eventSources.some(
    (s) =>
      s.name === "*" && s.matchLabels && Object.keys(s.matchLabels).length && sourceSelects(rule, s, event),
  );
}

/**
 * Whether the Alert takes the event. `labels` are the involved object's
 * (undefined when unknown: a `matchLabels` source then does not match).
 */
export function alertMatches(rule: AlertRule, event: NotifyEvent, labels?: Record<string, string>): boolean {
  if (rule.spec.suspend) return false;
  if (rule.spec.eventSeverity === "error" && event.severity !== "error") return false;
  const selected = rule.spec.eventSources.some((src) => {
    if (!sourceSelects(rule, src, event)) return false;
    const want = src.name === "*" ? Object.entries(src.matchLabels ?? {}) : [];
    return want.every(([k, v]) => labels?.[k] === v);
  });
  if (!selected) return false;
  if (rule.include.length && !rule.include.some((re) => re.test(event.message))) return false;
  if (rule.exclude.some((re) => re.test(event.message))) return false;
  return true;
}

/** The event as the Alert's provider gets it: `summary` and `eventMetadata` added, the emitter's keys kept. */
export function decorate(rule: AlertRule, event: NotifyEvent): NotifyEvent {
  const extra: Record<string, string> = { ...(rule.spec.eventMetadata ?? {}) };
  if (rule.spec.summary) extra.summary = rule.spec.summary;
  if (!Object.keys(extra).length) return event;
  return { ...event, metadata: { ...extra, ...(event.metadata ?? {}) } };
}
