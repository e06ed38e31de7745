import { ConfigError } from "../errors.ts";

/**
 * A selection policy that cannot be applied as written: an invalid regex, semver
 * range, order or extract template. `field` is the path inside the
 * SelectionPolicy (e.g. `["filter", "pattern"]`) so the config layer can map it
 * to the document's field and line; on its own it is still a ConfigError (exit 2).
 */
export class PolicySpecError extends ConfigError {
  override name = "PolicySpecError";
  readonly field: readonly (string | number)[];
  /** The problem without the field prefix, for callers that format their own location. */
  readonly detail: string;
  constructor(field: readonly (string | number)[], detail: string) {
    super(`${field.join(".")}: ${detail}`);
    this.field = field;
    this.detail = detail;
  }
}
