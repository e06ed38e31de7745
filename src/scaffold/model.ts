/**
 * What a scaffolded fleet is made of, before any file exists: the user's
 * choices checked and normalised (`FleetSpec`, also what `.shipmate/scaffold.json`
 * remembers so `add` can re-render), and the values templates see
 * (`FleetModel`). Pure: no I/O.
 */
import { DNS1123_LABEL } from "../config/fleet.ts";
import { UsageError } from "../errors.ts";

export const LAYOUTS = ["monorepo", "repo-per-env", "repo-per-team", "repo-per-app"] as const;
export type Layout = (typeof LAYOUTS)[number];
export const APP_SOURCES = ["kustomize", "helm", "manifests"] as const;
export type AppSource = (typeof APP_SOURCES)[number];

export const DEFAULT_ENVS = ["staging", "production"];
export const DEFAULT_APP = "hello";
/** repo-per-team needs at least one team repository; this one is used when none is given. */
export const DEFAULT_TEAM = "team-a";
export const DEFAULT_REGISTRY = "ghcr.io/example";
export const DEFAULT_GIT_URL = "https://github.com/example/fleet.git";
export const AGENT_NAMESPACE = "shipmate-system";
export const AGENT_IMAGE = "ghcr.io/shipmate-dev/shipmate";
export const FIRST_TAG = "1.0.0";
/** Flagger's traffic routers the scaffold knows (Flagger's `meshProvider`/`spec.provider`). */
export const CANARY_PROVIDERS = ["kubernetes", "nginx", "istio", "linkerd", "gateway-api"] as const;
export type CanaryProvider = (typeof CANARY_PROVIDERS)[number];
/** The Flagger release the infrastructure installs (chart and app version); the CRD schemas match it. */
export const FLAGGER_VERSION = "1.36.1";
export const FLAGGER_NAMESPACE = "flagger-system";

/** The user's choices, as given on the command line or remembered by the scaffold manifest. */
export interface ScaffoldInput {
  layout: string;
  envs?: string[];
  /**
   * `NAME` or `NAME@TEAM` as typed (an app without a team goes to the first
   * team, if any), or an app remembered by the scaffold manifest, taken as is.
   */
  apps?: (string | { name: string; team?: string; canary?: boolean })[];
  teams?: string[];
  gitUrl?: string;
  branch?: string;
  name?: string;
  registry?: string;
  appSource?: string;
  /** An age public key: a `.sops.yaml` per repository and a decryption block in the cluster Kustomizations. */
  sopsAgeRecipient?: string;
  /** Apps given as names (not remembered ones) roll out in the last environment as Flagger canaries. */
  canary?: boolean;
  /** Flagger's router for every canary of the fleet (default kubernetes, i.e. blue/green). */
  canaryProvider?: string;
  /** shipmate version the agent manifests pin. */
  version: string;
}

export interface AppSpec {
  name: string;
  team?: string;
  image: string;
  /** Rolled out in the last environment as a Flagger Canary. */
  canary?: boolean;
}

/** Normalised, checked choices: everything rendering needs, nothing derived. */
export interface FleetSpec {
  layout: Layout;
  name: string;
  envs: string[];
  teams: string[];
  apps: AppSpec[];
  gitUrl: string;
  branch: string;
  registry: string;
  appSource: AppSource;
  sopsAgeRecipient?: string;
  /** Set when any app is a canary: Flagger's router, and Flagger is installed in the last environment. */
  canaryProvider?: CanaryProvider;
  version: string;
}

/** Names that would collide with the tree (`apps/base`) or with namespaces Kubernetes, Flux or the agent own. */
const RESERVED: Record<"environment" | "app" | "team", string[]> = {
  environment: ["base"],
  app: ["default", AGENT_NAMESPACE, "flux-system"],
  team: ["default", AGENT_NAMESPACE, "flux-system", "base"],
};

/** Plain scalars YAML 1.1 or 1.2 resolves to a number or boolean (DNS-label characters only). */
const YAML_SCALAR =
  /^([0-9]+|[0-9]+e[0-9]+|0x[0-9a-f]+|0o[0-7]+|[0-9]+(-[0-9]+)+|true|false|yes|no|on|off|y|n|null)$/;

