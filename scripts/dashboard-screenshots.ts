/**
 * Screenshots of the dashboard for docs/dashboard.md, taken from the browser
 * test's own world (test/dashboard/fixture.ts: a real kube-apiserver with the
 * agent, a fleet on Gitea, Debian's chromium), so the pictures stay true to
 * what the page shows.
 *
 *   source scripts/env.sh && export PATH=$HOME/.cache/shipmate/bin:$PATH
 *   node scripts/dashboard-screenshots.ts          (writes docs/images/dashboard-*.png)
 */
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { overlay, startWorld } from "../test/dashboard/fixture.ts";

const out = join(dirname(fileURLToPath(import.meta.url)), "..", "docs", "images");
mkdirSync(out, { recursive: true });

const w = await startWorld();
try {
  const context = await w.browser.newContext({
    viewport: { width: 1200, height: 900 },
    extraHTTPHeaders: { "x-forwarded-user": "alice", "x-forwarded-groups": "ops" },
  });
  const page = await context.newPage();
  const base = `${w.proxied.url}/dashboard`;
  await page.goto(`${base}/`);
  // Wait until the agent's objects fill the cells (the failing app included).
  await page.locator('tr[data-app="web"] td[data-env="production"] .cluster').waitFor({ timeout: 60_000 });
  await page.locator('tr[data-app="jobs"] .mark.failing').waitFor({ timeout: 60_000 });
  // A second version in staging, so the app page's timeline has more than one bar.
  await w.push({ "apps/staging/web/kustomization.yaml": overlay("dash-staging", "1.1.0") });
  await page
    .locator('tr[data-app="web"] td[data-env="staging"] .cluster', { hasText: "1.1.0" })
    .waitFor({ timeout: 60_000 });
  for (const [name, path] of [
    ["matrix", "/"],
    ["promotions", "/promotions"],
    ["cluster", "/cluster"],
    ["app", "/apps/web"],
  ] as const) {
    await page.goto(`${base}${path}`);
    await page.locator("#main section").first().waitFor();
    const file = join(out, `dashboard-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    console.log(file);
  }
  await context.close();
} finally {
  await w.close();
}
