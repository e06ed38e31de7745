/**
 * Notifications of runs, the same for the CLI, the Action, the App and
 * `serve`: `runUpdate` and `runPromotion` call `notifyRun` once with what
 * they did, and the `notifications:` block of shipmate.yaml says where it
 * goes (a team without a cluster still hears of a bump). Events, in Flux's
 * event shape, about the Fleet: `bump-pushed` (a commit of image updates
 * pushed), `request-opened` (an update or promotion request opened),
 * `request-merged` (merged at once by auto-merge), `promoted` (a promotion
 * pushed). Addresses and tokens come from environment variables or files,
 * are registered as secrets (never printed) and a provider that fails is
 * one warning line: the run's outcome stands. The wait for deliveries is
 * bounded.
 */
import { readFile } from "node:fs/promises";
import type { Fleet, NotificationSettings, NotifyEventName } from "../config/fleet.ts";
import { registerSecret } from "../errors.ts";
import type { PromoteResult } from "../promote/index.ts";
import type { UpdateRunResult } from "../run/update.ts";
import { ProviderConfigError } from "./errors.ts";
import type { NotifyEvent } from "./event.ts";
import { Notifier, type NotifyTarget } from "./notifier.ts";
import { createProvider } from "./providers/index.ts";

export interface RunEvent {
  name: NotifyEventName;
  event: NotifyEvent;
}

export interface RunNotifications {
  /** Deliveries that went through. */
  sent: number;
  /** One line per provider that could not be used or a delivery given up. */
  warnings: string[];
}

const short = (sha: string) => sha.slice(0, 7);

function fleetEvent(fleet: Fleet, reason: string, message: string, revision?: string): NotifyEvent {
  return {
    involvedObject: {
      apiVersion: "shipmate.dev/v1alpha1",
      kind: "Fleet",
      name: fleet.metadata.name,
      namespace: "shipmate",
    },
    severity: "info",
    timestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    message,
    reason,
    ...(revision ? { metadata: { revision } } : {}),
    reportingController: "shipmate",
  };
}

/** What an update run did, as events (pure). */
export function updateEvents(
  fleet: Fleet,
  result: Pick<UpdateRunResult, "push" | "request">,
  rows: readonly { policy: string; file: string; old: string; new: string; mode: string }[],
): RunEvent[] {
  const out: RunEvent[] = [];
  const lines = (mode: string) =>
    rows
      .filter((r) => r.mode === mode)
      .map((r) => `- ${r.policy}: ${r.old} → ${r.new} (${r.file})`)
      .join("\n");
  const push = result.push;
  if (push?.pushed && push.commit) {
    const branch = push.branch ?? "";
    out.push({
      name: "bump-pushed",
      event: fleetEvent(
        fleet,
        "BumpPushed",
        `Pushed ${short(push.commit)}${branch ? ` to ${branch}` : ""}\n${lines("push")}`.trim(),
        `${branch ? `${branch}@` : ""}sha1:${push.commit}`,
      ),
    });
  }
  const req = result.request?.request;
  if (req && "pullRequest" in req) {
    const pr = req.pullRequest;
    const text = `#${pr.number} ${pr.title}\n${pr.url}\n${lines("pull-request")}`.trim();
    if (req.action === "opened")
      out.push({ name: "request-opened", event: fleetEvent(fleet, "RequestOpened", `Opened ${text}`) });
    if (req.autoMerge === "merged")
      out.push({ name: "request-merged", event: fleetEvent(fleet, "RequestMerged", `Merged ${text}`) });
  }
  return out;
}

/** What a promotion did, as events (pure). */
export function promoteEvents(fleet: Fleet, result: PromoteResult): RunEvent[] {
  const changes = result.changes
    .map((c) => `- ${c.app ? `${c.app}: ` : ""}${c.image} ${c.from} → ${c.to}`)
    .join("\n");
  const head = `${result.from} → ${result.to}`;
  if (result.status === "pushed" && result.commit)
    return [
      {
        name: "promoted",
        event: fleetEvent(
          fleet,
          "Promoted",
          `Promoted ${head} (${short(result.commit)})\n${changes}`,
          `sha1:${result.commit}`,
        ),
      },
    ];
  return result.requests.flatMap((r): RunEvent[] => {
    const text = `promotion ${head}: #${r.number}${r.url ? ` ${r.url}` : ""}\n${changes}`.trim();
    return [
      ...(r.outcome === "opened"
        ? [{ name: "request-opened" as const, event: fleetEvent(fleet, "RequestOpened", `Opened ${text}`) }]
        : []),
      ...(r.merged
        ? [{ name: "request-merged" as const, event: fleetEvent(fleet, "RequestMerged", `Merged ${text}`) }]
        : []),
    ];
  });
}

async function readSecret(
  source: { env: string } | { file: string },
  env: NodeJS.ProcessEnv,
  where: string,
): Promise<string> {
  let value: string | undefined;
  if ("env" in source) {
    value = env[source.env];
    if (!value) throw new ProviderConfigError(`${where}: $${source.env} is not set`);
  } else {
    value = await readFile(source.file, "utf8").catch(() => undefined);
    if (value === undefined) throw new ProviderConfigError(`${where}: cannot read ${source.file}`);
  }
  value = value.trim();
  registerSecret(value);
  return value;
}

/**
 * Sends the run's events to the providers that want them; waits at most
 * `waitMs` for the deliveries. Undefined when shipmate.yaml has no
 * `notifications:` or the run did nothing worth telling.
 */
export async function notifyRun(
  settings: NotificationSettings | undefined,
  events: readonly RunEvent[],
  opts: {
    env: NodeJS.ProcessEnv;
    waitMs?: number;
    retry?: { attempts: number; baseMs: number; maxMs: number };
  },
): Promise<RunNotifications | undefined> {
  if (!settings || events.length === 0) return undefined;
  const warnings: string[] = [];
  const notifier = new Notifier({
    log: { warn: () => undefined },
    retry: opts.retry ?? { attempts: 3, baseMs: 1000, maxMs: 4000 },
  });
  for (const p of settings.providers) {
    const wanted = events.filter((e) => !p.events || p.events.includes(e.name));
    if (!wanted.length) continue;
    const label = `shipmate.yaml notifications ${p.name}`;
    let target: NotifyTarget;
    try {
      const address =
        p.address === undefined
          ? undefined
          : typeof p.address === "string"
            ? p.address
            : await readSecret(p.address, opts.env, `${label}: address`);
      const token = p.token ? await readSecret(p.token, opts.env, `${label}: token`) : undefined;
      target = {
        id: label,
        provider: createProvider({
          type: p.type,
          label,
          ...(address ? { address } : {}),
          ...(token ? { token } : {}),
          ...(p.channel ? { channel: p.channel } : {}),
          ...(p.username ? { username: p.username } : {}),
        }),
        onGiveUp: (line) => void warnings.push(line),
      };
    } catch (err) {
      if (!(err instanceof ProviderConfigError)) throw err;
      warnings.push(err.message);
      continue;
    }
    for (const e of wanted) notifier.send(e.event, [target]);
  }
  await notifier.drain(opts.waitMs ?? 15_000);
  if (notifier.stats.dropped) warnings.push(`notifications: ${notifier.stats.dropped} not delivered in time`);
  return { sent: notifier.stats.sent, warnings };
}
