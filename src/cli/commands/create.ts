import {
  checkGitUrl,
  checkInterval,
  checkKsPath,
  checkNamespace,
  checkObjectName,
  exportYaml,
  gitRefFromFlags,
  gitRepositoryObject,
  kustomizationObject,
  parseDependsOn,
  parseSourceFlag,
  verifyGitSource,
} from "../../bootstrap/flux.ts";
import { ClusterError, UsageError } from "../../errors.ts";
import { KubeClient, loadKubeConfig } from "../../kube/client.ts";
import {
  applyFluxObject,
  formatKustomizationRows,
  formatObjectRows,
  getObject,
  kustomizationRowOfObject,
  objectRowOf,
  waitHandled,
} from "../../kube/control.ts";
import { durationMs, parseFlags } from "../args.ts";
import type { Command } from "../command.ts";
import { createImage, IMAGE_CREATE_USAGE } from "../image.ts";
import { type CliIO, writeLine } from "../io.ts";
import {
  exportOrApply,
  HELM_FLAGS,
  HELM_RELEASE_USAGE,
  HELM_SOURCE_USAGE,
  helmReleaseObject,
  helmRepositoryObject,
} from "./create-helm.ts";

const SOURCE_USAGE = `shipmate create source git NAME --url URL (--branch B | --tag T | --semver RANGE)
       [--interval 1m] [--secret-ref NAME] [-n shipmate-system] [--export] [--no-verify]
       [--kubeconfig FILE] [--timeout 2m] [--no-wait]`;
const KS_USAGE = `shipmate create kustomization NAME --source [GitRepository/]NAME[.NAMESPACE] --path PATH
       [--prune] [--interval 5m] [--retry-interval D] [--target-namespace NS] [--depends-on [NS/]NAME]...
       [--wait] [--health-check-timeout D] [-n shipmate-system] [--export] [--kubeconfig FILE]
       [--timeout 5m] [--no-wait]`;
const USAGE = `${SOURCE_USAGE}
       ${KS_USAGE}
       ${IMAGE_CREATE_USAGE}
       ${HELM_SOURCE_USAGE}
       ${HELM_RELEASE_USAGE}

  --export               print the Flux-compatible YAML (to commit under clusters/<env>) instead of applying it
  --no-verify            (source) skip checking with git ls-remote that the URL and ref resolve
  --secret-ref NAME      (source) a Secret with username/password for the repository
  --prune                (kustomization) delete objects that leave the source
  --wait                 (kustomization) health-check every applied workload; --health-check-timeout bounds it
  --timeout D            how long to wait for the agent's first reconcile when applying (not with --export)
  --no-wait              apply and return at once

exit: 0 done (applied and Ready), 1 the source, the cluster or the reconcile failed, 2 usage error`;

const FLAGS = {
  namespace: { type: "string", short: "n" },
  export: { type: "boolean" },
  kubeconfig: { type: "string" },
  timeout: { type: "string" },
  "no-wait": { type: "boolean" },
  interval: { type: "string" },
  // source git
  url: { type: "string" },
  branch: { type: "string" },
  tag: { type: "string" },
  semver: { type: "string" },
  "secret-ref": { type: "string" },
  "no-verify": { type: "boolean" },
  // kustomization
  source: { type: "string" },
  path: { type: "string" },
  prune: { type: "boolean" },
  "retry-interval": { type: "string" },
  "target-namespace": { type: "string" },
  "depends-on": { type: "string", multiple: true },
  wait: { type: "boolean" },
  "health-check-timeout": { type: "string" },
  // source helm, helmrelease (./create-helm.ts)
  ...HELM_FLAGS,
} as const;

type Values = ReturnType<typeof parseFlags<typeof FLAGS>>["values"];

function refuse(values: Values, flags: readonly (keyof Values)[], what: string): void {
  const given = flags.filter((f) => values[f] !== undefined);
  if (given.length)
    throw new UsageError(`--${given.join(", --")} ${given.length > 1 ? "do" : "does"} not apply to ${what}`);
}

async function createSource(name: string, values: Values, io: CliIO): Promise<number> {
  refuse(values, Object.keys(HELM_FLAGS) as (keyof Values)[], "create source git");
  refuse(
    values,
    [
      "source",
      "path",
      "prune",
      "retry-interval",
      "target-namespace",
      "depends-on",
      "wait",
      "health-check-timeout",
    ],
    "create source git",
  );
  if (!values.url) throw new UsageError(`--url is required (usage: ${SOURCE_USAGE})`);
  const namespace = checkNamespace(values.namespace ?? "shipmate-system");
  const url = checkGitUrl(values.url);
  const ref = gitRefFromFlags({ branch: values.branch, tag: values.tag, semver: values.semver });
  const secretRef = values["secret-ref"] ? checkObjectName("--secret-ref", values["secret-ref"]) : undefined;
  const obj = gitRepositoryObject({
    name: checkObjectName("source name", name),
    namespace,
    url,
    ref,
    interval: checkInterval("--interval", values.interval ?? "1m"),
    ...(secretRef ? { secretRef } : {}),
  });
  // A private repository needs the Secret's credentials, which only the agent reads.
  if (!values["no-verify"] && !secretRef) {
    const found = await verifyGitSource(url, ref);
    writeLine(io.stderr, `✔ ${url} resolves: ${found.name}@sha1:${found.commit}`);
  }
  if (values.export) {
    io.stdout.write(exportYaml(obj));
    return 0;
  }
  const client = new KubeClient(loadKubeConfig(values.kubeconfig), { retryForMs: 5_000 });
  try {
    const { action, requestedAt } = await applyFluxObject(client, obj);
    writeLine(io.stdout, `GitRepository ${namespace}/${name} ${action}`);
    if (values["no-wait"]) return 0;
    const handled = await waitHandled(
      client,
      "GitRepository",
      namespace,
      name,
      requestedAt,
      durationMs(values.timeout, "--timeout", 120_000),
    );
    const row = objectRowOf("GitRepository", handled);
    for (const line of formatObjectRows([row])) writeLine(io.stdout, line);
    return row.ready === "True" ? 0 : 1;
  } finally {
    client.close();
  }
}

