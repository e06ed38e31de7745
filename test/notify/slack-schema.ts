/**
 * Slack's incoming-webhook payload as Slack documents it (api.slack.com:
 * "Sending messages using incoming webhooks", "Reference: secondary message
 * attachments", "Reference: block elements"), written as a zod schema here:
 * no JSON schema of it is published on npm (@slack/types has TypeScript
 * types only). Strict where Slack lists the fields, so a misspelt field
 * fails the test instead of being silently dropped by Slack.
 */
import { z } from "zod";

// Legacy attachment fields: {title, value, short}.
const AttachmentField = z.strictObject({
  title: z.string(),
  value: z.string(),
  short: z.boolean().optional(),
});

// Secondary message attachment (the fields Slack still renders).
const Attachment = z.strictObject({
  fallback: z.string().optional(),
  color: z.union([z.enum(["good", "warning", "danger"]), z.string().regex(/^#[0-9a-fA-F]{6}$/)]).optional(),
  pretext: z.string().optional(),
  author_name: z.string().optional(),
  author_link: z.url().optional(),
  author_icon: z.url().optional(),
  title: z.string().optional(),
  title_link: z.url().optional(),
  text: z.string().optional(),
  fields: z.array(AttachmentField).optional(),
  image_url: z.url().optional(),
  thumb_url: z.url().optional(),
  footer: z.string().optional(),
  footer_icon: z.url().optional(),
  ts: z.union([z.number(), z.string()]).optional(),
  mrkdwn_in: z.array(z.enum(["pretext", "text", "fields"])).optional(),
  blocks: z.array(z.looseObject({ type: z.string() })).optional(),
});

// Block Kit blocks: every block has a `type`; section/context/header text objects are {type, text}.
const TextObject = z.strictObject({
  type: z.enum(["plain_text", "mrkdwn"]),
  text: z.string().max(3000),
  emoji: z.boolean().optional(),
  verbatim: z.boolean().optional(),
});
const Block = z.union([
  z.strictObject({
    type: z.literal("section"),
    text: TextObject.optional(),
    fields: z.array(TextObject).max(10).optional(),
    block_id: z.string().optional(),
  }),
  z.strictObject({ type: z.literal("header"), text: TextObject, block_id: z.string().optional() }),
  z.strictObject({ type: z.literal("divider"), block_id: z.string().optional() }),
  z.strictObject({
    type: z.literal("context"),
    elements: z.array(TextObject).max(10),
    block_id: z.string().optional(),
  }),
]);

export const SlackIncomingWebhook = z
  .strictObject({
    text: z.string().optional(),
    blocks: z.array(Block).max(50).optional(),
    attachments: z.array(Attachment).optional(),
    thread_ts: z.string().optional(),
    mrkdwn: z.boolean().optional(),
    // Accepted by legacy webhooks and chat.postMessage (Flux sends them).
    channel: z.string().optional(),
    username: z.string().optional(),
    icon_url: z.url().optional(),
    icon_emoji: z.string().optional(),
  })
  .refine((p) => p.text !== undefined || p.blocks?.length || p.attachments?.length, {
    message: "a message needs text, blocks or attachments",
  });
