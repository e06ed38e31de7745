#!/usr/bin/env bash
# The README's Quickstart: on a fresh machine, installs what shipmate needs
# (Node 24, npm dependencies, Debian's docker-registry, kustomize, and
# kube-apiserver + etcd + Gitea built from Go modules, all cached under
# ~/.cache/shipmate) and runs the Flux quick start with shipmate, end to end
# on 127.0.0.1: registry → git → cluster. Safe to run again.
#
#   bash scripts/quickstart.sh           the whole flow (scripts/quickstart-full.ts); --keep leaves it running
#   bash scripts/quickstart.sh --scan    only the registry scan (scripts/quickstart.ts): seconds, no builds
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/install.sh
if [ "${1:-}" = "--scan" ]; then
  bash scripts/provision/10-registry.sh >/dev/null
  shift
  exec node scripts/quickstart.ts "$@"
fi
bash scripts/provision.sh
export PATH="$SHIPMATE_CACHE/bin:$PATH"
exec node scripts/quickstart-full.ts "$@"
