/**
 * What `shipmate bootstrap` writes into the fleet repository, before any
 * I/O: the cluster folder's path checked, the agent's own manifests rendered
 * from the scaffolder's partials (so `shipmate init` and `shipmate bootstrap`
 * write the same files), and the bootstrap-only additions — the git
 * credentials Secret wired into the Deployment and the fleet's
 * GitRepository by a kustomize patch, and the agent folder listed in an
 * existing cluster kustomization.
 */
import { posix } from "node:path";
import { isMap, isSeq, parseDocument } from "yaml";
import { UsageError } from "../errors.ts";
import { buildModel, checkName, normalize } from "../scaffold/model.ts";
import { Templates } from "../scaffold/render.ts";

export const AGENT_DIR = "shipmate-system";
export const AGENT_NAMESPACE = "shipmate-system";
/** The root Kustomization and the fleet's GitRepository, as scaffolded (and as the agent's defaults). */
export const ROOT_NAME = "shipmate-system";
/** Holds the git token the agent fetches with; never written to git. */
export const GIT_SECRET = "shipmate-git";
export const TOKEN_ENV_IN_POD = "GIT_TOKEN";

export interface ClusterPath {
  /** `clusters/<env>`, normalised (no `./`, no trailing slash). */
  path: string;
  env: string;
}

/**
 * `--path` as bootstrap accepts it: a folder inside the repository named
 * `clusters/<env>`, the layout the scaffolder's agent manifests (and `shipmate
 * init`) use. A path escaping the repository is refused first, whatever its shape.
 */
export function checkClusterPath(input: string): ClusterPath {
  const raw = input.trim();
  if (!raw) throw new UsageError("--path is empty; give the cluster folder, e.g. clusters/staging");
  if (posix.isAbsolute(raw) || /^[A-Za-z]:[\\/]/.test(raw) || raw.includes("\\"))
    throw new UsageError(`--path "${input}" must be relative to the repository root, e.g. clusters/staging`);
  const norm = posix.normalize(raw).replace(/\/+$/, "");
  if (norm === ".." || norm.startsWith("../"))
    throw new UsageError(`--path "${input}" escapes the repository`);
  const m = /^clusters\/([^/]+)$/.exec(norm);
  if (!m?.[1])
    throw new UsageError(
      `--path "${input}" must be clusters/<env> (one folder per cluster, as shipmate init lays fleets out)`,
    );
  checkName("environment", m[1]);
  return { path: norm, env: m[1] };
}

export interface AgentManifestInput {
  env: string;
  /** The URL the agent clones (the forge's https clone URL). */
  repoUrl: string;
  branch: string;
  /** shipmate version the agent image is pinned to. */
  version: string;
}

/**
 * The agent folder's files (`<path>/shipmate-system/…`), keyed by their path
 * relative to it: the scaffolder's partials, plus a kustomization that wires
 * the git Secret in. Without an image policy for the agent (that is `shipmate
 * init`'s), so the Deployment's image has no marker.
 */
export function agentFiles(input: AgentManifestInput, templates = new Templates()): Map<string, string> {
  const spec = normalize({
    layout: "monorepo",
    envs: [input.env],
    gitUrl: input.repoUrl,
    branch: input.branch,
    name: "fleet",
    version: input.version,
  });
  const model = buildModel(spec);
  // Bootstrap writes no image policies: the Deployment carries no marker that would name one.
  const context = { fleet: model, repo: model.repos[0], env: model.envs[0], withoutPolicy: true };
  const files = new Map<string, string>();
  for (const name of ["namespace", "crds", "rbac", "deployment", "sync"])
    files.set(`${name}.yaml`, templates.render(`partials/agent/${name}.yaml.hbs`, context));
  files.set(
    "kustomization.yaml",
    withSecretPatches(templates.render("partials/agent/kustomization.yaml.hbs", context)),
  );
  return files;
}

/** The agent Deployment patch that reads the git token from the bootstrap Secret (JSON patch, YAML text). */
export const DEPLOYMENT_PATCH = [
  "- op: add",
  "  path: /spec/template/spec/containers/0/args/-",
  `  value: --token-env=${TOKEN_ENV_IN_POD}`,
  "- op: add",
  "  path: /spec/template/spec/containers/0/env",
  "  value:",
  `    - name: ${TOKEN_ENV_IN_POD}`,
  "      valueFrom:",
  "        secretKeyRef:",
  `          name: ${GIT_SECRET}`,
  "          key: password",
  "",
].join("\n");
const SOURCE_PATCH = ["- op: add", "  path: /spec/secretRef", "  value:", `    name: ${GIT_SECRET}`, ""].join(
  "\n",
);

/**
 * The agent folder's kustomization with the patches that hand the Secret's
 * token to the agent and name the Secret on the fleet's GitRepository. An
 * existing file keeps everything else it says (components, other patches);
 * a patch already there for the same target and purpose is not added twice.
 */
export function withSecretPatches(kustomization: string, file = "kustomization.yaml"): string {
  const doc = parseDocument(kustomization);
  if (doc.errors.length) throw new UsageError(`${file}: ${doc.errors[0]?.message.split("\n")[0]}`);
  if (!isMap(doc.contents)) throw new UsageError(`${file}: not a kustomization (expected a mapping)`);
  const existing = doc.get("patches");
  if (existing !== undefined && !isSeq(existing)) throw new UsageError(`${file}: patches is not a list`);
  const have = JSON.stringify((doc.toJS() as { patches?: unknown }).patches ?? []);
  const wanted = [
    {
      marker: `--token-env=${TOKEN_ENV_IN_POD}`,
      patch: DEPLOYMENT_PATCH,
      kind: "Deployment",
      name: "shipmate-agent",
    },
    { marker: "/spec/secretRef", patch: SOURCE_PATCH, kind: "GitRepository", name: ROOT_NAME },
  ].filter((w) => !have.includes(w.marker));
  if (!wanted.length) return kustomization;
  const patches = isSeq(existing) ? existing : doc.createNode([]);
  for (const w of wanted)
    patches.add(doc.createNode({ patch: w.patch, target: { kind: w.kind, name: w.name } }));
  doc.set("patches", patches);
  if (!existing)
    doc.commentBefore =
      " Written by shipmate bootstrap: the agent reads its git token from the Secret\n" +
      ` ${AGENT_NAMESPACE}/${GIT_SECRET} (created by bootstrap, never committed).`;
  return doc.toString({ lineWidth: 0 });
}

/**
 * An existing cluster kustomization with the agent folder added to its
 * resources (comments and order kept), or undefined when it already lists it.
 */
export function withAgentResource(text: string, file: string): string | undefined {
  const doc = parseDocument(text);
  if (doc.errors.length) throw new UsageError(`${file}: ${doc.errors[0]?.message.split("\n")[0]}`);
  if (!isMap(doc.contents)) throw new UsageError(`${file}: not a kustomization (expected a mapping)`);
  const resources = doc.get("resources");
  if (resources !== undefined && !isSeq(resources)) throw new UsageError(`${file}: resources is not a list`);
  const listed = isSeq(resources)
    ? resources.items.some((i) => {
        const v = String((i as { value?: unknown }).value ?? i)
          .replace(/^\.\//, "")
          .replace(/\/+$/, "");
        return v === AGENT_DIR;
      })
    : false;
  if (listed) return undefined;
  if (isSeq(resources)) resources.add(doc.createNode(AGENT_DIR));
  else doc.set("resources", [AGENT_DIR]);
  return doc.toString({ lineWidth: 0 });
}
