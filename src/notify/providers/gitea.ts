/** `gitea`: a commit status on the revision an event names (./commitstatus.ts has the rules). */
import { commitStatusProvider } from "./commitstatus.ts";
import type { ProviderFactory } from "./types.ts";

export const gitea: ProviderFactory = (s) => commitStatusProvider("gitea", s);
