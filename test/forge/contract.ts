/**
 * The forge contract: what every provider must do with a request, written
 * once and run by each provider's test file against its server (GitHub and
 * GitLab fakes validated against their OpenAPI descriptions, a real Gitea).
 * A provider file starts its server in beforeAll and hands `forgeContract`
 * an adapter that drives and inspects that server; what only one forge does
 * (reviewers, auto-merge, its rate-limit headers, its scopes) stays in the
 * provider's own file.
 */
import { describe, expect, it } from "vitest";
import { makeMeta, parseMeta } from "../../src/forge/body.ts";
import { ForgeAuthError, ForgeNotFoundError } from "../../src/forge/errors.ts";
import type { CheckRun, Forge, ImageChange, PullRequestSpec } from "../../src/forge/types.ts";

/** An open request as the server holds it. */
export interface OpenRequest {
  number: number;
  body: string;
  labels: string[];
}

/** Any request as the server holds it, with the comments on it. */
export interface HeldRequest {
  state: "open" | "closed" | "merged";
  comments: string[];
}

/** One provider against its server, as the contract drives it. */
export interface ForgeUnderTest {
  /** The forge's name in messages (`GitHub`) and the repository the forge below works on. */
  label: string;
  repo: string;
  /** What its requests are called in messages: `pull requests`, `merge requests`. */
  requests: string;
  forge(): Forge;
  /** A forge whose token the server rejects (expired or revoked), its source named `tokenSource`. */
  rejectedToken(tokenSource: string): Forge;
  /** A forge on a repository that does not exist, and that repository's name. */
  missingRepo(): { forge: Forge; repo: string };
  /** Pushes a commit writing `content` to branch `branch` (created from main); its SHA. */
  push(branch: string, content: string): Promise<string>;
  /** The open requests whose head is `branch`. */
  open(branch: string): Promise<OpenRequest[]>;
  request(number: number): Promise<HeldRequest>;
  branchExists(branch: string): Promise<boolean>;
  /** A person closes request `number` without merging; who the provider should report as closing it, when it reads that. */
  closeAsPerson(number: number): Promise<string | undefined>;
  setStatus(sha: string, name: string, state: CheckRun["state"]): Promise<void>;
}

const change = (to: string): ImageChange => ({
  image: "127.0.0.1:5000/team/app",
  from: "1.0.0",
  to,
  policy: "flux-system:app",
  files: ["clusters/production/app.yaml"],
});

/** A request proposing the contract's image at version `to` from bot branch `branch`. */
export const requestSpec = (
  branch: string,
  to: string,
  extra: Partial<PullRequestSpec> = {},
): PullRequestSpec => ({
  branch,
  base: "main",
  title: `Update images (${branch})`,
  meta: makeMeta([change(to)]),
  ...extra,
});

const LABELS = ["shipmate", "production"];

let commits = 0;
/** `push` and `branchExists` over a fake forge's branch map: each push a new SHA. */
export function fakeBranches(branches: Map<string, string>): Pick<ForgeUnderTest, "push" | "branchExists"> {
  return {
    push: async (branch) => {
      const sha = `${++commits}`.padStart(40, "c");
      branches.set(branch, sha);
      return sha;
    },
    branchExists: async (branch) => branches.has(branch),
  };
}

