/**
 * The `image` sub-commands of `create`, `reconcile`, `suspend` and `resume`,
 * as `flux create|reconcile|suspend|resume image …` behave: objects written
 * in Flux's form (`--export` prints them, else they are applied) and
 * requests the agent answers (`--image-automation`), waited on.
 */

import { IMAGE_API_VERSION } from "../agent/images/spec.ts";
import {
  checkInterval,
  checkKsPath,
  checkNamespace,
  checkObjectName,
  exportYaml,
} from "../bootstrap/flux.ts";
import { UsageError } from "../errors.ts";
import { KubeClient, loadKubeConfig } from "../kube/client.ts";
import { applyFluxObject, formatObjectRows, objectRowOf, waitHandled } from "../kube/control.ts";
import { parseReference } from "../registry/index.ts";
import { durationMs, parseFlags } from "./args.ts";
import { type CliIO, writeLine } from "./io.ts";

/** The image kinds by the names `flux … image TYPE` gives them. */
export const IMAGE_TYPES: Record<string, ImageKind> = {
  repository: "ImageRepository",
  policy: "ImagePolicy",
  update: "ImageUpdateAutomation",
};
/** Where image objects live unless -n says otherwise (flux's default). */
export const IMAGE_NAMESPACE = "flux-system";
type ImageKind = "ImageRepository" | "ImagePolicy" | "ImageUpdateAutomation";

export const IMAGE_CREATE_USAGE = `shipmate create image repository NAME --image IMAGE [--interval 1m] [--secret-ref NAME]
       [--cert-ref NAME] [--timeout D] [--provider generic]
       shipmate create image policy NAME --image-ref REPOSITORY (--select-semver RANGE | --select-numeric asc|desc |
       --select-alpha asc|desc) [--filter-regex RE [--filter-extract '$name']] [--reflect-digest Never|IfNotPresent|Always]
       [--interval D]
       shipmate create image update NAME --git-repo-ref NAME [--git-repo-namespace NS] [--git-repo-path PATH]
       [--checkout-branch B] [--push-branch B] --author-email EMAIL [--author-name fluxcdbot]
       [--commit-template T] [--interval 1m]
  common: [-n flux-system] [--export] [--kubeconfig FILE] [--timeout 2m] [--no-wait]`;

function kindOf(type: string | undefined, allowed: string[], usage: string): ImageKind {
  const kind = type && allowed.includes(type) ? IMAGE_TYPES[type] : undefined;
  if (!kind) throw new UsageError(`image ${allowed.join("|")} NAME (usage: ${usage})`);
  return kind;
}

export const IMAGE_RECONCILE_USAGE =
  "shipmate reconcile image repository|update NAME [-n flux-system] [--timeout 5m] [--kubeconfig FILE]";

const CREATE_FLAGS = {
  namespace: { type: "string", short: "n" },
  export: { type: "boolean" },
  kubeconfig: { type: "string" },
  timeout: { type: "string" },
  "no-wait": { type: "boolean" },
  interval: { type: "string" },
  // repository
  image: { type: "string" },
  "secret-ref": { type: "string" },
  "cert-ref": { type: "string" },
  provider: { type: "string" },
  // policy
  "image-ref": { type: "string" },
  "select-semver": { type: "string" },
  "select-numeric": { type: "string" },
  "select-alpha": { type: "string" },
  "filter-regex": { type: "string" },
  "filter-extract": { type: "string" },
  "reflect-digest": { type: "string" },
  // update
  "git-repo-ref": { type: "string" },
  "git-repo-namespace": { type: "string" },
  "git-repo-path": { type: "string" },
  "checkout-branch": { type: "string" },
  "push-branch": { type: "string" },
  "author-name": { type: "string" },
  "author-email": { type: "string" },
  "commit-template": { type: "string" },
} as const;
type CreateValues = ReturnType<typeof parseFlags<typeof CREATE_FLAGS>>["values"];

const OWN_FLAGS: Record<ImageKind, (keyof CreateValues)[]> = {
  ImageRepository: ["image", "secret-ref", "cert-ref", "provider"],
  ImagePolicy: [
    "image-ref",
    "select-semver",
    "select-numeric",
    "select-alpha",
    "filter-regex",
    "filter-extract",
    "reflect-digest",
  ],
  ImageUpdateAutomation: [
    "git-repo-ref",
    "git-repo-namespace",
    "git-repo-path",
    "checkout-branch",
    "push-branch",
    "author-name",
    "author-email",
    "commit-template",
  ],
};

const order = (flag: string, v: string): "asc" | "desc" => {
  if (v !== "asc" && v !== "desc") throw new UsageError(`${flag} must be asc or desc, got "${v}"`);
  return v;
};

