/**
 * helm.toolkit.fluxcd.io/v2 HelmRelease (github.com/fluxcd/helm-controller/api
 * v1.6.5, api/v2/helmrelease_types.go): the field table (every spec field,
 * honoured or refused) and the schema of the fields the agent reads.
 */
import { z } from "zod";
import { Duration } from "../../kube/schema.ts";
import type { FieldTable } from "../fields/support.ts";

export const HELM_GROUP = "helm.toolkit.fluxcd.io";
export const HELM_API_VERSION = `${HELM_GROUP}/v2`;
/** helm-controller's finalizer: the release is uninstalled before the object goes. */
export const HELM_FINALIZER = "finalizers.fluxcd.io";

const notImplemented = (what: string) => ({ refused: `${what} is not implemented` });

export const HELM_RELEASE_FIELDS: FieldTable = {
  chart: "honoured",
  "chart.metadata": "honoured",
  "chart.metadata.labels": "honoured",
  "chart.metadata.annotations": "honoured",
  "chart.spec": "honoured",
  "chart.spec.chart": "honoured",
  "chart.spec.version": "honoured",
  "chart.spec.sourceRef": "honoured",
  "chart.spec.sourceRef.apiVersion": "honoured",
  "chart.spec.sourceRef.kind": "honoured",
  "chart.spec.sourceRef.name": "honoured",
  "chart.spec.sourceRef.namespace": "honoured",
  "chart.spec.interval": "honoured",
  "chart.spec.reconcileStrategy": "honoured",
  "chart.spec.valuesFiles": "honoured",
  "chart.spec.ignoreMissingValuesFiles": "honoured",
  "chart.spec.verify": { refused: "chart signature verification (cosign, notation) is not implemented" },
  chartRef: "honoured",
  "chartRef.apiVersion": "honoured",
  "chartRef.kind": "honoured",
  "chartRef.name": "honoured",
  "chartRef.namespace": "honoured",
  interval: "honoured",
  kubeConfig: "honoured",
  "kubeConfig.secretRef": "honoured",
  "kubeConfig.secretRef.name": "honoured",
  "kubeConfig.secretRef.key": "honoured",
  "kubeConfig.configMapRef": {
    refused: "secret-less (workload identity) kubeconfigs are not built; use kubeConfig.secretRef",
  },
  suspend: "honoured",
  releaseName: "honoured",
  targetNamespace: "honoured",
  storageNamespace: "honoured",
  dependsOn: "honoured",
  "dependsOn.name": "honoured",
  "dependsOn.namespace": "honoured",
  "dependsOn.readyExpr": { refused: "CEL readiness expressions on dependencies are not evaluated" },
  timeout: "honoured",
  maxHistory: "honoured",
  serviceAccountName: "honoured",
  // Each Helm action builds its own client (in shipmate-helm serve, or a helm process), fresh either way.
  persistentClient: "honoured",
  driftDetection: "honoured",
  "driftDetection.mode": "honoured",
  "driftDetection.ignore": "honoured",
  "driftDetection.ignore.paths": "honoured",
  "driftDetection.ignore.target": "honoured",
  "driftDetection.ignore.target.group": "honoured",
  "driftDetection.ignore.target.version": "honoured",
  "driftDetection.ignore.target.kind": "honoured",
  "driftDetection.ignore.target.name": "honoured",
  "driftDetection.ignore.target.namespace": "honoured",
  "driftDetection.ignore.target.labelSelector": "honoured",
  "driftDetection.ignore.target.annotationSelector": "honoured",
  install: "honoured",
  "install.timeout": "honoured",
  "install.strategy": notImplemented("the install retry strategy"),
  "install.remediation": "honoured",
  "install.remediation.retries": "honoured",
  "install.remediation.remediateLastFailure": "honoured",
  "install.remediation.ignoreTestFailures": "honoured",
  "install.disableTakeOwnership": "honoured",
  "install.disableWait": "honoured",
  "install.disableWaitForJobs": "honoured",
  "install.disableHooks": "honoured",
  "install.disableOpenAPIValidation": "honoured",
  "install.disableSchemaValidation": "honoured",
  "install.replace": notImplemented("reusing a failed release name on install"),
  "install.skipCRDs": "honoured",
  "install.crds": "honoured",
  "install.createNamespace": "honoured",
  "install.serverSideApply": { refused: "only Helm's default apply method is used", accepts: [true] },
  upgrade: "honoured",
  "upgrade.timeout": "honoured",
  "upgrade.strategy": notImplemented("the upgrade retry strategy"),
  "upgrade.remediation": "honoured",
  "upgrade.remediation.retries": "honoured",
  "upgrade.remediation.remediateLastFailure": "honoured",
  "upgrade.remediation.ignoreTestFailures": "honoured",
  "upgrade.remediation.strategy": "honoured",
  "upgrade.disableTakeOwnership": "honoured",
  "upgrade.disableWait": "honoured",
  "upgrade.disableWaitForJobs": "honoured",
  "upgrade.disableHooks": "honoured",
  "upgrade.disableOpenAPIValidation": "honoured",
  "upgrade.disableSchemaValidation": "honoured",
  "upgrade.force": "honoured",
  "upgrade.preserveValues": notImplemented("reusing the last release's values"),
  "upgrade.cleanupOnFail": "honoured",
  "upgrade.crds": "honoured",
  "upgrade.serverSideApply": { refused: "only Helm's default apply method is used", accepts: ["auto"] },
  "upgrade.chartNameChangeStrategy": notImplemented("a chart name change strategy"),
  test: "honoured",
  "test.enable": "honoured",
  "test.timeout": "honoured",
  "test.ignoreFailures": "honoured",
  "test.filters": "honoured",
  "test.filters.name": "honoured",
  "test.filters.exclude": "honoured",
  rollback: "honoured",
  "rollback.timeout": "honoured",
  "rollback.disableWait": "honoured",
  "rollback.disableWaitForJobs": "honoured",
  "rollback.disableHooks": "honoured",
  "rollback.recreate": notImplemented("recreating pods on rollback"),
  "rollback.force": "honoured",
  "rollback.cleanupOnFail": "honoured",
  "rollback.serverSideApply": { refused: "only Helm's default apply method is used", accepts: ["auto"] },
  uninstall: "honoured",
  "uninstall.timeout": "honoured",
  "uninstall.disableHooks": "honoured",
  "uninstall.keepHistory": "honoured",
  "uninstall.disableWait": "honoured",
  "uninstall.deletionPropagation": "honoured",
  valuesFrom: "honoured",
  "valuesFrom.kind": "honoured",
  "valuesFrom.name": "honoured",
  "valuesFrom.valuesKey": "honoured",
  "valuesFrom.targetPath": "honoured",
  "valuesFrom.optional": "honoured",
  "valuesFrom.literal": "honoured",
  values: "honoured",
  commonMetadata: "honoured",
  "commonMetadata.labels": "honoured",
  "commonMetadata.annotations": "honoured",
  postRenderers: "honoured",
  "postRenderers.kustomize": "honoured",
  "postRenderers.kustomize.patches": "honoured",
  "postRenderers.kustomize.patches.patch": "honoured",
  "postRenderers.kustomize.patches.target": "honoured",
  "postRenderers.kustomize.patches.target.group": "honoured",
  "postRenderers.kustomize.patches.target.version": "honoured",
  "postRenderers.kustomize.patches.target.kind": "honoured",
  "postRenderers.kustomize.patches.target.name": "honoured",
  "postRenderers.kustomize.patches.target.namespace": "honoured",
  "postRenderers.kustomize.patches.target.labelSelector": "honoured",
  "postRenderers.kustomize.patches.target.annotationSelector": "honoured",
  "postRenderers.kustomize.images": "honoured",
  "postRenderers.kustomize.images.name": "honoured",
  "postRenderers.kustomize.images.newName": "honoured",
  "postRenderers.kustomize.images.newTag": "honoured",
  "postRenderers.kustomize.images.digest": "honoured",
  postRenderStrategy: { refused: "only Helm's post-render strategy is implemented" },
  waitStrategy: { refused: "only Helm's default wait strategy is used" },
  healthCheckExprs: { refused: "CEL health expressions are not evaluated" },
};