/** The contract's scenarios; they run in order and share one repository (bot branches `shipmate/contract-*`). */
export function forgeContract(name: string, under: () => ForgeUnderTest): void {
  describe(`${name}: the forge contract`, () => {
    const open = "shipmate/contract-open";

    it("opens one request for a bot branch, with the table, the hidden block and the labels", async () => {
      const u = under();
      await u.push(open, "image: app:1.1.0\n");
      const res = await u.forge().ensurePullRequest(requestSpec(open, "1.1.0", { labels: LABELS }));
      expect(res.action).toBe("opened");
      const [pr, ...others] = await u.open(open);
      expect(others).toEqual([]);
      expect(pr?.number).toBe(res.pullRequest.number);
      expect(pr?.body).toContain("| `127.0.0.1:5000/team/app` | `1.0.0` | `1.1.0` | `flux-system:app` |");
      expect(parseMeta(pr?.body)?.changes).toEqual([change("1.1.0")]);
      expect(pr?.labels.slice().sort()).toEqual(["production", "shipmate"]);
    });

    it("a run with nothing new sends one request (the listing) and changes nothing", async () => {
      const f = under().forge();
      const known = await f.listOpenPullRequests("shipmate/");
      const res = await f.ensurePullRequest(requestSpec(open, "1.1.0", { labels: LABELS }), known);
      expect(res.action).toBe("unchanged");
      expect(f.requestCount).toBe(1);
    });

    it("a newer change set updates the open request instead of opening another", async () => {
      const u = under();
      await u.push(open, "image: app:1.2.0\n");
      const res = await u.forge().ensurePullRequest(requestSpec(open, "1.2.0"));
      expect(res.action).toBe("updated");
      const pulls = await u.open(open);
      expect(pulls).toHaveLength(1);
      expect(parseMeta(pulls[0]?.body)?.changes[0]?.to).toBe("1.2.0");
    });

    it("a stale listing that missed the open request adopts it on the forge's 'already exists', never a second", async () => {
      const u = under();
      const res = await u.forge().ensurePullRequest(requestSpec(open, "1.3.0"), []);
      expect(res.action).toBe("updated");
      expect(await u.open(open)).toHaveLength(1);
    });

    it("close-when-obsolete: comments, closes and deletes the bot branch; then nothing is left to close", async () => {
      const u = under();
      const branch = "shipmate/contract-stale";
      await u.push(branch, "image: app:9\n");
      const f = u.forge();
      const { pullRequest } = await f.ensurePullRequest(requestSpec(branch, "9.0.0"));
      expect(await f.closeStale(branch, "Nothing left to update: closing.")).toBe(true);
      const after = await u.request(pullRequest.number);
      expect(after.state).toBe("closed");
      expect(after.comments).toEqual(["Nothing left to update: closing."]);
      expect(await u.branchExists(branch)).toBe(false);
      expect(await f.closeStale(branch, "again")).toBe(false);
    });

    it("closed by a person: the same proposal is not reopened; a different one is", async () => {
      const u = under();
      const branch = "shipmate/contract-declined";
      await u.push(branch, "image: app:2\n");
      const first = await u.forge().ensurePullRequest(requestSpec(branch, "2.0.0"));
      const closer = await u.closeAsPerson(first.pullRequest.number);
      const again = await u.forge().ensurePullRequest(requestSpec(branch, "2.0.0"));
      expect(again.action).toBe("declined");
      expect(again.pullRequest.closedBy).toBe(closer);
      expect(await u.open(branch)).toHaveLength(0);
      const newer = await u.forge().ensurePullRequest(requestSpec(branch, "2.1.0"));
      expect(newer.action).toBe("opened");
      expect(newer.pullRequest.number).not.toBe(first.pullRequest.number);
    });

    it("commit checks: none, then failure wins over success", async () => {
      const u = under();
      const sha = await u.push("contract-checks", "x\n");
      const f = u.forge();
      expect(await f.commitChecks(sha)).toEqual({ sha, state: "none", checks: [] });
      await u.setStatus(sha, "build", "success");
      await u.setStatus(sha, "e2e", "failure");
      const checks = await f.commitChecks(sha);
      expect(checks.state).toBe("failure");
      expect(checks.checks.map((c) => `${c.name}=${c.state}`).sort()).toEqual([
        "build=success",
        "e2e=failure",
      ]);
    });

    it("an expired or revoked token is named as such, with where it came from", async () => {
      const u = under();
      const err = await u
        .rejectedToken("$FORGE_TOKEN")
        .listOpenPullRequests("shipmate/")
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ForgeAuthError);
      expect((err as Error).message).toBe(
        `${u.label} ${u.repo}: the token was rejected (expired, revoked or missing) while trying to list open ${u.requests}; set a valid token in $FORGE_TOKEN`,
      );
    });

    it("a repository that does not exist is a 404 naming it", async () => {
      const u = under();
      const { forge, repo } = u.missingRepo();
      const err = await forge.listOpenPullRequests("shipmate/").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ForgeNotFoundError);
      expect(
        (err as Error).message.startsWith(
          `${u.label} ${repo}: not found while trying to list open ${u.requests}`,
        ),
      ).toBe(true);
    });
  });
}
