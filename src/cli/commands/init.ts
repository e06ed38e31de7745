import { join, resolve } from "node:path";
import { UsageError } from "../../errors.ts";
import { LAYOUTS } from "../../scaffold/model.ts";
import { displayPath, init } from "../../scaffold/scaffold.ts";
import { parseFlags } from "../args.ts";
import type { Command } from "../command.ts";
import { type CliIO, writeLine } from "../io.ts";

export const command: Command = {
  summary: "Scaffold a fleet repository (or repositories) in one of four layouts",
  usage: `shipmate init --layout ${LAYOUTS.join("|")} --out DIR [--env NAME]… [--app NAME[@TEAM]]… [--team NAME]…
       [--git-url URL] [--branch main] [--name NAME] [--registry ghcr.io/ORG] [--app-source kustomize|helm|manifests]
       [--sops-age-recipient AGE1…] [--canary [--canary-provider kubernetes|nginx|istio|linkerd|gateway-api]]
       [--dry-run] [--force] [--no-git] [--json]

  --env         environments in promotion order (default: staging, production)
  --app         apps, optionally owned by a team (default: one example app, hello)
  --team        teams: a namespace and RBAC each; in repo-per-team, a repository each
  --git-url     URL of the (main) repository; other repositories are its siblings
  --app-source  repo-per-app: deploy/ overlays (kustomize), a chart/ (helm) or deploy/manifests (manifests)
  --sops-age-recipient
                an age public key: a .sops.yaml in each repository, and the cluster Kustomizations
                decrypt SOPS-encrypted Secrets with the sops-age Secret
  --canary      every app rolls out in the last environment as a Flagger Canary; Flagger is
                installed in that environment's infrastructure (see docs/progressive-delivery.md)
  --canary-provider
                Flagger's router: kubernetes (blue/green, the default), nginx, istio, linkerd, gateway-api
  --force       write into a non-empty --out, replacing the files shipmate writes
  --no-git      do not git init the new repositories`,
  async run(argv: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseFlags("init", argv, {
      layout: { type: "string" },
      out: { type: "string" },
      env: { type: "string", multiple: true },
      app: { type: "string", multiple: true },
      team: { type: "string", multiple: true },
      "git-url": { type: "string" },
      branch: { type: "string" },
      name: { type: "string" },
      registry: { type: "string" },
      "app-source": { type: "string" },
      "sops-age-recipient": { type: "string" },
      canary: { type: "boolean" },
      "canary-provider": { type: "string" },
      "dry-run": { type: "boolean" },
      force: { type: "boolean" },
      "no-git": { type: "boolean" },
      json: { type: "boolean" },
    });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    if (!values.layout) throw new UsageError(`--layout is required (${LAYOUTS.join(", ")})`);
    if (!values.out) throw new UsageError("--out is required");
    const result = await init({
      layout: values.layout,
      out: resolve(io.cwd, values.out),
      ...(values.env ? { envs: values.env } : {}),
      ...(values.app ? { apps: values.app } : {}),
      ...(values.team ? { teams: values.team } : {}),
      ...(values["git-url"] ? { gitUrl: values["git-url"] } : {}),
      ...(values.branch ? { branch: values.branch } : {}),
      ...(values.name ? { name: values.name } : {}),
      ...(values.registry ? { registry: values.registry } : {}),
      ...(values["app-source"] ? { appSource: values["app-source"] } : {}),
      ...(values["sops-age-recipient"] ? { sopsAgeRecipient: values["sops-age-recipient"] } : {}),
      ...(values.canary ? { canary: true } : {}),
      ...(values["canary-provider"] ? { canaryProvider: values["canary-provider"] } : {}),
      dryRun: values["dry-run"] ?? false,
      force: values.force ?? false,
      noGit: values["no-git"] ?? false,
      env: io.env,
    });
    if (values.json) {
      writeLine(
        io.stdout,
        JSON.stringify({
          layout: result.spec.layout,
          out: result.out,
          dryRun: values["dry-run"] ?? false,
          repositories: result.repos,
          files: result.files.map((f) => join(f.repo, f.path)),
          replaced: result.replaced,
        }),
      );
      return 0;
    }
    const shown = displayPath(io.cwd, result.out);
    if (values["dry-run"]) {
      for (const f of result.files) writeLine(io.stdout, join(shown, f.repo, f.path));
      writeLine(
        io.stderr,
        `dry run: ${result.files.length} files in ${result.repos.length} repositories, nothing written`,
      );
      return 0;
    }
    for (const r of result.replaced) writeLine(io.stderr, `replaced ${join(shown, r)}`);
    for (const r of result.repos)
      writeLine(
        io.stdout,
        `${join(shown, r.dir)}: ${r.files} files${r.committed ? ", git repository with a first commit" : ""}`,
      );
    writeLine(
      io.stdout,
      `scaffolded a ${result.spec.layout} fleet (${result.spec.envs.join(" → ")}); check it with: shipmate validate ${shown}`,
    );
    return 0;
  },
};