/** One clear line per bad name; the same rule for environments, apps and teams. */
export function checkName(kind: "environment" | "app" | "team", name: string): void {
  if (name.includes("/") || name.includes(".."))
    throw new UsageError(`${kind} name "${name}" may not contain "/" or ".." (names become folder names)`);
  if (!DNS1123_LABEL.test(name) || name.length > 63)
    throw new UsageError(
      `${kind} name "${name}" is not a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)`,
    );
  // A name YAML reads as something other than itself (123, 1e5, true, no) would turn into a number or boolean in manifests.
  if (YAML_SCALAR.test(name))
    throw new UsageError(`${kind} name "${name}" reads as a number or boolean in YAML; add a letter`);
  if (name.startsWith("kube-") || RESERVED[kind].includes(name))
    throw new UsageError(`${kind} name "${name}" is reserved`);
}

function unique(kind: string, names: string[]): void {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new UsageError(`${kind} "${n}" is given twice`);
    seen.add(n);
  }
}

/** The repository name at the end of a git URL (`https://host/org/fleet.git`, `git@host:org/fleet.git`). */
export function repoNameOf(url: string): string {
  const m = /([^/:]+?)(\.git)?\/?$/.exec(url);
  return m?.[1] ?? "";
}

/** The URL of a sibling repository: same host and owner, another name. */
export function siblingUrl(url: string, name: string): string {
  return url.replace(/[^/:]+?(\.git)?\/?$/, (_m, git: string | undefined) => `${name}${git ?? ""}`);
}

/** Checks and normalises the user's choices; throws a UsageError naming the first problem. */
export function normalize(input: ScaffoldInput): FleetSpec {
  const layout = LAYOUTS.find((l) => l === input.layout);
  if (!layout) throw new UsageError(`unknown layout "${input.layout}" (layouts: ${LAYOUTS.join(", ")})`);
  const appSource = APP_SOURCES.find((s) => s === (input.appSource ?? "kustomize"));
  if (!appSource)
    throw new UsageError(`unknown app source "${input.appSource}" (sources: ${APP_SOURCES.join(", ")})`);
  if (appSource !== "kustomize" && layout !== "repo-per-app")
    throw new UsageError(`--app-source ${appSource} is only for the repo-per-app layout`);

  const envs = input.envs?.length ? input.envs : DEFAULT_ENVS;
  for (const e of envs) checkName("environment", e);
  unique("environment", envs);

  let teams = [...(input.teams ?? [])];
  for (const t of teams) checkName("team", t);
  unique("team", teams);
  if (layout === "repo-per-team" && teams.length === 0) teams = [DEFAULT_TEAM];
  teams.sort();

  const registry = (input.registry ?? DEFAULT_REGISTRY).replace(/\/+$/, "");
  if (!/^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/.test(registry))
    throw new UsageError(`registry "${registry}" is not an image repository prefix such as ghcr.io/acme`);

  const appArgs = input.apps?.length ? input.apps : [DEFAULT_APP];
  const apps: AppSpec[] = appArgs.map((arg) => {
    let name: string;
    let team: string | undefined;
    let canary = input.canary === true;
    if (typeof arg === "string") {
      const at = arg.indexOf("@");
      name = at < 0 ? arg : arg.slice(0, at);
      team = at < 0 ? teams[0] : arg.slice(at + 1);
    } else {
      // Remembered apps keep their owner (or lack of one) when teams are added later.
      name = arg.name;
      team = arg.team ?? (layout === "repo-per-team" ? teams[0] : undefined);
      canary = arg.canary === true;
    }
    checkName("app", name);
    if (team !== undefined && !teams.includes(team))
      throw new UsageError(`app "${name}" belongs to team "${team}", which is not given with --team`);
    return {
      name,
      ...(team !== undefined ? { team } : {}),
      image: `${registry}/${name}`,
      ...(canary ? { canary: true } : {}),
    };
  });
  let canaryProvider: CanaryProvider | undefined;
  if (input.canaryProvider !== undefined || apps.some((a) => a.canary)) {
    canaryProvider = CANARY_PROVIDERS.find((p) => p === (input.canaryProvider ?? "kubernetes"));
    if (!canaryProvider)
      throw new UsageError(
        `unknown canary provider "${input.canaryProvider}" (providers: ${CANARY_PROVIDERS.join(", ")})`,
      );
    if (!apps.some((a) => a.canary))
      throw new UsageError("--canary-provider needs --canary (which apps roll out as canaries)");
    if (appSource !== "kustomize")
      throw new UsageError(
        `--canary needs kustomize overlays to add the Canary to; --app-source ${appSource} has none`,
      );
  }
  unique(
    "app",
    apps.map((a) => a.name),
  );
  for (const a of apps)
    if (teams.includes(a.name))
      throw new UsageError(`"${a.name}" is both an app and a team (both become namespaces)`);
  apps.sort((a, b) => a.name.localeCompare(b.name));

  const gitUrl = input.gitUrl ?? DEFAULT_GIT_URL;
  const name = input.name ?? repoNameOf(gitUrl);
  if (!DNS1123_LABEL.test(name))
    throw new UsageError(
      `fleet name "${name}" (from --git-url) is not a DNS-1123 label; give one with --name`,
    );
  const branch = input.branch ?? "main";
  if (!/^[A-Za-z0-9._/-]+$/.test(branch) || branch.includes("..") || branch.startsWith("-"))
    throw new UsageError(`branch "${branch}" is not a valid git branch name`);

  // An age recipient is bech32: "age1" and 58 characters of its alphabet (what age-keygen prints).
  const sopsAgeRecipient = input.sopsAgeRecipient?.trim();
  if (sopsAgeRecipient !== undefined && !/^age1[02-9ac-hj-np-z]{58}$/.test(sopsAgeRecipient))
    // Not echoed: a private key pasted here by mistake must not reach a terminal log.
    throw new UsageError(
      sopsAgeRecipient.startsWith("AGE-SECRET-KEY-")
        ? "--sops-age-recipient was given an age private key; give its public key (age1…, the 'public key:' line of age-keygen)"
        : "--sops-age-recipient is not an age public key (age1 and 58 characters, as age-keygen prints)",
    );

  const spec: FleetSpec = {
    layout,
    name,
    envs: [...envs],
    teams,
    apps,
    gitUrl,
    branch,
    registry,
    appSource,
    ...(sopsAgeRecipient ? { sopsAgeRecipient } : {}),
    ...(canaryProvider ? { canaryProvider } : {}),
    version: input.version,
  };
  // Folder names of the repositories must not collide (e.g. an app named like the fleet in repo-per-app).
  const dirs = repositories(spec).map((r) => r.dir);
  unique("repository folder", dirs);
  return spec;
}

