/**
 * Comment commands (`/shipmate rescan`, `/shipmate promote <env>`): parsing
 * and the replies a person reads. Pure.
 */

export type AppCommand =
  | { kind: "rescan" }
  | { kind: "promote"; to: string }
  /** `/shipmate` with nothing, `help`, or something unknown: answered with the usage. */
  | { kind: "help"; problem?: string };

const ENV_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export const USAGE = [
  "shipmate understands:",
  "",
  "- `/shipmate rescan`: scan the registries for every policy of this repository now, and deliver what changed",
  "- `/shipmate promote <environment>`: promote into that environment what the one before it runs (its gates still apply)",
].join("\n");

/** The command in a comment: the first line that starts with `/shipmate`; undefined when there is none. */
export function parseCommand(body: string): AppCommand | undefined {
  const line = body
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => /^\/shipmate(\s|$)/.test(l));
  if (line === undefined) return undefined;
  const [, verb, ...args] = line.split(/\s+/);
  if (!verb || verb === "help") return { kind: "help" };
  if (verb === "rescan") {
    return args.length ? { kind: "help", problem: "`rescan` takes no arguments" } : { kind: "rescan" };
  }
  if (verb === "promote") {
    const [to, ...rest] = args;
    if (!to) return { kind: "help", problem: "`promote` needs the environment to promote into" };
    if (rest.length || !ENV_NAME.test(to))
      return { kind: "help", problem: `\`${[to, ...rest].join(" ")}\` is not an environment name` };
    return { kind: "promote", to };
  }
  return { kind: "help", problem: `unknown command \`${verb.slice(0, 40)}\`` };
}

/** Permission levels that may run commands (`permission` of the collaborator permission API). */
export function mayCommand(permission: string): boolean {
  return permission === "admin" || permission === "write" || permission === "maintain";
}

export function refusal(user: string, permission: string): string {
  return `@${user} shipmate only takes commands from people with write access to this repository (you have ${permission === "none" ? "no" : permission} access), so nothing was done.`;
}

export const NOT_CONFIGURED =
  "shipmate found nothing to do here: this repository has no image policies and no `shipmate.yaml`. " +
  "Add Flux `ImagePolicy` documents or a `shipmate.yaml` (see `shipmate init`) and ask again.";