const Remediation = z.looseObject({
  retries: z.number().int().optional(),
  remediateLastFailure: z.boolean().optional(),
  ignoreTestFailures: z.boolean().optional(),
  strategy: z.enum(["rollback", "uninstall"]).optional(),
});

/** Flux's kustomize Selector (patch targets, drift ignore rules). */
export const Selector = z.looseObject({
  group: z.string().optional(),
  version: z.string().optional(),
  kind: z.string().optional(),
  name: z.string().optional(),
  namespace: z.string().optional(),
  labelSelector: z.string().optional(),
  annotationSelector: z.string().optional(),
});
export type Selector = z.infer<typeof Selector>;

const ActionFlags = {
  timeout: Duration.optional(),
  disableWait: z.boolean().optional(),
  disableWaitForJobs: z.boolean().optional(),
  disableHooks: z.boolean().optional(),
  disableTakeOwnership: z.boolean().optional(),
  disableOpenAPIValidation: z.boolean().optional(),
  disableSchemaValidation: z.boolean().optional(),
};

export const ChartTemplateSpec = z.looseObject({
  chart: z.string().min(1).max(2048),
  version: z.string().optional(),
  sourceRef: z.looseObject({
    kind: z.enum(["HelmRepository", "GitRepository", "Bucket"]),
    name: z.string().min(1),
    namespace: z.string().optional(),
    apiVersion: z.string().optional(),
  }),
  interval: Duration.optional(),
  reconcileStrategy: z.enum(["ChartVersion", "Revision"]).optional(),
  valuesFiles: z.array(z.string()).optional(),
  ignoreMissingValuesFiles: z.boolean().optional(),
});

