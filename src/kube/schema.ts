/**
 * Every document the agent reads from the Kubernetes API or from the fleet
 * repository is parsed through one of these schemas; types are inferred from
 * them. Unknown fields pass through untouched (objects are applied as written).
 */
import { z } from "zod";

/** meta/v1 ObjectMeta (k8s.io/apimachinery/pkg/apis/meta/v1/types.go), the fields the agent reads. */
export const ObjectMeta = z.looseObject({
  name: z.string().optional(),
  generateName: z.string().optional(),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.number().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  deletionTimestamp: z.string().optional(),
  managedFields: z
    .array(
      z.looseObject({
        manager: z.string().optional(),
        operation: z.string().optional(),
        apiVersion: z.string().optional(),
        time: z.string().optional(),
        fieldsType: z.string().optional(),
        fieldsV1: z.unknown().optional(),
        subresource: z.string().optional(),
      }),
    )
    .optional(),
});
export type ObjectMeta = z.infer<typeof ObjectMeta>;

/** Any Kubernetes object (API conventions, "Resources"): apiVersion, kind, metadata, the rest opaque. */
export const KubeObject = z.looseObject({
  apiVersion: z.string().min(1),
  kind: z.string().min(1),
  metadata: ObjectMeta,
});
export type KubeObject = z.infer<typeof KubeObject>;

/** meta/v1 List and PartialObjectMetadataList: items plus the continue token for paging. */
export const KubeList = z.looseObject({
  metadata: z
    .looseObject({ continue: z.string().optional(), resourceVersion: z.string().optional() })
    .optional(),
  items: z.array(z.looseObject({ metadata: ObjectMeta })).nullable(),
});

/** meta/v1 Status (API conventions, "Response Status Kind"), returned for failures. */
export const Status = z.looseObject({
  kind: z.literal("Status").optional(),
  status: z.string().optional(),
  message: z.string().optional(),
  reason: z.string().optional(),
  code: z.number().optional(),
  details: z
    .looseObject({
      causes: z
        .array(
          z.looseObject({
            type: z.string().optional(),
            message: z.string().optional(),
            field: z.string().optional(),
          }),
        )
        .optional(),
    })
    .optional(),
});
export type Status = z.infer<typeof Status>;

/** meta/v1 APIResourceList (discovery, GET /api/v1 or /apis/GROUP/VERSION). */
export const APIResourceList = z.looseObject({
  groupVersion: z.string(),
  resources: z.array(
    z.looseObject({
      name: z.string(),
      kind: z.string(),
      namespaced: z.boolean(),
      verbs: z.array(z.string()).optional(),
    }),
  ),
});

/** meta/v1 APIGroup (discovery, GET /apis/GROUP): the versions a group serves. */
export const APIGroup = z.looseObject({
  name: z.string(),
  versions: z.array(z.looseObject({ groupVersion: z.string(), version: z.string() })),
});

/** coordination.k8s.io/v1 Lease (LeaseSpec in k8s.io/api/coordination/v1/types.go). */
export const Lease = z.looseObject({
  metadata: ObjectMeta,
  spec: z
    .looseObject({
      holderIdentity: z.string().nullish(),
      leaseDurationSeconds: z.number().nullish(),
      acquireTime: z.string().nullish(),
      renewTime: z.string().nullish(),
      leaseTransitions: z.number().nullish(),
    })
    .optional(),
});
export type Lease = z.infer<typeof Lease>;

/** meta/v1 Condition (KEP-1623), as Flux controllers use it. */
export const Condition = z.looseObject({
  type: z.string(),
  status: z.enum(["True", "False", "Unknown"]),
  reason: z.string(),
  message: z.string(),
  lastTransitionTime: z.string(),
  observedGeneration: z.number().optional(),
});
export type Condition = z.infer<typeof Condition>;

/** Go duration strings as Flux writes them in `interval`/`timeout` ("1m", "1h30m", "500ms"). */
export const Duration = z.string().regex(/^(\d+(\.\d+)?(ms|s|m|h))+$/, "a duration such as 30s, 5m or 1h");

const NamespacedRef = z.looseObject({ name: z.string().min(1), namespace: z.string().optional() });

