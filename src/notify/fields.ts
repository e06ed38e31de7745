/**
 * Every spec field of Flux's v1beta3 Alert and Provider, honoured or refused
 * with the reason (src/agent/fields/support.ts: fail closed). Registered in
 * src/agent/fields/tables.ts, so test/agent/fields.crd.test.ts holds them
 * against Flux's CRDs and docs/flux-compat.md lists them.
 */
import type { FieldTable } from "../agent/fields/support.ts";

export const NOTIFICATION_GROUP = "notification.toolkit.fluxcd.io";

export const ALERT_FIELDS: FieldTable = {
  providerRef: "honoured",
  eventSeverity: "honoured",
  eventSources: "honoured",
  "eventSources.apiVersion": "honoured",
  "eventSources.kind": "honoured",
  "eventSources.name": "honoured",
  "eventSources.namespace": "honoured",
  "eventSources.matchLabels": "honoured",
  inclusionList: "honoured",
  exclusionList: "honoured",
  eventMetadata: "honoured",
  summary: "honoured",
  suspend: "honoured",
};

export const PROVIDER_FIELDS: FieldTable = {
  type: "honoured",
  address: "honoured",
  channel: "honoured",
  username: "honoured",
  secretRef: "honoured",
  timeout: "honoured",
  suspend: "honoured",
  // Deprecated and unused in v1beta3: Flux ignores it, and so does shipmate.
  interval: "honoured",
  certSecretRef: { refused: "a custom CA or client certificate for a provider is not implemented" },
  proxy: { refused: "sending notifications through a proxy is not implemented" },
  proxySecretRef: { refused: "sending notifications through a proxy is not implemented" },
  serviceAccountName: {
    refused: "workload identity (azureeventhub, azuredevops, googlepubsub) is not implemented",
  },
  commitStatusExpr: {
    refused: "CEL commit status expressions are not implemented (the description is Flux's default)",
  },
};