/** Turn a remembered spec back into input (for `add`, which extends it and normalises again). */
export function toInput(spec: FleetSpec): ScaffoldInput {
  return {
    layout: spec.layout,
    envs: spec.envs,
    apps: spec.apps.map((a) => ({
      name: a.name,
      ...(a.team ? { team: a.team } : {}),
      ...(a.canary ? { canary: true } : {}),
    })),
    teams: spec.teams,
    gitUrl: spec.gitUrl,
    branch: spec.branch,
    name: spec.name,
    registry: spec.registry,
    appSource: spec.appSource,
    ...(spec.sopsAgeRecipient ? { sopsAgeRecipient: spec.sopsAgeRecipient } : {}),
    ...(spec.canaryProvider ? { canaryProvider: spec.canaryProvider } : {}),
    version: spec.version,
  };
}

export type RepoRole =
  | { kind: "fleet" }
  | { kind: "env"; env: string }
  | { kind: "platform" }
  | { kind: "team"; team: string }
  | { kind: "config" }
  | { kind: "app"; app: string };

export interface RepoModel {
  /** Folder relative to --out ("." when --out is the repository itself). */
  dir: string;
  name: string;
  url: string;
  role: RepoRole;
}

export function repositories(spec: FleetSpec): RepoModel[] {
  const at = (name: string) => siblingUrl(spec.gitUrl, name);
  switch (spec.layout) {
    case "monorepo":
      return [{ dir: ".", name: spec.name, url: spec.gitUrl, role: { kind: "fleet" } }];
    case "repo-per-env":
      return spec.envs.map((env) => {
        const name = `${spec.name}-${env}`;
        return { dir: name, name, url: at(name), role: { kind: "env", env } };
      });
    case "repo-per-team":
      return [
        { dir: spec.name, name: spec.name, url: spec.gitUrl, role: { kind: "platform" } },
        ...spec.teams.map((team): RepoModel => {
          const name = `${spec.name}-${team}`;
          return { dir: name, name, url: at(name), role: { kind: "team", team } };
        }),
      ];
    case "repo-per-app":
      return [
        { dir: spec.name, name: spec.name, url: spec.gitUrl, role: { kind: "config" } },
        ...spec.apps.map(
          (a): RepoModel => ({
            dir: a.name,
            name: a.name,
            url: at(a.name),
            role: { kind: "app", app: a.name },
          }),
        ),
      ];
  }
}

export interface EnvModel {
  name: string;
  index: number;
  first: boolean;
  mode: "push" | "pull-request";
  promoteFrom: string | false;
  /** repo-per-env: the environment's own repository. */
  repoName: string;
  repoUrl: string;
  /** The environment canaries roll out in (the last one), when the fleet has any. */
  canary: boolean;
}

