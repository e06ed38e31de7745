/**
 * The registry client's public surface (what src/scan and the front ends use).
 * See docs/registry.md.
 */

export { defaultCacheDir } from "./cache.ts";
export {
  type BuildTime,
  type DigestOptions,
  RegistryClient,
  type RegistryClientOptions,
  type ResolvedDigest,
  type TagList,
  type TagListSummary,
} from "./client.ts";
export {
  type Credential,
  type CredentialProvider,
  chainCredentials,
  type DefaultCredentialOptions,
  defaultCredentials,
  dockerConfigFileCredentials,
  dockerConfigPath,
  envCredentials,
  envKey,
  loadPullSecret,
} from "./credentials.ts";
export { countRequests, type RequestStats, type RetryOptions } from "./http.ts";
export { DEFAULT_PLATFORM, parsePlatform } from "./platform.ts";
export {
  apiHost,
  familiarName,
  formatReference,
  type ImageReference,
  isValidTag,
  normaliseImage,
  parseReference,
  repositoryName,
} from "./reference.ts";
