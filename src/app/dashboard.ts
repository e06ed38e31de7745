/**
 * The dashboard issue of a fleet repository, in the spirit of Renovate's
 * dependency dashboard: every tracked image, the version each environment
 * runs (as git pins it), the newest version its policy allows, the open
 * requests, and what went wrong. `renderDashboard` is pure; the readers
 * below only read a checkout.
 */
import type { Fleet } from "../config/fleet.ts";
import type { Policy } from "../config/types.ts";
import type { SelectionStrategy } from "../policy/types.ts";
import { scanPins, versionOf } from "../promote/pins.ts";
import { readTree, type TreeSource } from "../update/fs.ts";
import { normaliseImage, shortImage } from "../webhooks/events.ts";

export const DASHBOARD_MARKER = "<!-- shipmate:dashboard -->";
export const DASHBOARD_TITLE = "shipmate dashboard";

export interface DashboardImage {
  /** Normalised repository. */
  image: string;
  /** Policies watching it, `id: rule`. */
  policies: string[];
  /** Environment → versions pinned there (`tag[@digest]`). */
  deployed: Record<string, string[]>;
  /** The newest version the updatable policy allows, or why there is none; absent before the first scan. */
  available?: { version: string } | { error: string };
}

export interface DashboardData {
  environments: string[];
  images: DashboardImage[];
  requests: { number: number; url: string; title: string }[];
  errors: string[];
  /** When the data was gathered (ISO 8601). */
  updatedAt: string;
}

export function ruleOf(strategy: SelectionStrategy): string {
  switch (strategy.kind) {
    case "semver":
      return `semver ${strategy.range}`;
    case "alphabetical":
    case "numerical":
      return `${strategy.kind} ${strategy.order}`;
    case "newestBuild":
      return "newest build";
    case "digest":
      return `digest of ${strategy.tag}`;
  }
}

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
const code = (s: string) => `\`${s.replace(/`/g, "'")}\``;

export function renderDashboard(d: DashboardData): string {
  const out = [
    DASHBOARD_MARKER,
    "This issue lists what shipmate tracks in this repository and keeps itself up to date. Comment `/shipmate rescan` to scan now, or `/shipmate promote <environment>` to promote.",
    "",
    "## Tracked images",
    "",
  ];
  if (d.images.length === 0) out.push("No image policy is defined here yet.", "");
  else {
    const head = ["Image", "Policy", ...d.environments, "Available"];
    out.push(`| ${head.map(cell).join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`);
    for (const i of d.images) {
      const envs = d.environments.map((e) =>
        i.deployed[e]?.length ? i.deployed[e].map(code).join(", ") : "—",
      );
      const available =
        i.available === undefined
          ? "not scanned yet"
          : "version" in i.available
            ? code(i.available.version)
            : `⚠️ ${i.available.error}`;
      out.push(
        `| ${[shortImage(i.image), i.policies.join("<br>"), ...envs, available].map(cell).join(" | ")} |`,
      );
    }
    out.push("");
  }
  out.push("## Open requests", "");
  if (d.requests.length === 0) out.push("None.", "");
  else {
    for (const r of d.requests) out.push(`- [#${r.number}](${r.url}) ${cell(r.title)}`);
    out.push("");
  }
  out.push("## Errors", "");
  if (d.errors.length === 0) out.push("None.", "");
  else {
    for (const e of d.errors) out.push(`- ${cell(e)}`);
    out.push("");
  }
  out.push(`<sub>Updated ${d.updatedAt}.</sub>`, "");
  return out.join("\n");
}

/** Environments (from shipmate.yaml, or the whole repository as one) and the versions each pins per image. */
export function readDeployed(
  root: string | TreeSource,
  fleet: Fleet | undefined,
  images: ReadonlySet<string>,
): { environments: string[]; deployed: Map<string, Record<string, string[]>> } {
  const envs = fleet
    ? fleet.spec.environments.filter((e) => !e.repository).map((e) => ({ name: e.name, path: e.path }))
    : [{ name: "repository", path: "." }];
  const deployed = new Map<string, Record<string, string[]>>();
  for (const env of envs) {
    const tree = readTree(root, { ...(env.path !== "." ? { subdir: env.path } : {}), claimed: () => true });
    for (const f of tree.files) {
      for (const site of scanPins(f.path, f.content).sites) {
        if (!images.has(site.repository)) continue;
        const row = deployed.get(site.repository) ?? {};
        const versions = row[env.name] ?? [];
        const v = versionOf(site);
        if (v && !versions.includes(v)) versions.push(v);
        row[env.name] = versions;
        deployed.set(site.repository, row);
      }
    }
  }
  return { environments: envs.map((e) => e.name), deployed };
}

/** Tracked images from the policies, in a stable order. */
export function trackedImages(policies: readonly Policy[]): Map<string, string[]> {
  const byImage = new Map<string, string[]>();
  for (const p of policies) {
    const image = normaliseImage(p.image);
    if (!image) continue;
    const list = byImage.get(image) ?? [];
    list.push(`${p.id}: ${ruleOf(p.selection.strategy)}`);
    byImage.set(image, list);
  }
  return new Map([...byImage].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
