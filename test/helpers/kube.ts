/**
 * The setup every API-server suite shares, written once: one kube-apiserver
 * per file (started beside the file's other servers), Flux's CRDs a suite
 * names installed, RBAC aggregation, namespaces; fleet repositories and
 * in-process agents made through the suite are removed and closed when the
 * file ends, with the API server. Registers its own beforeAll/afterAll.
 */
import type { Logger } from "pino";
import { afterAll, beforeAll } from "vitest";
import type { Agent, AgentOptions } from "../../src/agent/agent.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import {
  adminClient,
  aggregateClusterRoles,
  FleetRepo,
  installFluxCrds,
  makeAgent,
  namespace,
  silent,
} from "../agent/helpers.ts";
import { type KubeCluster, startKube } from "../infra/kube.ts";

export interface KubeSuiteOptions {
  /** Names the API server's scratch directory. */
  name: string;
  /** Files of Flux's CRD folder (src/validate/crds.ts) to install, e.g. `image.toolkit.fluxcd.io_imagepolicies.yaml`. */
  fluxCrds?: string[];
  /** The aggregated ClusterRoles (admin, edit, view) a controller-manager would fill. */
  aggregateRoles?: boolean;
  /** Namespaces to create (with labels where given). */
  namespaces?: (string | { name: string; labels: Record<string, string> })[];
  /** Other servers of the file, started at the same time as the API server. */
  alongside?: () => Promise<unknown>;
}

export interface KubeSuite {
  readonly kube: KubeCluster;
  /** An admin client, closed at the end. */
  readonly client: KubeClient;
  /** A new fleet repository, removed at the end. */
  fleet(): FleetRepo;
  /** An in-process agent for `repo` (test/agent/helpers.ts makeAgent, silent unless `log`), closed at the end. */
  agent(repo: FleetRepo, name: string, extra?: Partial<AgentOptions>, log?: Logger): Agent;
  /** A new fleet repository and its agent. */
  setup(name: string, extra?: Partial<AgentOptions>): { repo: FleetRepo; agent: Agent };
}

export function kubeSuite(opts: KubeSuiteOptions): KubeSuite {
  let kube: KubeCluster | undefined;
  let client: KubeClient | undefined;
  const repos: FleetRepo[] = [];
  const agents: Agent[] = [];
  const started = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`kubeSuite ${opts.name}: ${what} is read before beforeAll ran`);
    return v;
  };
  const suite: KubeSuite = {
    get kube() {
      return started(kube, "kube");
    },
    get client() {
      return started(client, "client");
    },
    fleet() {
      const r = FleetRepo.create();
      repos.push(r);
      return r;
    },
    agent(repo, name, extra = {}, log = silent) {
      const a = makeAgent(suite.kube, repo, { name, ...extra }, log);
      agents.push(a);
      return a;
    },
    setup(name, extra = {}) {
      const repo = suite.fleet();
      return { repo, agent: suite.agent(repo, name, extra) };
    },
  };
  beforeAll(async () => {
    [kube] = await Promise.all([startKube({ name: opts.name }), opts.alongside?.()]);
    client = adminClient(kube);
    if (opts.fluxCrds?.length) await installFluxCrds(client, opts.fluxCrds);
    if (opts.aggregateRoles) await aggregateClusterRoles(client);
    for (const ns of opts.namespaces ?? []) {
      const { name, labels } = typeof ns === "string" ? { name: ns, labels: undefined } : ns;
      const body = { ...namespace(name), metadata: { name, ...(labels ? { labels } : {}) } };
      const res = await client.raw({ method: "POST", path: "/api/v1/namespaces", body });
      if (res.code !== 201) throw new Error(`namespace ${name}: ${res.code} ${JSON.stringify(res.body)}`);
    }
  });
  afterAll(async () => {
    for (const a of agents) a.close();
    client?.close();
    for (const r of repos) r.remove();
    await kube?.stop();
  });
  return suite;
}