async function createKustomization(name: string, values: Values, io: CliIO): Promise<number> {
  refuse(
    values,
    [
      "url",
      "branch",
      "tag",
      "semver",
      "secret-ref",
      "no-verify",
      ...(Object.keys(HELM_FLAGS) as (keyof Values)[]),
    ],
    "create kustomization",
  );
  if (!values.source) throw new UsageError(`--source is required (usage: ${KS_USAGE})`);
  if (!values.path) throw new UsageError(`--path is required (usage: ${KS_USAGE})`);
  const namespace = checkNamespace(values.namespace ?? "shipmate-system");
  const source = parseSourceFlag(values.source);
  const obj = kustomizationObject({
    name: checkObjectName("kustomization name", name),
    namespace,
    source,
    path: checkKsPath(values.path),
    prune: values.prune === true,
    interval: checkInterval("--interval", values.interval ?? "5m"),
    ...(values["retry-interval"]
      ? { retryInterval: checkInterval("--retry-interval", values["retry-interval"]) }
      : {}),
    ...(values["target-namespace"] ? { targetNamespace: checkNamespace(values["target-namespace"]) } : {}),
    dependsOn: (values["depends-on"] ?? []).map(parseDependsOn),
    wait: values.wait === true,
    ...(values["health-check-timeout"]
      ? { timeout: checkInterval("--health-check-timeout", values["health-check-timeout"]) }
      : {}),
  });
  if (values.export) {
    io.stdout.write(exportYaml(obj));
    return 0;
  }
  const client = new KubeClient(loadKubeConfig(values.kubeconfig), { retryForMs: 5_000 });
  try {
    const sourceNs = source.namespace ?? namespace;
    if (!(await getObject(client, "GitRepository", sourceNs, source.name)))
      throw new ClusterError(
        `GitRepository ${sourceNs}/${source.name} not found: create it first (shipmate create source git ${source.name} --url …)`,
      );
    const { action, requestedAt } = await applyFluxObject(client, obj);
    writeLine(io.stdout, `Kustomization ${namespace}/${name} ${action}`);
    if (values["no-wait"]) return 0;
    const row = kustomizationRowOfObject(
      await waitHandled(
        client,
        "Kustomization",
        namespace,
        name,
        requestedAt,
        durationMs(values.timeout, "--timeout", 300_000),
      ),
    );
    for (const line of formatKustomizationRows([row])) writeLine(io.stdout, line);
    return row.ready === "True" ? 0 : 1;
  } finally {
    client.close();
  }
}

/** Flags of git sources and Kustomizations, refused by the Helm kinds (flux's create commands have none of them). */
const GIT_AND_KUSTOMIZATION_FLAGS = [
  "branch",
  "tag",
  "semver",
  "no-verify",
  "path",
  "prune",
  "retry-interval",
  "wait",
  "health-check-timeout",
] as const satisfies readonly (keyof Values)[];

export const command: Command = {
  summary:
    "Create a GitRepository or HelmRepository source, a Kustomization, a HelmRelease or an image object: print Flux-compatible YAML (--export) or apply it.",
  usage: USAGE,
  async run(argv: string[], io: CliIO): Promise<number> {
    if (argv[0] === "image") return await createImage(argv.slice(1), io);
    const { values, positionals } = parseFlags("create", argv, FLAGS);
    const [what, ...rest] = positionals;
    if (what === "source") {
      const [kind, name, extra] = rest;
      if (kind === "helm") {
        if (!name || extra) throw new UsageError(`usage: ${HELM_SOURCE_USAGE}`);
        refuse(values, GIT_AND_KUSTOMIZATION_FLAGS, "create source helm");
        return await exportOrApply(helmRepositoryObject(name, values), values, io);
      }
      if (kind !== "git") throw new UsageError(`only "git" and "helm" sources (usage: ${SOURCE_USAGE})`);
      if (!name || extra) throw new UsageError(`usage: ${SOURCE_USAGE}`);
      return await createSource(name, values, io);
    }
    if (what === "kustomization" || what === "ks") {
      const [name, extra] = rest;
      if (!name || extra) throw new UsageError(`usage: ${KS_USAGE}`);
      return await createKustomization(name, values, io);
    }
    if (what === "helmrelease" || what === "hr") {
      const [name, extra] = rest;
      if (!name || extra) throw new UsageError(`usage: ${HELM_RELEASE_USAGE}`);
      refuse(values, GIT_AND_KUSTOMIZATION_FLAGS, "create helmrelease");
      return await exportOrApply(helmReleaseObject(name, values), values, io);
    }
    throw new UsageError(
      `what to create? source git, source helm, kustomization, helmrelease or image repository|policy|update (usage: ${USAGE})`,
    );
  },
};
