#!/usr/bin/env bash
# The helm CLI, built from its published Go module (helm.sh/helm/v4/cmd/helm;
# scripts/provision/helm/go.mod pins the version, go.sum every module): the
# agent's Helm engine runs it, and the Helm tests push charts, index chart
# repositories and inspect releases with it. Beside it, from the same module
# and build cache, shipmate-helm (scripts/provision/helm/cmd/shipmate-helm):
# the agent's Helm actions on releases whose storage namespace differs from
# their namespace, which the CLI cannot express. Built once into
# $SHIPMATE_CACHE/bin and rebuilt only when the version stamp (version + hash
# of the wrapper module, its sources, this script and the Go version) changes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
SHIPMATE_CACHE="${SHIPMATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shipmate}"
bin="$SHIPMATE_CACHE/bin"
wrapper="$here/helm"
mkdir -p "$bin"

if ! command -v go >/dev/null; then
  if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; else
    echo "60-helm: the Go toolchain (>= the version in $wrapper/go.mod) is needed to build helm" >&2
    exit 1
  fi
fi

version="$(sed -nE 's#^(require)?[[:space:]]*helm\.sh/helm/v4 (v[^ ]+).*#\2#p' "$wrapper/go.mod" | head -1)"
[ -n "$version" ] || { echo "60-helm: no 'helm.sh/helm/v4 vX.Y.Z' requirement in $wrapper/go.mod" >&2; exit 1; }
want="$version $( (cat "$wrapper/go.mod" "$wrapper/go.sum" "$wrapper/tools.go" "$wrapper"/cmd/*/*.go "$0"; go version) | sha256sum | cut -d' ' -f1)"
if [ -x "$bin/helm" ] && [ -x "$bin/shipmate-helm" ] && [ -f "$bin/.helm.version" ] && [ "$(cat "$bin/.helm.version")" = "$want" ]; then
  echo "helm $version: cached ($bin/helm, $bin/shipmate-helm)"
  exit 0
fi

# The dependency graph pins its go version; never let `go` fetch another toolchain.
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0
work="$SHIPMATE_CACHE/build/helm"
rm -rf "$work"
mkdir -p "$work"
cp -r "$wrapper/go.mod" "$wrapper/go.sum" "$wrapper/tools.go" "$wrapper/cmd" "$work/"
start=$SECONDS
echo "helm $version: building helm.sh/helm/v4/cmd/helm (first run only; a few minutes on 2 cores)"
(
  cd "$work"
  nice go build -p "${SHIPMATE_GO_BUILD_JOBS:-2}" -trimpath \
    -ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$version -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
    -o "$bin/helm.tmp" helm.sh/helm/v4/cmd/helm
  # The same packages, already compiled: only its own and the link are new.
  nice go build -p "${SHIPMATE_GO_BUILD_JOBS:-2}" -trimpath -ldflags="-s -w" \
    -o "$bin/shipmate-helm.tmp" ./cmd/shipmate-helm
)
mv -f "$bin/helm.tmp" "$bin/helm"
mv -f "$bin/shipmate-helm.tmp" "$bin/shipmate-helm"
echo "$want" >"$bin/.helm.version"
echo "helm $version: built in $((SECONDS - start))s"
"$bin/helm" version --short
