/**
 * The one registry of notification providers: a new provider is a file
 * beside these and one line here. A Flux Provider `spec.type` not listed is
 * refused (fail closed), naming the types that are.
 */
import { ProviderConfigError } from "../errors.ts";
import { alertmanager } from "./alertmanager.ts";
import { discord } from "./discord.ts";
import { generic, genericHmac } from "./generic.ts";
import { gitea } from "./gitea.ts";
import { github } from "./github.ts";
import { gitlab } from "./gitlab.ts";
import { msteams } from "./msteams.ts";
import { slack } from "./slack.ts";
import type { NotificationProvider, ProviderFactory, ProviderSettings } from "./types.ts";

export type { NotificationProvider, ProviderFactory, ProviderSettings } from "./types.ts";

export const PROVIDER_TYPES: ReadonlyMap<string, ProviderFactory> = new Map([
  ["slack", slack],
  ["msteams", msteams],
  ["discord", discord],
  ["generic", generic],
  ["generic-hmac", genericHmac],
  ["alertmanager", alertmanager],
  ["github", github],
  ["gitlab", gitlab],
  ["gitea", gitea],
]);

/** The provider for these settings, or a ProviderConfigError in one line. */
export function createProvider(settings: ProviderSettings): NotificationProvider {
  const factory = PROVIDER_TYPES.get(settings.type);
  if (!factory)
    throw new ProviderConfigError(
      `${settings.label}: type "${settings.type}" is not supported by shipmate (supported: ${[...PROVIDER_TYPES.keys()].join(", ")})`,
      "UnsupportedField",
    );
  return factory(settings);
}
