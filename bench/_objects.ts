/** The object mix the agent benchmarks apply: the same shapes for every peer. */
/** N objects over two namespaces: ConfigMaps, Secrets, ServiceAccounts and Deployments. */
export function benchObjects(prefix: string, N: number): object[] {
  const ns = [`${prefix}-a`, `${prefix}-b`];
  const out: object[] = ns.map((name) => ({ apiVersion: "v1", kind: "Namespace", metadata: { name } }));
  for (let i = 0; out.length < N; i++) {
    const namespace = ns[i % 2];
    const name = `obj-${i}`;
    switch (i % 5) {
      case 0:
      case 1:
        out.push({
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name, namespace },
          data: { index: String(i), payload: "x".repeat(200) },
        });
        break;
      case 2:
        out.push({
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name, namespace },
          stringData: { token: `t-${i}` },
        });
        break;
      case 3:
        out.push({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace } });
        break;
      default:
        out.push({
          apiVersion: "apps/v1",
          kind: "Deployment",
          metadata: { name, namespace, labels: { app: name } },
          spec: {
            replicas: 2,
            selector: { matchLabels: { app: name } },
            template: {
              metadata: { labels: { app: name } },
              spec: {
                containers: [
                  {
                    name: "app",
                    image: `nginx:1.27.${i % 10}`,
                    ports: [{ containerPort: 80 }],
                    resources: { requests: { cpu: "10m", memory: "16Mi" } },
                  },
                ],
              },
            },
          },
        });
    }
  }
  return out;
}
