/**
 * dist/ is committed (JavaScript actions run it as is): it must be exactly
 * what scripts/build-action.ts makes from the sources and the lockfile.
 * Fix a failure with `node scripts/build-action.ts` and commit dist/.
 */
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { ACTION_FILES, buildAction } from "../../scripts/build-action.ts";
import { tempDir } from "../infra/git.ts";

const DIST = fileURLToPath(new URL("../../dist", import.meta.url));
const out = tempDir("shipmate-dist-");
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe("dist/", () => {
  it("matches a fresh build of src/action byte for byte", async () => {
    await buildAction(out);
    for (const file of ACTION_FILES) {
      const fresh = readFileSync(join(out, file));
      let committed: Buffer;
      try {
        committed = readFileSync(join(DIST, file));
      } catch {
        throw new Error(`dist/${file} is missing: run node scripts/build-action.ts and commit dist/`);
      }
      expect(
        fresh.equals(committed),
        `dist/${file} is stale: run node scripts/build-action.ts and commit dist/`,
      ).toBe(true);
    }
  });
});