/** The spec `flux create image …` writes for these flags. */
export function imageSpecFromFlags(kind: ImageKind, v: CreateValues): Record<string, unknown> {
  const others = (Object.keys(OWN_FLAGS) as ImageKind[])
    .filter((k) => k !== kind)
    .flatMap((k) => OWN_FLAGS[k])
    .filter((f) => v[f] !== undefined);
  if (others.length)
    throw new UsageError(
      `--${others.join(", --")} ${others.length > 1 ? "do" : "does"} not apply to ${kind}`,
    );
  if (kind === "ImageRepository") {
    if (!v.image) throw new UsageError("--image is required");
    const ref = parseReference(v.image);
    if (ref.tag || ref.digest)
      throw new UsageError(`--image "${v.image}" must name a repository, without tag or digest`);
    if (v.provider && !["generic", "aws", "azure", "gcp"].includes(v.provider))
      throw new UsageError(`--provider must be one of generic, aws, azure, gcp, got "${v.provider}"`);
    return {
      image: v.image,
      interval: checkInterval("--interval", v.interval ?? "1m"),
      ...(v.provider && v.provider !== "generic" ? { provider: v.provider } : {}),
      ...(v["secret-ref"] ? { secretRef: { name: checkObjectName("--secret-ref", v["secret-ref"]) } } : {}),
      ...(v["cert-ref"] ? { certSecretRef: { name: checkObjectName("--cert-ref", v["cert-ref"]) } } : {}),
      ...(v.timeout ? { timeout: checkInterval("--timeout", v.timeout) } : {}),
    };
  }
  if (kind === "ImagePolicy") {
    if (!v["image-ref"]) throw new UsageError("--image-ref is required");
    const selects = (["select-semver", "select-numeric", "select-alpha"] as const).filter(
      (f) => v[f] !== undefined,
    );
    if (selects.length !== 1)
      throw new UsageError("give exactly one of --select-semver, --select-numeric, --select-alpha");
    const policy = v["select-semver"]
      ? { semver: { range: v["select-semver"] } }
      : v["select-numeric"]
        ? { numerical: { order: order("--select-numeric", v["select-numeric"]) } }
        : { alphabetical: { order: order("--select-alpha", v["select-alpha"] ?? "") } };
    if (v["filter-extract"] && !v["filter-regex"])
      throw new UsageError("--filter-extract needs --filter-regex");
    const reflect = v["reflect-digest"];
    if (reflect && !["Never", "IfNotPresent", "Always"].includes(reflect))
      throw new UsageError(`--reflect-digest must be Never, IfNotPresent or Always, got "${reflect}"`);
    if (v.interval && reflect !== "Always")
      throw new UsageError("--interval applies to an ImagePolicy only with --reflect-digest Always");
    return {
      imageRepositoryRef: { name: checkObjectName("--image-ref", v["image-ref"]) },
      policy,
      ...(v["filter-regex"]
        ? {
            filterTags: {
              pattern: v["filter-regex"],
              ...(v["filter-extract"] ? { extract: v["filter-extract"] } : {}),
            },
          }
        : {}),
      ...(reflect ? { digestReflectionPolicy: reflect } : {}),
      ...(v.interval ? { interval: checkInterval("--interval", v.interval) } : {}),
    };
  }
  if (!v["git-repo-ref"]) throw new UsageError("--git-repo-ref is required");
  if (!v["author-email"]) throw new UsageError("--author-email is required");
  return {
    interval: checkInterval("--interval", v.interval ?? "1m"),
    sourceRef: {
      kind: "GitRepository",
      name: checkObjectName("--git-repo-ref", v["git-repo-ref"]),
      ...(v["git-repo-namespace"] ? { namespace: checkNamespace(v["git-repo-namespace"]) } : {}),
    },
    git: {
      ...(v["checkout-branch"] ? { checkout: { ref: { branch: v["checkout-branch"] } } } : {}),
      commit: {
        author: { email: v["author-email"], name: v["author-name"] ?? "fluxcdbot" },
        ...(v["commit-template"] ? { messageTemplate: v["commit-template"] } : {}),
      },
      ...(v["push-branch"] ? { push: { branch: v["push-branch"] } } : {}),
    },
    update: { path: v["git-repo-path"] ? checkKsPath(v["git-repo-path"]) : "./", strategy: "Setters" },
  };
}

/** `create image repository|policy|update NAME …`. */
export async function createImage(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseFlags("create", argv, CREATE_FLAGS);
  const [type, name, extra] = positionals;
  const kind = kindOf(type, ["repository", "policy", "update"], IMAGE_CREATE_USAGE);
  if (!name || extra) throw new UsageError(`usage: ${IMAGE_CREATE_USAGE}`);
  const namespace = checkNamespace(values.namespace ?? IMAGE_NAMESPACE);
  // --timeout is the repository's scan timeout; for the others it bounds the wait.
  const spec = imageSpecFromFlags(kind, values);
  const obj = {
    apiVersion: IMAGE_API_VERSION,
    kind,
    metadata: { name: checkObjectName(`${kind} name`, name), namespace },
    spec,
  };
  if (values.export) {
    io.stdout.write(exportYaml(obj));
    return 0;
  }
  const client = new KubeClient(loadKubeConfig(values.kubeconfig), { retryForMs: 5_000 });
  try {
    const { action, requestedAt } = await applyFluxObject(client, obj);
    writeLine(io.stdout, `${kind} ${namespace}/${name} ${action}`);
    if (values["no-wait"] || kind === "ImagePolicy") return 0;
    const timeoutMs = kind === "ImageRepository" ? 120_000 : durationMs(values.timeout, "--timeout", 120_000);
    const handled = await waitHandled(client, kind, namespace, name, requestedAt, timeoutMs);
    const row = objectRowOf(kind, handled);
    for (const line of formatObjectRows([row])) writeLine(io.stdout, line);
    return row.ready === "True" ? 0 : 1;
  } finally {
    client.close();
  }
}
