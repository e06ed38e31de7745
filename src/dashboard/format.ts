/**
 * How the dashboard writes versions, shared by the server's read model and
 * the browser bundle (no imports: the bundle stays free of Node modules).
 */

/** `tag@sha256:abcdef…` shortened for a cell: the tag and 12 hex digits of the digest. */
export function shortVersion(v: { tag?: string; digest?: string }): string {
  const d = v.digest ? `@${v.digest.replace(/^sha256:/, "").slice(0, 12)}` : "";
  return `${v.tag ?? ""}${d}` || "?";
}

/** Whether two versions of one image differ: by digest when both have one, else by tag. */
export function differs(a: { tag?: string; digest?: string }, b: { tag?: string; digest?: string }): boolean {
  if (a.digest && b.digest) return a.digest !== b.digest;
  return (a.tag ?? "") !== (b.tag ?? "");
}

/** A Flux revision with its hash cut to 12 characters (`main@sha1:74448f8faa74`), as a table shows it. */
export function shortRevision(revision: string): string {
  return revision.replace(/\b(sha1|sha256):([0-9a-f]{12})[0-9a-f]+/, "$1:$2");
}

/**
 * Whether a matrix row passes the filter: `q` a case-insensitive part of the
 * app's name, `team` the team that owns it ("" any team).
 */
export function matchesFilter(row: { app: string; team?: string }, q: string, team: string): boolean {
  if (team && row.team !== team) return false;
  return !q || row.app.toLowerCase().includes(q.toLowerCase());
}

/** An object as the page names it in links (`?object=`): `Kind/namespace/name`. */
export const objectKey = (r: { kind: string; namespace: string; name: string }): string =>
  `${r.kind}/${r.namespace}/${r.name}`;

/** How many events the cluster page lists (of all objects, or of the one it is asked about). */
export const EVENTS_SHOWN = 50;
