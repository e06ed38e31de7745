#!/usr/bin/env bash
# The Flagger controller, built from its published Go module
# (github.com/fluxcd/flagger/cmd/flagger; scripts/provision/flagger/go.mod pins
# the version, go.sum every module): the progressive-delivery tests run it
# outside any cluster, with a kubeconfig, against the real kube-apiserver.
# Built once into $SHIPMATE_CACHE/bin and rebuilt only when the version stamp
# (version + hash of the wrapper module, this script and the Go version)
# changes. The same module holds artifacts/flagger/crd.yaml, the CRDs the tests
# install (src/validate/flagger-crds.json is generated from it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
SHIPMATE_CACHE="${SHIPMATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shipmate}"
bin="$SHIPMATE_CACHE/bin"
wrapper="$here/flagger"
mkdir -p "$bin"

if ! command -v go >/dev/null; then
  if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; else
    echo "85-flagger: the Go toolchain is needed to build Flagger" >&2
    exit 1
  fi
fi

version="$(sed -nE 's#^(require)?[[:space:]]*github\.com/fluxcd/flagger (v[^ ]+).*#\2#p' "$wrapper/go.mod" | head -1)"
[ -n "$version" ] || { echo "85-flagger: no 'github.com/fluxcd/flagger vX.Y.Z' requirement in $wrapper/go.mod" >&2; exit 1; }
want="$version $( (cat "$wrapper/go.mod" "$wrapper/go.sum" "$wrapper/tools.go" "$0"; go version) | sha256sum | cut -d' ' -f1)"
export GOTOOLCHAIN=local GOMODCACHE="$SHIPMATE_CACHE/gomod" GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0
if [ -x "$bin/flagger" ] && [ -f "$bin/.flagger.version" ] && [ "$(cat "$bin/.flagger.version")" = "$want" ]; then
  # The tests read the CRDs from the module cache: make sure it is there (a no-op when it is).
  (cd "$wrapper" && go mod download github.com/fluxcd/flagger)
  echo "flagger $version: cached ($bin/flagger)"
  exit 0
fi

work="$SHIPMATE_CACHE/build/flagger"
rm -rf "$work"
mkdir -p "$work"
cp "$wrapper/go.mod" "$wrapper/go.sum" "$wrapper/tools.go" "$work/"
start=$SECONDS
echo "flagger $version: building github.com/fluxcd/flagger/cmd/flagger (first run only; a few minutes on 2 cores)"
(
  cd "$work"
  nice go build -p "${SHIPMATE_GO_BUILD_JOBS:-2}" -trimpath -ldflags="-s -w" \
    -o "$bin/flagger.tmp" github.com/fluxcd/flagger/cmd/flagger
)
mv -f "$bin/flagger.tmp" "$bin/flagger"
echo "$want" >"$bin/.flagger.version"
echo "flagger $version: built in $((SECONDS - start))s"
"$bin/flagger" -version
