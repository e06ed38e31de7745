#!/usr/bin/env bash
# Every test and quickstart server, provisioned idempotently with caches outside
# the repository: scripts/provision/NN-*.sh in order. Binaries land in
# $SHIPMATE_CACHE/bin, which callers put on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
for p in scripts/provision/*.sh; do
  echo "== provision $(basename "$p" .sh)"
  bash "$p"
done
