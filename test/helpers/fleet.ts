/**
 * A small fleet repository for the front-end tests: shipmate.yaml with
 * staging (pushed) and production (pull requests, promoted from staging),
 * one app with Flux setter markers in both environments, and the Flux
 * policies of each environment under policies/<env>.
 */

export function fluxPolicy(name: string, image: string, range = "^1.0.0"): string {
  return `apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: ${name}
  namespace: flux-system
spec:
  image: ${image}
  interval: 5m
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: ${name}
  namespace: flux-system
spec:
  imageRepositoryRef:
    name: ${name}
  policy:
    semver:
      range: "${range}"
`;
}

export function deployment(app: string, env: string, image: string, tag: string, policy: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${app}
  namespace: ${env}
spec:
  selector:
    matchLabels:
      app: ${app}
  template:
    metadata:
      labels:
        app: ${app}
    spec:
      containers:
        - name: ${app}
          image: ${image}:${tag} # {"$imagepolicy": "flux-system:${policy}"}
`;
}

export const FLEET_YAML = `apiVersion: shipmate.dev/v1alpha1
kind: Fleet
metadata:
  name: fleet
spec:
  environments:
    - name: staging
      path: apps/staging
      policies: policies/staging
      mode: push
    - name: production
      path: apps/production
      policies: policies/production
      mode: pull-request
      promoteFrom: staging
`;

/** Files of the fleet: `image` is the registry repository (`127.0.0.1:PORT/team/app`). */
export function fleetFiles(
  image: string,
  tags: { staging: string; production: string } = { staging: "1.0.0", production: "1.0.0" },
): Record<string, string> {
  return {
    "shipmate.yaml": FLEET_YAML,
    "policies/staging/app.yaml": fluxPolicy("app-staging", image),
    "policies/production/app.yaml": fluxPolicy("app-production", image),
    "apps/staging/app/deployment.yaml": deployment("app", "staging", image, tags.staging, "app-staging"),
    "apps/production/app/deployment.yaml": deployment(
      "app",
      "production",
      image,
      tags.production,
      "app-production",
    ),
  };
}
