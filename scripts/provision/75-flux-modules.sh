#!/usr/bin/env bash
# Flux's kustomize-controller and source-controller Go modules (their config/
# folders: CRDs, manager Deployment, RBAC), downloaded from the Go module proxy
# into $SHIPMATE_CACHE/gomod. test/infra/flux.ts renders a real Flux install
# manifest (gotk-components.yaml) from them for the --from-flux tests; nothing
# of them is ever committed. `go mod download` is idempotent and verifies the
# modules against go.sum's checksum database, so this only ever downloads once.
set -euo pipefail
SHIPMATE_CACHE="${SHIPMATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shipmate}"
if ! command -v go >/dev/null; then
  if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; else
    echo "75-flux-modules: the Go toolchain is needed to download Flux's modules" >&2
    exit 1
  fi
fi
# Keep in step with FLUX_MODULES in test/infra/flux.ts.
modules=(github.com/fluxcd/kustomize-controller@v1.9.6 github.com/fluxcd/source-controller@v1.9.6)
export GOTOOLCHAIN=local GOMODCACHE="$SHIPMATE_CACHE/gomod" GOFLAGS=-mod=mod
cd "$(mktemp -d)"
go mod download "${modules[@]}"
echo "flux modules: ${modules[*]} in $GOMODCACHE"
