/**
 * Tag selection (pure, no I/O): Flux ImagePolicy semantics plus newestBuild and digest.
 *
 *   const compiled = compileSelectionPolicy(policy.selection); // once, at config load
 *   const selector = createSelector(compiled);
 *   for await (const page of client.listTags(repo)) selector.add(page);
 *   const selection = compiled.needsBuildTimes
 *     ? selectLatest(await enrich(selector.candidates()), compiled, Date.now())
 *     : selector.result();
 */
export { type CompiledSelectionPolicy, compileSelectionPolicy, DEFAULT_EXCLUSION_LIST } from "./compile.ts";
export { PolicySpecError } from "./errors.ts";
export { parseGoFloat } from "./numeric.ts";
export { compileGoRegexp, type GoRegexp, parseExpandTemplate } from "./regex.ts";
export {
  createSelector,
  formatDuration,
  type SelectorStats,
  selectLatest,
  type TagSelector,
} from "./select.ts";
export {
  compareVersions,
  parseLooseVersion,
  parseSemverRange,
  parseTagVersion,
  type SemVersion,
  type SemverConstraint,
} from "./semver.ts";
export type * from "./types.ts";
