/**
 * The Flux quick start's cast, shared by the end-to-end test and
 * scripts/quickstart-full.ts: an application repository laid out like
 * podinfo's (a `kustomize/` folder with a Deployment, a Service and an HPA
 * with `minReplicas: 2`), the image policies the fleet adds for it, and a
 * working copy of a Gitea repository that commits and pushes as a person would.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export const APP = "podinfo";

/** podinfo's kustomize folder, trimmed to what the quick start looks at. */
export function podinfoFiles(image: string, opts: { hpa?: boolean } = {}): Record<string, string> {
  const hpa = opts.hpa ?? true;
  return {
    "kustomize/kustomization.yaml": [
      "apiVersion: kustomize.config.k8s.io/v1beta1",
      "kind: Kustomization",
      "resources:",
      "  - deployment.yaml",
      "  - service.yaml",
      ...(hpa ? ["  - hpa.yaml"] : []),
      "",
    ].join("\n"),
    "kustomize/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
spec:
  minReadySeconds: 3
  revisionHistoryLimit: 5
  progressDeadlineSeconds: 60
  strategy:
    rollingUpdate:
      maxUnavailable: 0
    type: RollingUpdate
  selector:
    matchLabels:
      app: podinfo
  template:
    metadata:
      labels:
        app: podinfo
    spec:
      containers:
        - name: podinfod
          image: ${image}
          command:
            - ./podinfo
            - --port=9898
          ports:
            - name: http
              containerPort: 9898
              protocol: TCP
          resources:
            limits:
              cpu: 2000m
              memory: 512Mi
            requests:
              cpu: 100m
              memory: 64Mi
`,
    "kustomize/service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: podinfo
spec:
  type: ClusterIP
  selector:
    app: podinfo
  ports:
    - name: http
      port: 9898
      protocol: TCP
      targetPort: http
`,
    ...(hpa
      ? {
          "kustomize/hpa.yaml": `apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: podinfo
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  minReplicas: 2
  maxReplicas: 4
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 99
`,
        }
      : {}),
  };
}

/** The ImageRepository and ImagePolicy that keep staging's podinfo on the newest 6.x tag (Flux's own kinds). */
export function podinfoPolicies(imageRepository: string): string {
  return `apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: podinfo
  namespace: shipmate-system
spec:
  image: ${imageRepository}
  interval: 1m
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: podinfo
  namespace: shipmate-system
spec:
  imageRepositoryRef:
    name: podinfo
  policy:
    semver:
      range: 6.x
`;
}

/** A git working copy of a repository on the forge, pushing with a token (never printed: tests and demo only). */
export class Checkout {
  readonly dir: string;
  private readonly url: string;

  constructor(authedUrl: string) {
    this.dir = mkdtempSync(join(tmpdir(), "shipmate-e2e-checkout-"));
    this.url = authedUrl;
    this.git("clone", "-q", authedUrl, ".");
  }

  git(...args: string[]): string {
    return execFileSync("git", args, {
      cwd: this.dir,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        GIT_TERMINAL_PROMPT: "0",
        GIT_AUTHOR_NAME: "A Person",
        GIT_AUTHOR_EMAIL: "person@example.test",
        GIT_COMMITTER_NAME: "A Person",
        GIT_COMMITTER_EMAIL: "person@example.test",
      },
    }).trim();
  }

  read(path: string): string {
    return readFileSync(join(this.dir, path), "utf8");
  }

  /** Writes files (null deletes), commits everything and pushes; returns the new commit. */
  commit(files: Record<string, string | null>, message: string): string {
    this.git("pull", "-q", "--rebase", this.url, "main");
    for (const [path, content] of Object.entries(files)) {
      const full = join(this.dir, path);
      if (content === null) rmSync(full, { force: true });
      else {
        mkdirSync(dirname(full), { recursive: true });
        writeFileSync(full, content);
      }
    }
    this.git("add", "-A");
    this.git("commit", "-q", "-m", message);
    this.git("push", "-q", this.url, "HEAD:refs/heads/main");
    return this.git("rev-parse", "HEAD");
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
