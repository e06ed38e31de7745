#!/usr/bin/env bash
# npm dependencies, installed only when package-lock.json changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
stamp="node_modules/.shipmate-lock.sha256"
want="$( (sha256sum package-lock.json; node --version) | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
