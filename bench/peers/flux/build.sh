#!/usr/bin/env bash
# Builds the Flux controllers the benchmarks compare against (kustomize-controller,
# source-controller, helm-controller) from their published Go modules, through the wrapper modules
# beside this script, into $SHIPMATE_CACHE/bin. Not part of the test command: only
# `npm run bench -- flux-*` needs them. Cached by a stamp of the wrapper module and Go version.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
SHIPMATE_CACHE="${SHIPMATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shipmate}"
bin="$SHIPMATE_CACHE/bin"
mkdir -p "$bin"
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0
for c in "${@:-kustomize-controller source-controller helm-controller}"; do
  for name in $c; do
    want="$( (cat "$here/$name/go.mod" "$here/$name/go.sum" "$0"; go version) | sha256sum | cut -d' ' -f1)"
    if [ -x "$bin/flux-$name" ] && [ "$(cat "$bin/.flux-$name.version" 2>/dev/null)" = "$want" ]; then
      echo "flux-$name: cached"
      continue
    fi
    work="$SHIPMATE_CACHE/build/flux-$name"
    rm -rf "$work" && mkdir -p "$work"
    cp "$here/$name/go.mod" "$here/$name/go.sum" "$here/$name/tools.go" "$work/"
    start=$SECONDS
    (cd "$work" && nice go build -p "${SHIPMATE_GO_BUILD_JOBS:-2}" -trimpath -ldflags="-s -w" -o "$bin/flux-$name.tmp" "github.com/fluxcd/$name")
    mv -f "$bin/flux-$name.tmp" "$bin/flux-$name"
    echo "$want" >"$bin/.flux-$name.version"
    echo "flux-$name: built in $((SECONDS - start))s"
  done
done
