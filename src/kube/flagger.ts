/**
 * Flagger's Canary as shipmate reads it from the API server, shared by the
 * agent (it reports Canary outcomes on the Kustomization that applied them)
 * and the promotion gates (canary gate, rollback requests): the group, the
 * one version Flagger serves, and the status fields both read.
 */
import { z } from "zod";

export const FLAGGER_GROUP = "flagger.app";
/** The one version Flagger serves. */
export const CANARY_API_VERSION = `${FLAGGER_GROUP}/v1beta1`;

// Flagger's CanaryStatus (pkg/apis/flagger/v1beta1/status.go), the fields read here.
export const CanaryStatusSchema = z.looseObject({
  phase: z.string().optional(),
  failedChecks: z.number().optional(),
  canaryWeight: z.number().optional(),
  iterations: z.number().optional(),
  lastTransitionTime: z.string().optional(),
  conditions: z.array(z.looseObject({ type: z.string(), message: z.string().optional() })).optional(),
});
export type CanaryStatus = z.infer<typeof CanaryStatusSchema>;
