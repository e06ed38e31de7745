/**
 * The shapes the dashboard shows, shared by the server's read model
 * (./model.ts) and the browser bundle: types only, no imports, so the
 * client's type check never sees a Node module.
 */

/** A gate's verdict as src/promote/gates.ts gives it. */
export interface GateView {
  gate: string;
  state: "passed" | "waiting" | "failed" | "not-evaluated";
  message: string;
}

/** An image version as a cell shows it. */
export interface Version {
  image: string;
  repository: string;
  tag?: string;
  digest?: string;
}

export type Mark = "behind" | "drifted" | "pending" | "failing";

export interface Cell {
  app: string;
  env: string;
  /** What git pins, one per image. */
  git: Version[];
  /** What the cluster runs for those images (undefined: no agent object covers the cell). */
  cluster?: Version[];
  /** The newest tag the environment's policy allows, per repository, when a scan said. */
  newest?: Version[];
  /** The Kustomization that applies the cell, with its Ready state. */
  kustomization?: { namespace: string; name: string; ready: string; reason: string; message: string };
  marks: Mark[];
  request?: { number: number; url: string };
}

export interface Row {
  app: string;
  /** The team that owns the app, as the fleet's scaffold manifest records it. */
  team?: string;
  /** One per environment, in shipmate.yaml order; undefined where the app does not run. */
  cells: (Cell | undefined)[];
}

export interface PromotionView {
  from: string;
  to: string;
  changes: { app: string; image: string; from: string; to: string }[];
  gates: GateView[];
  gateState: "passed" | "waiting" | "failed";
  problems: string[];
  request?: { number: number; url: string; title: string };
}

export interface ClusterRow {
  kind: string;
  namespace: string;
  name: string;
  ready: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  revision: string;
  suspended: boolean;
  /** When Ready last changed. */
  since: string;
  inventory?: number;
  /** The environment whose manifests it applies (Kustomizations), when shipmate.yaml tells. */
  env?: string;
}

/** A Kubernetes Event about a Flux object (what the agent reported on it). */
export interface EventRow {
  /** The object it is about. */
  kind: string;
  namespace: string;
  name: string;
  type: string;
  reason: string;
  message: string;
  /** When it last happened. */
  time: string;
  count: number;
}

export interface PolicyRow {
  id: string;
  env?: string;
  image: string;
  strategy: string;
  selected?: { tag: string; digest?: string };
  /** Why nothing was selected, when the scan said so. */
  reason?: string;
  scannedAt?: string;
  /** What the last scan cost at the registry for the policy's repository, and how many policies share it. */
  cost?: { requests: number; sharedBy: number };
}

export interface FleetView {
  name: string;
  revision: string;
  environments: string[];
  /** The fleet's teams (sorted; empty when the fleet records none). */
  teams: string[];
  rows: Row[];
  promotions: PromotionView[];
  cluster?: {
    connected: boolean;
    error?: string;
    missing: string[];
    rows: ClusterRow[];
    /** Events about the Flux objects, newest first. */
    events: EventRow[];
  };
  policies: PolicyRow[];
  problems: string[];
}

export interface HistoryEntry {
  commit: string;
  author: string;
  email: string;
  /** Whether the author looks like a bot (shipmate's own identity, `[bot]`, noreply addresses of bots). */
  bot: boolean;
  time: string;
  subject: string;
  /** Image versions it moved: `image from → to`. */
  moves: { image: string; from: string; to: string }[];
}

/** An app's history in one environment, as its page shows it. */
export interface AppHistory {
  env: string;
  path: string;
  /** Newest first. */
  entries: HistoryEntry[];
  /** Every commit that touched the folder is in `entries` (not cut at the limit). */
  complete: boolean;
}
