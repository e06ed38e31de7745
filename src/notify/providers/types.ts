/**
 * The one small interface every notification provider implements, and the
 * settings it is made from (a Flux Provider's spec merged with its Secret,
 * or a `notifications:` entry of shipmate.yaml). A provider's factory checks
 * the settings once and throws ProviderConfigError in one line; `post` sends
 * one event and throws DeliveryError.
 */
import type { NotifyEvent } from "../event.ts";

export interface ProviderSettings {
  type: string;
  /** For messages: `Provider flux-system/slack`, `shipmate.yaml notifications.team-chat`. */
  label: string;
  address?: string;
  channel?: string;
  username?: string;
  token?: string;
  headers?: Record<string, string>;
  /** The Provider's uid (its first segment makes commit status contexts unique per Provider, as in Flux). */
  uid?: string;
  /** Timeout of one delivery, ms (`spec.timeout`, default 15 s). */
  timeoutMs?: number;
}

export interface NotificationProvider {
  readonly type: string;
  post(event: NotifyEvent, signal: AbortSignal): Promise<void>;
}

export type ProviderFactory = (settings: ProviderSettings) => NotificationProvider;
