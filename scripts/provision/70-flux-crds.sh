#!/usr/bin/env bash
# Flux's own CRD schemas, as test data for the agent's field-coverage test
# (test/agent/fields.crd.test.ts) and for `shipmate validate`: every Flux kind
# at every served version, from Flux's published Go modules, never committed.
# kustomize-controller and source-controller ship their CRDs in their module
# zips; the other controllers' modules are not served by the Go proxy, so their
# CRDs are generated from their api modules with controller-gen exactly as
# Flux's Makefiles do. Output: $SHIPMATE_CACHE/flux-crds/*.yaml plus a
# `versions` file; regenerated only when the stamp (versions file, this
# script, Go version) changes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
SHIPMATE_CACHE="${SHIPMATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shipmate}"
versions="$here/flux-crds/versions"
out="$SHIPMATE_CACHE/flux-crds"
bin="$SHIPMATE_CACHE/bin"
mkdir -p "$bin"

if ! command -v go >/dev/null; then
  if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; else
    echo "70-flux-crds: the Go toolchain (>= 1.26) is needed to fetch Flux's CRDs" >&2
    exit 1
  fi
fi
v() { # the version of NAME in the versions file
  local x
  x="$(sed -n "s/^$1=//p" "$versions")"
  [ -n "$x" ] || { echo "70-flux-crds: no $1= line in $versions" >&2; exit 1; }
  echo "$x"
}

want="$( (cat "$versions" "$0"; go version) | sha256sum | cut -d' ' -f1)"
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$want" ]; then
  echo "flux-crds: cached ($out)"
  exit 0
fi

# Flux's go.mod files pin their go version; never let `go` fetch another toolchain.
export GOTOOLCHAIN=local GOFLAGS="-buildvcs=false" CGO_ENABLED=0
start=$SECONDS
tmp="$out.tmp"
rm -rf "$tmp"
mkdir -p "$tmp"

moddir() { # MODULE@VERSION -> its extracted directory in the module cache
  local dir
  dir="$(go mod download -json "$1" | sed -nE 's/^[[:space:]]*"Dir": "(.*)",?$/\1/p')"
  [ -n "$dir" ] && [ -d "$dir" ] || { echo "70-flux-crds: go mod download $1 failed" >&2; go mod download "$1" >&2 || true; exit 1; }
  echo "$dir"
}

for m in "kustomize-controller@$(v KUSTOMIZE_CONTROLLER)" "source-controller@$(v SOURCE_CONTROLLER)"; do
  dir="$(moddir "github.com/fluxcd/$m")"
  cp "$dir"/config/crd/bases/*.yaml "$tmp/"
  echo "flux-crds: $m: $(ls "$dir"/config/crd/bases/*.yaml | wc -l) CRDs"
done

cg_version="$(v CONTROLLER_GEN)"
if ! { [ -x "$bin/controller-gen" ] && [ "$(cat "$bin/.controller-gen.version" 2>/dev/null)" = "$cg_version $(go version)" ]; }; then
  echo "flux-crds: building controller-gen $cg_version (first run only; a minute or two)"
  GOBIN="$SHIPMATE_CACHE/build/controller-gen" nice go install -p 1 -trimpath -ldflags="-s -w" \
    "sigs.k8s.io/controller-tools/cmd/controller-gen@$cg_version"
  mv -f "$SHIPMATE_CACHE/build/controller-gen/controller-gen" "$bin/controller-gen"
  echo "$cg_version $(go version)" >"$bin/.controller-gen.version"
fi

gen() { # MODULE@VERSION: controller-gen over a writable copy of the api module
  local dir work
  dir="$(moddir "$1")"
  work="$SHIPMATE_CACHE/build/flux-api/$(basename "${1%@*}")"
  rm -rf "$work"
  mkdir -p "$work"
  cp -R "$dir"/. "$work/"
  chmod -R u+w "$work"
  (cd "$work" && go mod download && nice "$bin/controller-gen" crd:crdVersions=v1 paths=./... output:crd:artifacts:config="$tmp")
  rm -rf "$work"
  echo "flux-crds: $1: generated"
}
gen "github.com/fluxcd/helm-controller/api@$(v HELM_CONTROLLER_API)"
gen "github.com/fluxcd/image-reflector-controller/api@$(v IMAGE_REFLECTOR_CONTROLLER_API)"
gen "github.com/fluxcd/image-automation-controller/api@$(v IMAGE_AUTOMATION_CONTROLLER_API)"
gen "github.com/fluxcd/notification-controller/api@$(v NOTIFICATION_CONTROLLER_API)"
gen "github.com/fluxcd/source-watcher/api/v2@$(v SOURCE_WATCHER_API)"

grep -v '^#' "$versions" | grep . >"$tmp/versions"
rm -rf "$out"
mv "$tmp" "$out"
echo "$want" >"$out/.stamp"
echo "flux-crds: $(ls "$out"/*.yaml | wc -l) CRDs in $out ($((SECONDS - start))s)"