export const HelmReleaseSpec = z
  .looseObject({
    chart: z
      .looseObject({
        metadata: z
          .looseObject({
            labels: z.record(z.string(), z.string()).optional(),
            annotations: z.record(z.string(), z.string()).optional(),
          })
          .optional(),
        spec: ChartTemplateSpec,
      })
      .optional(),
    chartRef: z
      .looseObject({
        kind: z.enum(["OCIRepository", "HelmChart", "ExternalArtifact"]),
        name: z.string().min(1),
        namespace: z.string().optional(),
        apiVersion: z.string().optional(),
      })
      .optional(),
    interval: Duration,
    suspend: z.boolean().optional(),
    releaseName: z.string().min(1).max(53).optional(),
    targetNamespace: z.string().min(1).max(63).optional(),
    storageNamespace: z.string().min(1).max(63).optional(),
    dependsOn: z
      .array(z.looseObject({ name: z.string().min(1), namespace: z.string().optional() }))
      .optional(),
    timeout: Duration.optional(),
    maxHistory: z.number().int().min(0).optional(),
    install: z
      .looseObject({
        ...ActionFlags,
        remediation: Remediation.optional(),
        skipCRDs: z.boolean().optional(),
        crds: z.enum(["Skip", "Create", "CreateReplace"]).optional(),
        createNamespace: z.boolean().optional(),
      })
      .optional(),
    upgrade: z
      .looseObject({
        ...ActionFlags,
        remediation: Remediation.optional(),
        cleanupOnFail: z.boolean().optional(),
        force: z.boolean().optional(),
        crds: z.enum(["Skip", "Create", "CreateReplace"]).optional(),
      })
      .optional(),
    rollback: z
      .looseObject({ ...ActionFlags, cleanupOnFail: z.boolean().optional(), force: z.boolean().optional() })
      .optional(),
    uninstall: z
      .looseObject({
        timeout: Duration.optional(),
        disableHooks: z.boolean().optional(),
        keepHistory: z.boolean().optional(),
        disableWait: z.boolean().optional(),
        deletionPropagation: z.enum(["background", "foreground", "orphan"]).optional(),
      })
      .optional(),
    valuesFrom: z
      .array(
        z.looseObject({
          kind: z.enum(["ConfigMap", "Secret"]),
          name: z.string().min(1).max(253),
          valuesKey: z.string().max(253).optional(),
          targetPath: z.string().max(250).optional(),
          optional: z.boolean().optional(),
          literal: z.boolean().optional(),
        }),
      )
      .optional(),
    values: z.record(z.string(), z.unknown()).nullish(),
    postRenderers: z
      .array(
        z.looseObject({
          kustomize: z
            .looseObject({
              patches: z
                .array(z.looseObject({ patch: z.string().min(1), target: Selector.optional() }))
                .optional(),
              images: z
                .array(
                  z.looseObject({
                    name: z.string().min(1),
                    newName: z.string().optional(),
                    newTag: z.string().optional(),
                    digest: z.string().optional(),
                  }),
                )
                .optional(),
            })
            .optional(),
        }),
      )
      .optional(),
    commonMetadata: z
      .looseObject({
        labels: z.record(z.string(), z.string()).optional(),
        annotations: z.record(z.string(), z.string()).optional(),
      })
      .optional(),
    driftDetection: z
      .looseObject({
        mode: z.enum(["enabled", "warn", "disabled"]).optional(),
        ignore: z
          .array(z.looseObject({ paths: z.array(z.string()).min(1), target: Selector.optional() }))
          .optional(),
      })
      .optional(),
    test: z
      .looseObject({
        enable: z.boolean().optional(),
        timeout: Duration.optional(),
        ignoreFailures: z.boolean().optional(),
        filters: z
          .array(z.looseObject({ name: z.string().min(1), exclude: z.boolean().optional() }))
          .optional(),
      })
      .optional(),
  })
  .refine((s) => (s.chart === undefined) !== (s.chartRef === undefined), {
    message: "either chart or chartRef must be set",
    path: ["chart"],
  });
export type HelmReleaseSpec = z.infer<typeof HelmReleaseSpec>;

/** helm-controller's remediation defaults: remediateLastFailure follows `retries > 0` unless set. */
export function remediationOf(r: z.infer<typeof Remediation> | undefined): {
  retries: number;
  remediateLastFailure: boolean;
} {
  const retries = r?.retries ?? 0;
  return { retries, remediateLastFailure: r?.remediateLastFailure ?? retries > 0 };
}
