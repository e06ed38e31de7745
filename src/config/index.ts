/**
 * Policy configuration: Flux ImageRepository/ImagePolicy/ImageUpdateAutomation
 * documents and the native shipmate.dev/v1alpha1 format (docs/policies.md).
 */
export { parseGoDuration } from "./duration.ts";
export { type ConfigProblem, formatProblem, PolicyConfigError } from "./errors.ts";
export {
  findPolicyFiles,
  loadPolicies,
  loadPolicyConfig,
  mayHoldPolicyDocument,
  parsePolicyConfig,
} from "./load.ts";
export { DEFAULT_NAMESPACE, NATIVE_API_VERSION, nativePolicyDocument } from "./schema.ts";
export type * from "./types.ts";
