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
  // Each Helm action is its own helm process, a fresh client either way.
  persistentClient: "honoured",
  driftDetection: "honoured",
  "driftDetection.mode": { refused: "drift detection is not implemented", accepts: ["disabled"] },
  "driftDetection.ignore": { refused: "drift detection is not implemented" },
  install: "honoured",
  "install.timeout": "honoured",
  "install.strategy": notImplemented("the install retry strategy"),
  "install.remediation": "honoured",
  "install.remediation.retries": "honoured",
  "install.remediation.remediateLastFailure": "honoured",
  "install.remediation.ignoreTestFailures": notImplemented("Helm tests"),
  "install.disableTakeOwnership": "honoured",
  "install.disableWait": "honoured",
  "install.disableWaitForJobs": "honoured",
  "install.disableHooks": "honoured",
  "install.disableOpenAPIValidation": "honoured",
  "install.disableSchemaValidation": "honoured",
  "install.replace": notImplemented("reusing a failed release name on install"),
  "install.skipCRDs": "honoured",
  "install.crds": {
    refused: "only Create (Helm's default) and Skip are implemented",
    accepts: ["Create", "Skip"],
  },
  "install.createNamespace": "honoured",
  "install.serverSideApply": { refused: "only Helm's default apply method is used", accepts: [true] },
  upgrade: "honoured",
  "upgrade.timeout": "honoured",
  "upgrade.strategy": notImplemented("the upgrade retry strategy"),
  "upgrade.remediation": "honoured",
  "upgrade.remediation.retries": "honoured",
  "upgrade.remediation.remediateLastFailure": "honoured",
  "upgrade.remediation.ignoreTestFailures": notImplemented("Helm tests"),
  "upgrade.remediation.strategy": {
    refused: "only rollback remediation is implemented",
    accepts: ["rollback"],
  },
  "upgrade.disableTakeOwnership": "honoured",
  "upgrade.disableWait": "honoured",
  "upgrade.disableWaitForJobs": "honoured",
  "upgrade.disableHooks": "honoured",
  "upgrade.disableOpenAPIValidation": "honoured",
  "upgrade.disableSchemaValidation": "honoured",
  "upgrade.force": notImplemented("forced resource replacement on upgrade"),
  "upgrade.preserveValues": notImplemented("reusing the last release's values"),
  "upgrade.cleanupOnFail": "honoured",
  "upgrade.crds": { refused: "only Skip (Helm's default for upgrades) is implemented", accepts: ["Skip"] },
  "upgrade.serverSideApply": { refused: "only Helm's default apply method is used", accepts: ["auto"] },
  "upgrade.chartNameChangeStrategy": notImplemented("a chart name change strategy"),
  test: "honoured",
  "test.enable": { refused: "Helm tests are not run", accepts: [false] },
  "test.timeout": notImplemented("Helm tests"),
  "test.ignoreFailures": notImplemented("Helm tests"),
  "test.filters": notImplemented("Helm tests"),
  rollback: "honoured",
  "rollback.timeout": "honoured",
  "rollback.disableWait": "honoured",
  "rollback.disableWaitForJobs": "honoured",
  "rollback.disableHooks": "honoured",
  "rollback.recreate": notImplemented("recreating pods on rollback"),
  "rollback.force": notImplemented("forced resource replacement on rollback"),
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
  commonMetadata: { refused: "common labels and annotations need a post-renderer, which is not implemented" },
  postRenderers: { refused: "post-renderers are not implemented" },
  postRenderStrategy: { refused: "post-renderers are not implemented" },
  waitStrategy: { refused: "only Helm's default wait strategy is used" },
  healthCheckExprs: { refused: "CEL health expressions are not evaluated" },
};

const Remediation = z.looseObject({
  retries: z.number().int().optional(),
  remediateLastFailure: z.boolean().optional(),
  strategy: z.string().optional(),
});

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
        crds: z.string().optional(),
        createNamespace: z.boolean().optional(),
      })
      .optional(),
    upgrade: z
      .looseObject({
        ...ActionFlags,
        remediation: Remediation.optional(),
        cleanupOnFail: z.boolean().optional(),
      })
      .optional(),
    rollback: z.looseObject({ ...ActionFlags, cleanupOnFail: z.boolean().optional() }).optional(),
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
