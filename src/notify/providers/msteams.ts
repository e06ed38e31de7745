/**
 * `msteams`: a Teams (Power Automate "Workflows") webhook receiving an
 * Adaptive Card as a message attachment, as Flux sends it: the object in
 * bold (red when the event is an error), the message, and the metadata as a
 * FactSet. An address on `webhook.office.com` is a retired Office 365
 * connector, which took the older MessageCard: Flux still sends that there,
 * and so does shipmate.
 */
import { metadataPairs, type NotifyEvent, objectTitle } from "../event.ts";
import { postJson, requireHttpUrl } from "./http.ts";
import type { ProviderFactory } from "./types.ts";

export function adaptiveCardPayload(event: NotifyEvent) {
  const facts = metadataPairs(event).map(([title, value]) => ({ title, value }));
  return {
    type: "message",
    attachments: [
      {
        contentType: "application/vnd.microsoft.card.adaptive",
        content: {
          $schema: "http://adaptivecards.io/schemas/adaptive-card.json",
          type: "AdaptiveCard",
          version: "1.4",
          body: [
            {
              type: "TextBlock",
              text: objectTitle(event),
              size: "Medium",
              weight: "Bolder",
              wrap: true,
              ...(event.severity === "error" ? { color: "Attention" } : {}),
            },
            { type: "TextBlock", text: event.message, wrap: true },
            ...(facts.length ? [{ type: "FactSet", facts }] : []),
          ],
        },
      },
    ],
  };
}

export function messageCardPayload(event: NotifyEvent) {
  return {
    "@type": "MessageCard",
    "@context": "https://schema.org/extensions",
    themeColor: event.severity === "error" ? "FF0000" : "0076D7",
    summary: objectTitle(event),
    sections: [
      {
        activityTitle: objectTitle(event),
        activitySubtitle: event.message,
        facts: metadataPairs(event).map(([name, value]) => ({ name, value })),
      },
    ],
  };
}

export const msteams: ProviderFactory = (s) => {
  const url = requireHttpUrl(s.address, s.label);
  const legacy = url.hostname.endsWith("webhook.office.com");
  return {
    type: "msteams",
    async post(event, signal) {
      const body = legacy ? messageCardPayload(event) : adaptiveCardPayload(event);
      const res = await postJson(url, body, { label: s.label, headers: s.headers ?? {}, signal });
      await res.body?.cancel().catch(() => undefined);
    },
  };
};
