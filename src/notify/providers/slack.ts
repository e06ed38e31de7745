/**
 * `slack`: an incoming webhook (the address is the webhook URL), or the
 * Web API's chat.postMessage with a bot token from the Secret. The payload
 * is Flux's: a legacy attachment coloured by severity (`good` / `danger`),
 * the object as `author_name` (`kustomization/podinfo.apps`), the message
 * as mrkdwn text and each metadata entry (revision, summary…) as a field;
 * `username` defaults to the reporting controller. Discord's
 * Slack-compatible endpoint takes the same payload (./discord.ts).
 */
import { DeliveryError } from "../errors.ts";
import { metadataPairs, type NotifyEvent, objectTitle } from "../event.ts";
import { postJson, requireHttpUrl } from "./http.ts";
import type { NotificationProvider, ProviderFactory, ProviderSettings } from "./types.ts";

export const FLUX_ICON = "https://raw.githubusercontent.com/fluxcd/flux2/main/docs/_files/flux-icon@2x.png";

export interface SlackPayload {
  channel?: string;
  username: string;
  icon_url: string;
  attachments: {
    color: "good" | "danger";
    author_name: string;
    text: string;
    mrkdwn_in: ["text"];
    fields: { title: string; value: string; short: boolean }[];
  }[];
}

export function slackPayload(
  event: NotifyEvent,
  settings: Pick<ProviderSettings, "channel" | "username">,
): SlackPayload {
  return {
    ...(settings.channel ? { channel: settings.channel } : {}),
    username: settings.username || event.reportingController,
    icon_url: FLUX_ICON,
    attachments: [
      {
        color: event.severity === "error" ? "danger" : "good",
        author_name: objectTitle(event),
        text: event.message,
        mrkdwn_in: ["text"],
        fields: metadataPairs(event).map(([title, value]) => ({ title, value, short: false })),
      },
    ],
  };
}

export const slack: ProviderFactory = (s): NotificationProvider => {
  const url = requireHttpUrl(s.address, s.label);
  const headers: Record<string, string> = { ...(s.headers ?? {}) };
  if (s.token) headers.authorization = `Bearer ${s.token}`;
  return {
    type: "slack",
    async post(event, signal) {
      const res = await postJson(url, slackPayload(event, s), { label: s.label, headers, signal });
      // chat.postMessage answers 200 with {"ok": false, "error": …} when it refuses.
      const text = await res.text();
      if (text.startsWith("{")) {
        let answer: { ok?: boolean; error?: unknown } | undefined;
        try {
          answer = JSON.parse(text);
        } catch {
          answer = undefined;
        }
        if (answer?.ok === false)
          throw new DeliveryError(
            `${s.label}: Slack refused the message: ${String(answer.error).slice(0, 80)}`,
            false,
          );
      }
    },
  };
};
