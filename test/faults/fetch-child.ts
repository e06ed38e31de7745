/**
 * A child process for test/faults/agent-checkout-kill.test.ts: fetches one
 * git source into a working copy, as the agent does, and prints the
 * revision. The test kills it with SIGKILL at seeded instants.
 * Usage: node fetch-child.ts <url> <branch> <workdir> [<ignore>]
 */
import { GitSource } from "../../src/agent/git-source.ts";

const [url, branch, workdir, ignore] = process.argv.slice(2);
if (!url || !branch || !workdir) {
  console.error("usage: fetch-child.ts <url> <branch> <workdir> [<ignore>]");
  process.exit(2);
}
const artifact = await new GitSource({ url, branch, workdir }).fetch(ignore || undefined);
console.log(artifact.revision);
