/**
 * `discord`: Discord's Slack-compatible webhook endpoint, as Flux uses it:
 * the webhook URL with `/slack` appended, and the Slack payload.
 */
import { postJson, requireHttpUrl } from "./http.ts";
import { slackPayload } from "./slack.ts";
import type { ProviderFactory } from "./types.ts";

export const discord: ProviderFactory = (s) => {
  const url = requireHttpUrl(s.address, s.label);
  if (!url.pathname.endsWith("/slack")) url.pathname = `${url.pathname.replace(/\/+$/, "")}/slack`;
  return {
    type: "discord",
    async post(event, signal) {
      const res = await postJson(url, slackPayload(event, s), {
        label: s.label,
        headers: s.headers ?? {},
        signal,
      });
      await res.body?.cancel().catch(() => undefined);
    },
  };
};
