/**
 * Flux's image reflection kinds as the agent reads them from the cluster
 * (`image.toolkit.fluxcd.io/v1` ImageRepository and ImagePolicy, Flux's
 * image-reflector-controller v1.2 CRDs): their field tables (honoured or
 * refused, ../fields/) and the specs the reflector parses.
 */
import { z } from "zod";
import type { FieldTable } from "../fields/support.ts";

export const IMAGE_GROUP = "image.toolkit.fluxcd.io";
export const IMAGE_API_VERSION = `${IMAGE_GROUP}/v1`;

/** ImageRepository spec fields (image-reflector-controller v1.2 CRD), honoured or refused. */
export const IMAGE_REPOSITORY_FIELDS: FieldTable = {
  image: "honoured",
  interval: "honoured",
  timeout: "honoured",
  suspend: "honoured",
  insecure: "honoured",
  exclusionList: "honoured",
  secretRef: "honoured",
  "secretRef.name": "honoured",
  accessFrom: "honoured",
  "accessFrom.namespaceSelectors": "honoured",
  "accessFrom.namespaceSelectors.matchLabels": "honoured",
  provider: {
    refused: "only generic registries (anonymous or a dockerconfigjson Secret) are implemented",
    accepts: ["generic"],
  },
  serviceAccountName: { refused: "the service account's imagePullSecrets are not read" },
  certSecretRef: { refused: "client TLS certificates and custom CAs are not implemented" },
  proxySecretRef: { refused: "reaching the registry through a proxy is not implemented" },
};

/** ImagePolicy spec fields (image-reflector-controller v1.2 CRD), honoured or refused. */
export const IMAGE_POLICY_FIELDS: FieldTable = {
  imageRepositoryRef: "honoured",
  "imageRepositoryRef.name": "honoured",
  "imageRepositoryRef.namespace": "honoured",
  policy: "honoured",
  "policy.semver": "honoured",
  "policy.semver.range": "honoured",
  "policy.alphabetical": "honoured",
  "policy.alphabetical.order": "honoured",
  "policy.numerical": "honoured",
  "policy.numerical.order": "honoured",
  filterTags: "honoured",
  "filterTags.pattern": "honoured",
  "filterTags.extract": "honoured",
  digestReflectionPolicy: "honoured",
  interval: "honoured",
  suspend: "honoured",
};

const Duration = z.string().regex(/^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/, "a duration such as 5m or 1h");

export const ImageRepositorySpec = z.looseObject({
  image: z.string().min(1),
  interval: Duration,
  timeout: Duration.optional(),
  suspend: z.boolean().optional(),
  insecure: z.boolean().optional(),
  exclusionList: z.array(z.string()).max(25).optional(),
  secretRef: z.object({ name: z.string().min(1) }).optional(),
  accessFrom: z
    .object({
      namespaceSelectors: z.array(z.object({ matchLabels: z.record(z.string(), z.string()).optional() })),
    })
    .optional(),
});
export type ImageRepositorySpec = z.infer<typeof ImageRepositorySpec>;

const Order = z.enum(["asc", "desc"]).optional();

export const ImagePolicySpec = z.looseObject({
  imageRepositoryRef: z.object({ name: z.string().min(1), namespace: z.string().optional() }),
  policy: z
    .object({
      semver: z.object({ range: z.string().min(1) }).optional(),
      alphabetical: z.object({ order: Order }).optional(),
      numerical: z.object({ order: Order }).optional(),
    })
    .refine((p) => p.semver || p.alphabetical || p.numerical, "one of semver, alphabetical, numerical"),
  filterTags: z.object({ pattern: z.string().optional(), extract: z.string().optional() }).optional(),
  digestReflectionPolicy: z.enum(["Always", "IfNotPresent", "Never"]).optional(),
  interval: Duration.optional(),
  suspend: z.boolean().optional(),
});
export type ImagePolicySpec = z.infer<typeof ImagePolicySpec>;

/** ImageUpdateAutomation spec fields (image-automation-controller v1.2 CRD), honoured or refused. */
export const IMAGE_UPDATE_AUTOMATION_FIELDS: FieldTable = {
  sourceRef: "honoured",
  "sourceRef.apiVersion": "honoured",
  "sourceRef.kind": "honoured",
  "sourceRef.name": "honoured",
  "sourceRef.namespace": "honoured",
  git: "honoured",
  "git.checkout": "honoured",
  "git.checkout.ref": "honoured",
  "git.checkout.ref.branch": "honoured",
  "git.checkout.ref.tag": "honoured",
  "git.checkout.ref.semver": "honoured",
  "git.checkout.ref.name": "honoured",
  "git.checkout.ref.commit": "honoured",
  "git.commit": "honoured",
  "git.commit.author": "honoured",
  "git.commit.author.name": "honoured",
  "git.commit.author.email": "honoured",
  "git.commit.messageTemplate": "honoured",
  "git.commit.messageTemplateValues": "honoured",
  "git.commit.signingKey": "honoured",
  "git.commit.signingKey.secretRef": "honoured",
  "git.commit.signingKey.secretRef.name": "honoured",
  "git.commit.signingKey.type": "honoured",
  "git.push": "honoured",
  "git.push.branch": "honoured",
  "git.push.refspec": "honoured",
  "git.push.options": "honoured",
  interval: "honoured",
  policySelector: "honoured",
  "policySelector.matchLabels": "honoured",
  "policySelector.matchExpressions": "honoured",
  "policySelector.matchExpressions.key": "honoured",
  "policySelector.matchExpressions.operator": "honoured",
  "policySelector.matchExpressions.values": "honoured",
  suspend: "honoured",
  update: "honoured",
  "update.path": "honoured",
  "update.strategy": "honoured",
};

const Selector = z.object({
  matchLabels: z.record(z.string(), z.string()).optional(),
  matchExpressions: z
    .array(
      z.object({
        key: z.string().min(1),
        operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"]),
        values: z.array(z.string()).optional(),
      }),
    )
    .optional(),
});
export type LabelSelector = z.infer<typeof Selector>;

export const ImageUpdateAutomationSpec = z.looseObject({
  sourceRef: z.object({
    apiVersion: z.string().optional(),
    kind: z.literal("GitRepository").default("GitRepository"),
    name: z.string().min(1),
    namespace: z.string().optional(),
  }),
  git: z.object({
    checkout: z
      .object({
        ref: z
          .object({
            branch: z.string().optional(),
            tag: z.string().optional(),
            semver: z.string().optional(),
            name: z.string().optional(),
            commit: z.string().optional(),
          })
          .optional(),
      })
      .optional(),
    commit: z.object({
      author: z.object({ name: z.string().optional(), email: z.string().min(1) }),
      messageTemplate: z.string().optional(),
      messageTemplateValues: z.record(z.string(), z.string()).optional(),
      signingKey: z
        .object({ secretRef: z.object({ name: z.string().min(1) }), type: z.enum(["gpg", "ssh"]).optional() })
        .optional(),
    }),
    push: z
      .object({
        branch: z.string().optional(),
        refspec: z.string().optional(),
        options: z.record(z.string(), z.string()).optional(),
      })
      .optional(),
  }),
  interval: Duration,
  policySelector: Selector.optional(),
  suspend: z.boolean().optional(),
  update: z.object({ path: z.string().optional(), strategy: z.literal("Setters").optional() }).optional(),
});
export type ImageUpdateAutomationSpec = z.infer<typeof ImageUpdateAutomationSpec>;
