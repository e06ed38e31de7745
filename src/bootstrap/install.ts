/**
 * Putting the agent into the cluster, as `flux bootstrap` puts Flux in: the
 * agent folder just pushed is rendered with the real kustomize and applied
 * with the agent's own server-side applier (field manager `shipmate`, the
 * root Kustomization's ownership labels), so that when the agent reconciles
 * its root it finds its own objects exactly as it would have applied them
 * and takes them over without a conflict. The git credentials go into a
 * Secret that never touches git.
 */
import { join } from "node:path";
import { z } from "zod";
import { Renderer } from "../agent/render.ts";
import { ClusterError } from "../errors.ts";
import { Applier, type Change } from "../kube/apply.ts";
import { apiError, type KubeClient } from "../kube/client.ts";
import { Discovery } from "../kube/discovery.ts";
import { withOwnerLabels } from "../kube/objects.ts";
import type { KubeObject } from "../kube/schema.ts";
import { AGENT_DIR, AGENT_NAMESPACE, GIT_SECRET, ROOT_NAME } from "./layout.ts";

/** authorization.k8s.io/v1 SelfSubjectAccessReview status (k8s.io/api/authorization/v1/types.go). */
const AccessReview = z.looseObject({
  status: z.looseObject({ allowed: z.boolean(), reason: z.string().optional() }).optional(),
});

/** version.Info (k8s.io/apimachinery/pkg/version), the field we show. */
const VersionInfo = z.looseObject({ gitVersion: z.string() });

const NEEDED: { verb: string; group: string; resource: string; namespaced: boolean }[] = [
  { verb: "create", group: "", resource: "namespaces", namespaced: false },
  { verb: "create", group: "apiextensions.k8s.io", resource: "customresourcedefinitions", namespaced: false },
  { verb: "create", group: "rbac.authorization.k8s.io", resource: "clusterrolebindings", namespaced: false },
  { verb: "create", group: "", resource: "secrets", namespaced: true },
  { verb: "create", group: "apps", resource: "deployments", namespaced: true },
  { verb: "create", group: "kustomize.toolkit.fluxcd.io", resource: "kustomizations", namespaced: true },
];

/**
 * Before anything is written anywhere: the API server answers, and the
 * kubeconfig's user may create what the agent's installation contains.
 * Returns the server's version.
 */
export async function preflightCluster(client: KubeClient): Promise<string> {
  const version = await client.call(
    { method: "GET", path: "/version" },
    VersionInfo,
    "read the server version",
  );
  const denied: string[] = [];
  for (const n of NEEDED) {
    const review = await client.call(
      {
        method: "POST",
        path: "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        body: {
          apiVersion: "authorization.k8s.io/v1",
          kind: "SelfSubjectAccessReview",
          spec: {
            resourceAttributes: {
              verb: n.verb,
              group: n.group,
              resource: n.resource,
              ...(n.namespaced ? { namespace: AGENT_NAMESPACE } : {}),
            },
          },
        },
      },
      AccessReview,
      "check access",
    );
    if (!review.status?.allowed) denied.push(`${n.verb} ${n.resource}${n.group ? `.${n.group}` : ""}`);
  }
  if (denied.length)
    throw new ClusterError(
      `the kubeconfig's user may not ${denied.join(", ")} (installing the agent needs cluster-admin); nothing was changed`,
    );
  return version.gitVersion;
}

export interface InstallInput {
  client: KubeClient;
  /** The fleet repository checkout holding the pushed commit. */
  checkoutDir: string;
  /** `clusters/<env>` */
  clusterPath: string;
  /** Where generated overlays may go. */
  scratch: string;
  credentials: { username: string; password: string };
  /** The root Kustomization that will own the agent's objects (default shipmate-system/shipmate-system; Flux's flux-system with --from-flux). */
  owner?: { name: string; namespace: string };
}

/** The agent's objects as the agent itself will render them from git, owned by the root Kustomization. */
export async function renderAgentFolder(
  input: Omit<InstallInput, "client" | "credentials">,
): Promise<KubeObject[]> {
  const owner = input.owner ?? { name: ROOT_NAME, namespace: AGENT_NAMESPACE };
  const objects = await new Renderer().render(
    {
      root: input.checkoutDir,
      scratch: input.scratch,
      name: owner.name,
      namespace: owner.namespace,
      spec: { path: join(input.clusterPath, AGENT_DIR) },
    },
    async () => {},
  );
  return objects.map((o) => withOwnerLabels(o, owner.name, owner.namespace));
}

/** Server-side applies the git credentials Secret (never committed, never printed). */
async function applySecret(client: KubeClient, credentials: InstallInput["credentials"]): Promise<void> {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const res = await client.raw({
    method: "PATCH",
    path: `/api/v1/namespaces/${AGENT_NAMESPACE}/secrets/${GIT_SECRET}`,
    query: { fieldManager: "shipmate-bootstrap", force: "true" },
    contentType: "application/apply-patch+yaml",
    body: {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: GIT_SECRET,
        namespace: AGENT_NAMESPACE,
        labels: { "app.kubernetes.io/part-of": "shipmate" },
      },
      type: "Opaque",
      // username/password is the Flux git Secret format; token is what the agent's manifests mention.
      data: {
        username: b64(credentials.username),
        password: b64(credentials.password),
        token: b64(credentials.password),
      },
    },
  });
  if (res.code < 200 || res.code > 299)
    throw apiError(`Secret ${AGENT_NAMESPACE}/${GIT_SECRET}`, res.code, res.body);
}

/**
 * Applies the agent: its Namespace first, then the Secret, then everything
 * else (CRDs before the objects that need them, as the agent's applier
 * orders). Returns what changed.
 */
export async function installAgent(input: InstallInput): Promise<Change[]> {
  const objects = await renderAgentFolder(input);
  const applier = new Applier(input.client, new Discovery(input.client));
  const owner = input.owner ?? { name: ROOT_NAME, namespace: AGENT_NAMESPACE };
  const writeAhead = async () => {};
  const namespaces = objects.filter((o) => o.kind === "Namespace");
  const first = namespaces.length
    ? (await applier.apply({ objects: namespaces, previous: [], owner, writeAhead })).changes
    : [];
  await applySecret(input.client, input.credentials);
  const rest = (await applier.apply({ objects, previous: [], owner, writeAhead })).changes;
  return [...first, ...rest.filter((c) => c.ref.kind !== "Namespace")];
}
