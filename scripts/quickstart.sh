#!/usr/bin/env bash
# The README's Quickstart: on a fresh machine, installs what shipmate needs
# (Node 24, npm dependencies, Debian's docker-registry) and runs the main job
# end to end on 127.0.0.1. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/install.sh
bash scripts/provision/10-registry.sh >/dev/null
exec node scripts/quickstart.ts "$@"