/** kustomize.toolkit.fluxcd.io/v1 KustomizationSpec (fluxcd/kustomize-controller api/v1/kustomization_types.go). */
export const KustomizationSpec = z.looseObject({
  interval: Duration,
  retryInterval: Duration.optional(),
  timeout: Duration.optional(),
  path: z.string().optional(),
  prune: z.boolean(),
  suspend: z.boolean().optional(),
  wait: z.boolean().optional(),
  force: z.boolean().optional(),
  targetNamespace: z.string().optional(),
  namePrefix: z.string().optional(),
  nameSuffix: z.string().optional(),
  dependsOn: z.array(NamespacedRef).optional(),
  sourceRef: z
    .looseObject({
      kind: z.string(),
      name: z.string(),
      namespace: z.string().optional(),
      apiVersion: z.string().optional(),
    })
    .optional(),
  healthChecks: z
    .array(
      z.looseObject({
        apiVersion: z.string().optional(),
        kind: z.string(),
        name: z.string(),
        namespace: z.string().optional(),
      }),
    )
    .optional(),
  patches: z
    .array(
      z.looseObject({
        patch: z.string(),
        target: z.record(z.string(), z.unknown()).optional(),
      }),
    )
    .optional(),
  images: z
    .array(
      z.looseObject({
        name: z.string(),
        newName: z.string().optional(),
        newTag: z.string().optional(),
        digest: z.string().optional(),
      }),
    )
    .optional(),
  components: z.array(z.string()).optional(),
  ignoreMissingComponents: z.boolean().optional(),
  deletionPolicy: z.enum(["MirrorPrune", "Delete", "WaitForTermination", "Orphan"]).optional(),
  commonMetadata: z
    .looseObject({
      labels: z.record(z.string(), z.string()).optional(),
      annotations: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
  postBuild: z.unknown().optional(),
  decryption: z.unknown().optional(),
  serviceAccountName: z.string().optional(),
  kubeConfig: z
    .looseObject({
      secretRef: z.looseObject({ name: z.string().min(1), key: z.string().optional() }).optional(),
      configMapRef: z.looseObject({ name: z.string().min(1) }).optional(),
    })
    .optional(),
});
export type KustomizationSpec = z.infer<typeof KustomizationSpec>;

/** One inventory entry: Flux's ResourceRef (`id` = ns_name_group_kind, `v` = version) plus shipmate's state hash. */
export const InventoryEntry = z.looseObject({ id: z.string(), v: z.string(), h: z.string().optional() });
export type InventoryEntry = z.infer<typeof InventoryEntry>;

/** kustomize.toolkit.fluxcd.io/v1 KustomizationStatus, with shipmate's additions documented in docs/agent.md. */
export const KustomizationStatus = z.looseObject({
  observedGeneration: z.number().optional(),
  conditions: z.array(Condition).optional(),
  lastAppliedRevision: z.string().optional(),
  lastAttemptedRevision: z.string().optional(),
  lastHandledReconcileAt: z.string().optional(),
  inventory: z
    .looseObject({ entries: z.array(InventoryEntry).nullable().optional() })
    .nullable()
    .optional(),
});
export type KustomizationStatus = z.infer<typeof KustomizationStatus>;

/** A Kustomization as stored in the cluster: the spec may be invalid (reported in status), so it stays unparsed here. */
export const KustomizationObject = z.looseObject({
  apiVersion: z.string(),
  kind: z.literal("Kustomization"),
  metadata: ObjectMeta,
  spec: z.record(z.string(), z.unknown()).optional(),
  status: KustomizationStatus.optional(),
});
export type KustomizationObject = z.infer<typeof KustomizationObject>;

export const KUSTOMIZATION_GROUP = "kustomize.toolkit.fluxcd.io";
export const KUSTOMIZATION_API_VERSION = `${KUSTOMIZATION_GROUP}/v1`;
export const SOURCE_API_VERSION = "source.toolkit.fluxcd.io/v1";

/** source.toolkit.fluxcd.io/v1 GitRepositoryRef (fluxcd/source-controller api/v1/gitrepository_types.go). */
export const GitRepositoryRef = z.looseObject({
  branch: z.string().min(1).optional(),
  tag: z.string().min(1).optional(),
  semver: z.string().min(1).optional(),
  name: z.string().optional(),
  commit: z.string().optional(),
});

/** source.toolkit.fluxcd.io/v1 GitRepositorySpec, the fields the agent reads. */
export const GitRepositorySpec = z.looseObject({
  url: z.string().min(1),
  interval: Duration,
  timeout: Duration.optional(),
  ref: GitRepositoryRef.optional(),
  secretRef: z.looseObject({ name: z.string().min(1) }).optional(),
  suspend: z.boolean().optional(),
  /** gitignore-syntax exclusions, applied after the defaults and `.sourceignore` files. */
  ignore: z.string().optional(),
  /** Other GitRepositories' artifacts copied into this one (source-controller's GitRepositoryInclude). */
  include: z
    .array(
      z.looseObject({
        repository: z.looseObject({ name: z.string().min(1) }),
        fromPath: z.string().optional(),
        toPath: z.string().optional(),
      }),
    )
    .optional(),
  recurseSubmodules: z.boolean().optional(),
  /** Directories checked out; nothing else is in the artifact. */
  sparseCheckout: z.array(z.string().min(1)).optional(),
  /** source-controller's GitRepositoryVerification. */
  verify: z
    .looseObject({
      mode: z.enum(["HEAD", "head", "Tag", "TagAndHEAD"]).default("HEAD"),
      secretRef: z.looseObject({ name: z.string().min(1) }),
    })
    .optional(),
});
export type GitRepositorySpec = z.infer<typeof GitRepositorySpec>;

/** source.toolkit.fluxcd.io/v1 GitRepositoryStatus: the artifact's revision is what Kustomizations apply. */
export const GitRepositoryStatus = z.looseObject({
  observedGeneration: z.number().optional(),
  conditions: z.array(Condition).optional(),
  artifact: z
    .looseObject({ revision: z.string(), lastUpdateTime: z.string().optional() })
    .nullable()
    .optional(),
  lastHandledReconcileAt: z.string().optional(),
});
export type GitRepositoryStatus = z.infer<typeof GitRepositoryStatus>;

/** A GitRepository as stored in the cluster; the spec is checked when it is used. */
export const GitRepositoryObject = z.looseObject({
  apiVersion: z.string(),
  kind: z.literal("GitRepository"),
  metadata: ObjectMeta,
  spec: z.record(z.string(), z.unknown()).optional(),
  status: GitRepositoryStatus.optional(),
});
export type GitRepositoryObject = z.infer<typeof GitRepositoryObject>;

/** core/v1 Secret (k8s.io/api/core/v1/types.go): `data` values are base64. */
export const SecretObject = z.looseObject({
  metadata: ObjectMeta,
  data: z.record(z.string(), z.string()).nullish(),
});
