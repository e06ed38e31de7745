import type { Policy } from "../config/types.ts";
import type { NoSelectionReason } from "../policy/types.ts";

/** What a scan decided for one policy. */
export type PolicyResult =
  | {
      policy: Policy;
      ok: true;
      /** Full image reference without tag/digest, e.g. `127.0.0.1:5000/team/app`. */
      image: string;
      tag: string;
      /** `sha256:…`, present when the policy reflects digests or the caller asked for them. */
      digest?: string;
    }
  | {
      policy: Policy;
      ok: false;
      reason: NoSelectionReason | "registry-error";
      /** One line for a person; never contains a credential. */
      message: string;
    };

export interface ScanReport {
  results: PolicyResult[];
  /**
   * Registry HTTP requests made by this scan, in total, per registry host, and
   * per image repository (`host/path`: what deciding the policies on it cost;
   * policies on one repository share its listing, so they share this figure).
   */
  requests: { total: number; byRegistry: Record<string, number>; byRepository: Record<string, number> };
}
