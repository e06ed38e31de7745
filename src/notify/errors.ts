/**
 * The two ways a notification fails: the provider's configuration cannot be
 * used (never retried; one line naming the Provider and the field), or one
 * delivery failed (retried when the failure may pass: no answer, 5xx, 429).
 * Neither message ever carries an address or a token.
 */

export class ProviderConfigError extends Error {
  override name = "ProviderConfigError";
  readonly reason: "InvalidProvider" | "UnsupportedField" | "SecretNotFound";
  constructor(message: string, reason: ProviderConfigError["reason"] = "InvalidProvider") {
    super(message);
    this.reason = reason;
  }
}

export class DeliveryError extends Error {
  override name = "DeliveryError";
  readonly retryable: boolean;
  constructor(message: string, retryable: boolean) {
    super(message);
    this.retryable = retryable;
  }
}
