/**
 * Every Flux kind the agent reads, with its FieldTable: one line per kind.
 * test/agent/fields.crd.test.ts holds each table against Flux's CRD for the
 * kind, and scripts/gen-flux-compat.ts writes docs/flux-compat.md from them.
 */

import { ALERT_FIELDS, NOTIFICATION_GROUP, PROVIDER_FIELDS } from "../../notify/fields.ts";
import { HELM_RELEASE_FIELDS } from "../helm/spec.ts";
import {
  IMAGE_GROUP,
  IMAGE_POLICY_FIELDS,
  IMAGE_REPOSITORY_FIELDS,
  IMAGE_UPDATE_AUTOMATION_FIELDS,
} from "../images/spec.ts";
import { RECEIVER_FIELDS } from "../receiver/rules.ts";
import { BUCKET_FIELDS } from "../sources/bucket.ts";
import { EXTERNAL_ARTIFACT_FIELDS } from "../sources/external.ts";
import { GIT_REPOSITORY_FIELDS } from "../sources/git.ts";
import { HELM_CHART_FIELDS } from "../sources/helm-chart.ts";
import { HELM_REPOSITORY_FIELDS } from "../sources/helm-repository.ts";
import { OCI_REPOSITORY_FIELDS } from "../sources/oci.ts";
import { ARTIFACT_GENERATOR_FIELDS } from "./artifactgenerator.ts";
import { KUSTOMIZATION_FIELDS } from "./kustomization.ts";
import type { FieldTable } from "./support.ts";

export interface KindFields {
  /** The API group of the kind's CRD (`kustomize.toolkit.fluxcd.io`). */
  group: string;
  kind: string;
  fields: FieldTable;
}

export const FIELD_TABLES: readonly KindFields[] = [
  { group: "kustomize.toolkit.fluxcd.io", kind: "Kustomization", fields: KUSTOMIZATION_FIELDS },
  { group: "source.toolkit.fluxcd.io", kind: "GitRepository", fields: GIT_REPOSITORY_FIELDS },
  { group: "source.toolkit.fluxcd.io", kind: "OCIRepository", fields: OCI_REPOSITORY_FIELDS },
  { group: "source.toolkit.fluxcd.io", kind: "Bucket", fields: BUCKET_FIELDS },
  { group: "source.toolkit.fluxcd.io", kind: "ExternalArtifact", fields: EXTERNAL_ARTIFACT_FIELDS },
  { group: "source.extensions.fluxcd.io", kind: "ArtifactGenerator", fields: ARTIFACT_GENERATOR_FIELDS },
  { group: "source.toolkit.fluxcd.io", kind: "HelmRepository", fields: HELM_REPOSITORY_FIELDS },
  { group: "source.toolkit.fluxcd.io", kind: "HelmChart", fields: HELM_CHART_FIELDS },
  { group: "helm.toolkit.fluxcd.io", kind: "HelmRelease", fields: HELM_RELEASE_FIELDS },
  { group: IMAGE_GROUP, kind: "ImageRepository", fields: IMAGE_REPOSITORY_FIELDS },
  { group: IMAGE_GROUP, kind: "ImagePolicy", fields: IMAGE_POLICY_FIELDS },
  { group: NOTIFICATION_GROUP, kind: "Alert", fields: ALERT_FIELDS },
  { group: NOTIFICATION_GROUP, kind: "Provider", fields: PROVIDER_FIELDS },
  { group: IMAGE_GROUP, kind: "ImageUpdateAutomation", fields: IMAGE_UPDATE_AUTOMATION_FIELDS },
  { group: NOTIFICATION_GROUP, kind: "Receiver", fields: RECEIVER_FIELDS },
];
