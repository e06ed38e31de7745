import { bootstrap } from "../../bootstrap/bootstrap.ts";
import { bootstrapFromFlux } from "../../bootstrap/fromflux-run.ts";
import { registerSecret, UsageError } from "../../errors.ts";
import { parseForgeKind, TOKEN_ENV } from "../../forge/index.ts";
import { parseIdentity } from "../../git/workspace.ts";
import { durationMs, parseFlags } from "../args.ts";
import type { Command } from "../command.ts";
import { type CliIO, writeLine } from "../io.ts";

const USAGE = `shipmate bootstrap --forge gitea|github|gitlab [--forge-url URL] --owner OWNER --repository NAME
       --path clusters/<env> [--branch main] [--personal] [--private | --public] [--token-env VAR]
       [--kubeconfig FILE] [--author "Name <email>"] [--timeout 5m] [--no-wait] [--json]
shipmate bootstrap --from-flux --forge KIND [--forge-url URL] --owner OWNER --repository NAME
       [--path clusters/<env>] [--dry-run] [--branch main] [--token-env VAR] [--kubeconfig FILE] …

  --forge KIND         gitea (or forgejo), github or gitlab
  --forge-url URL      the forge's web URL (required for Gitea; GitHub Enterprise, self-managed GitLab)
  --owner OWNER        user, organisation or (GitLab) group path owning the repository
  --repository NAME    the fleet repository; created when it does not exist
  --path DIR           the cluster folder, clusters/<env>
  --branch B           branch the agent follows (default: main)
  --personal           OWNER is the token's own user (else an organisation or group)
  --private, --public  visibility of a repository bootstrap creates (default: private)
  --token-env VAR      the forge token's variable (default: SHIPMATE_FORGE_TOKEN, then the forge's usual ones);
                       the token needs repository write access; it is stored in the Secret
                       shipmate-system/shipmate-git for the agent, never in git
  --kubeconfig FILE    the cluster (default: $KUBECONFIG, ~/.kube/config)
  --author "N <e>"     author of the bootstrap commit (default: shipmate)
  --timeout D          how long to wait for the agent to apply the pushed revision (default: 5m)
  --no-wait            install and return without waiting for the agent
  --from-flux          move a repository and cluster flux bootstrap made to the agent: Flux's
                       controllers leave git, its CRDs and every Flux object stay (inventories
                       kept, nothing re-created); --path is found when omitted (docs/moving-from-flux.md)
  --dry-run            with --from-flux: print the plan (git and cluster) and change nothing

exit: 0 done, 1 the forge, git or the cluster failed (or the wait timed out), 2 usage error`;

/** Flux users write `--private=false`; Node's parser wants bare boolean flags. */
function fluxBooleans(argv: string[]): string[] {
  return argv.flatMap((a) => {
    const m = /^--(private|personal)=(true|false)$/.exec(a);
    if (!m) return [a];
    if (m[1] === "private") return [m[2] === "true" ? "--private" : "--public"];
    return m[2] === "true" ? ["--personal"] : [];
  });
}

export const command: Command = {
  summary:
    "Create or reuse the fleet repository on a forge, push the cluster folder, install the agent, wait for it to sync itself.",
  usage: USAGE,
  async run(argv: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseFlags("bootstrap", fluxBooleans(argv), {
      forge: { type: "string" },
      "forge-url": { type: "string" },
      owner: { type: "string" },
      repository: { type: "string" },
      path: { type: "string" },
      branch: { type: "string" },
      personal: { type: "boolean" },
      private: { type: "boolean" },
      public: { type: "boolean" },
      "token-env": { type: "string" },
      kubeconfig: { type: "string" },
      author: { type: "string" },
      timeout: { type: "string" },
      "no-wait": { type: "boolean" },
      json: { type: "boolean" },
      "from-flux": { type: "boolean" },
      "dry-run": { type: "boolean" },
    });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const fromFlux = values["from-flux"] === true;
    if (values["dry-run"] && !fromFlux) throw new UsageError("--dry-run works with --from-flux only");
    for (const f of ["forge", "owner", "repository", ...(fromFlux ? [] : ["path"])] as const)
      if (!values[f as "forge"]) throw new UsageError(`--${f} is required (see 'shipmate bootstrap --help')`);
    if (fromFlux)
      for (const f of ["personal", "private", "public"] as const)
        if (values[f])
          throw new UsageError(`--${f} does not apply to --from-flux (the repository exists already)`);
    if (values.private && values.public) throw new UsageError("--private and --public exclude each other");
    const kind = parseForgeKind(values.forge as string);
    const names = values["token-env"] ? [values["token-env"]] : TOKEN_ENV[kind];
    const tokenVar = names.find((n) => io.env[n]);
    if (!tokenVar) throw new UsageError(`no ${kind} token: set ${names.map((n) => `$${n}`).join(" or ")}`);
    const token = io.env[tokenVar] ?? "";
    registerSecret(token);
    const timeoutMs = durationMs(values.timeout, "--timeout", 300_000);
    const author = values.author
      ? parseIdentity(values.author, "--author")
      : { name: "shipmate", email: "shipmate@users.noreply.invalid" };
    const json = values.json === true;
    const progress = (line: string) => writeLine(json ? io.stderr : io.stdout, line);
    if (fromFlux) {
      const moved = await bootstrapFromFlux({
        forge: kind,
        ...(values["forge-url"] ? { forgeUrl: values["forge-url"] } : {}),
        owner: values.owner as string,
        repository: values.repository as string,
        branch: values.branch ?? "main",
        ...(values.path ? { path: values.path } : {}),
        token,
        tokenSource: `$${tokenVar}`,
        ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
        author,
        timeoutMs,
        wait: values["no-wait"] !== true,
        env: io.env,
        dryRun: values["dry-run"] === true,
        progress,
      });
      if (json)
        writeLine(
          io.stdout,
          JSON.stringify(
            {
              ...moved,
              applied: moved.applied.map((c) => ({ ...c.ref, action: c.action })),
              ready: moved.ready ?? null,
            },
            null,
            2,
          ),
        );
      return 0;
    }
    const result = await bootstrap({
      forge: kind,
      ...(values["forge-url"] ? { forgeUrl: values["forge-url"] } : {}),
      owner: values.owner as string,
      repository: values.repository as string,
      branch: values.branch ?? "main",
      path: values.path as string,
      personal: values.personal === true,
      private: values.public !== true,
      token,
      tokenSource: `$${tokenVar}`,
      ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
      author,
      timeoutMs,
      wait: values["no-wait"] !== true,
      env: io.env,
      progress,
    });
    if (json)
      writeLine(
        io.stdout,
        JSON.stringify(
          {
            repository: result.repository,
            cloneUrl: result.cloneUrl,
            created: result.created,
            commit: result.commit,
            revision: result.revision,
            pushed: result.pushed,
            changed: result.changed,
            applied: result.applied.map((c) => ({ ...c.ref, action: c.action })),
            ready: result.ready ?? null,
          },
          null,
          2,
        ),
      );
    return 0;
  },
};