export interface AppModel {
  name: string;
  image: string;
  tag: string;
  namespace: string;
  team: string | false;
  repoName: string;
  repoUrl: string;
  canary: boolean;
}

/** Flagger's install and the analysis defaults every Canary of the fleet shares. */
export interface CanaryModel {
  provider: CanaryProvider;
  /** The environment with Flagger and the canaries. */
  env: string;
  namespace: string;
  version: string;
  /** Blue/green (the kubernetes provider shifts no traffic: iterations instead of weights). */
  blueGreen: boolean;
  /** Where Flagger's built-in metrics are queried. */
  metricsServer: string;
  /** Flagger's chart installs its own Prometheus (no mesh Prometheus to use). */
  installPrometheus: boolean;
}

export interface TeamModel {
  name: string;
  namespace: string;
  repoName: string;
  repoUrl: string;
  apps: AppModel[];
}

/** Everything templates may reference; every field is always present (templates render in strict mode). */
export interface FleetModel {
  spec: FleetSpec;
  name: string;
  layout: Layout;
  gitUrl: string;
  branch: string;
  version: string;
  agentNamespace: string;
  agentImage: string;
  firstTag: string;
  helm: boolean;
  /** repo-per-app with plain manifests: one folder for every environment, promoted by release tags. */
  manifests: boolean;
  /** SOPS with an age key: `.sops.yaml` files and decryption blocks. */
  sops: false | { recipient: string };
  canary: false | CanaryModel;
  hasTeams: boolean;
  envs: EnvModel[];
  /** Environments after the first: the ones changes are promoted into. */
  promotedEnvs: EnvModel[];
  apps: AppModel[];
  teams: TeamModel[];
  repos: RepoModel[];
}

export function buildModel(spec: FleetSpec): FleetModel {
  const repos = repositories(spec);
  const envs = spec.envs.map((name, index): EnvModel => {
    const repoName = spec.layout === "repo-per-env" ? `${spec.name}-${name}` : spec.name;
    return {
      name,
      index,
      first: index === 0,
      mode: index === 0 ? "push" : "pull-request",
      promoteFrom: index === 0 ? false : (spec.envs[index - 1] ?? false),
      repoName,
      repoUrl: spec.layout === "repo-per-env" ? siblingUrl(spec.gitUrl, repoName) : spec.gitUrl,
      canary: spec.canaryProvider !== undefined && index === spec.envs.length - 1,
    };
  });
  const apps = spec.apps.map(
    (a): AppModel => ({
      name: a.name,
      image: a.image,
      tag: FIRST_TAG,
      namespace: a.team ?? a.name,
      team: a.team ?? false,
      repoName: a.name,
      repoUrl: siblingUrl(spec.gitUrl, a.name),
      canary: a.canary === true,
    }),
  );
  const teams = spec.teams.map((t): TeamModel => {
    const repoName = `${spec.name}-${t}`;
    return {
      name: t,
      namespace: t,
      repoName,
      repoUrl: siblingUrl(spec.gitUrl, repoName),
      apps: apps.filter((a) => a.team === t),
    };
  });
  return {
    spec,
    name: spec.name,
    layout: spec.layout,
    gitUrl: spec.gitUrl,
    branch: spec.branch,
    version: spec.version,
    agentNamespace: AGENT_NAMESPACE,
    agentImage: AGENT_IMAGE,
    firstTag: FIRST_TAG,
    helm: spec.appSource === "helm",
    manifests: spec.appSource === "manifests",
    sops: spec.sopsAgeRecipient ? { recipient: spec.sopsAgeRecipient } : false,
    canary: spec.canaryProvider
      ? canaryModel(spec.canaryProvider, spec.envs[spec.envs.length - 1] ?? "")
      : false,
    hasTeams: teams.length > 0,
    envs,
    promotedEnvs: envs.slice(1),
    apps,
    teams,
    repos,
  };
}

/** Where each router's metrics live: the mesh's own Prometheus, else the one Flagger's chart installs. */
function canaryModel(provider: CanaryProvider, env: string): CanaryModel {
  const mesh: Partial<Record<CanaryProvider, string>> = {
    istio: "http://prometheus.istio-system:9090",
    linkerd: "http://prometheus.linkerd-viz:9090",
  };
  return {
    provider,
    env,
    namespace: FLAGGER_NAMESPACE,
    version: FLAGGER_VERSION,
    blueGreen: provider === "kubernetes",
    metricsServer: mesh[provider] ?? `http://flagger-prometheus.${FLAGGER_NAMESPACE}:9090`,
    installPrometheus: mesh[provider] === undefined,
  };
}
