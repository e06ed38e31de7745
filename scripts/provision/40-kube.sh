#!/usr/bin/env bash
# A real Kubernetes control plane for the agent's tests: kube-apiserver and
# etcd built from their Go modules with the machine's Go toolchain (Debian's
# etcd 3.4 is too old for a recent API server, and nothing prebuilt may be
# downloaded). Each binary is built once into $SHIPMATE_CACHE/bin and rebuilt
# only when its version stamp changes. kubectl (server-side apply peer in the
# benchmark) and kustomize (`kubectl kustomize`) come from the machine or apt.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
SHIPMATE_CACHE="${SHIPMATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shipmate}"
bin="$SHIPMATE_CACHE/bin"
mkdir -p "$bin"

KUBE_VERSION="$(sed -n 's/^KUBE_VERSION=//p' "$here/kube/versions")"
ETCD_VERSION="$(sed -n 's/^ETCD_VERSION=//p' "$here/kube/versions")"

need=()
command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || need+=(golang-go)
command -v openssl >/dev/null || need+=(openssl)
command -v git >/dev/null || need+=(git)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export PATH="$PATH:/usr/local/go/bin"
# k8s.io/kubernetes v1.36 and etcd v3.6 declare go 1.26; an older toolchain cannot build them.
gov="$(go env GOVERSION | sed 's/^go//')"
if [ "$(printf '%s\n' 1.26 "$gov" | sort -V | head -1)" != 1.26 ]; then
  echo "40-kube: Go >= 1.26 is needed to build kube-apiserver and etcd (found go$gov)" >&2
  exit 1
fi

# The dependency graph pins go 1.26; never let `go` fetch another toolchain.
export GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0

stamp_ok() { # binary version
  [ -x "$bin/$1" ] && [ -f "$bin/.$1.version" ] && [ "$(cat "$bin/.$1.version")" = "$2" ]
}

# build NAME VERSION PKG LDFLAGS [MODULE]: copies the committed wrapper module (go.mod +
# go.sum) into the cache and builds PKG there, so the repo is never written.
build() {
  local name="$1" version="$2" pkg="$3" ldflags="$4" module="${5:-$1}"
  if stamp_ok "$name" "$version"; then
    echo "$name $version: cached ($bin/$name)"
    return 0
  fi
  local work="$SHIPMATE_CACHE/kube-build/$name"
  rm -rf "$work"
  mkdir -p "$work"
  cp "$here/kube/$module/go.mod" "$work/go.mod"
  if [ -f "$here/kube/$module/go.sum" ]; then cp "$here/kube/$module/go.sum" "$work/go.sum"; fi
  local start=$SECONDS
  echo "$name $version: building $pkg (first run only; several minutes)"
  (cd "$work" && go build -p "${SHIPMATE_GO_BUILD_JOBS:-2}" -trimpath -ldflags="-s -w $ldflags" -o "$bin/$name.tmp" "$pkg")
  mv "$bin/$name.tmp" "$bin/$name"
  echo "$version" >"$bin/.$name.version"
  echo "$name $version: built in $((SECONDS - start))s"
}

kv="k8s.io/component-base/version"
cv="k8s.io/client-go/pkg/version"
minor="$(echo "$KUBE_VERSION" | cut -d. -f2)"
kube_ld="-X $kv.gitVersion=$KUBE_VERSION -X $kv.gitMajor=1 -X $kv.gitMinor=$minor -X $kv.gitTreeState=clean"
kube_ld="$kube_ld -X $cv.gitVersion=$KUBE_VERSION -X $cv.gitMajor=1 -X $cv.gitMinor=$minor"
build etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3 ""
build kube-apiserver "$KUBE_VERSION" k8s.io/kubernetes/cmd/kube-apiserver "$kube_ld"

# kubectl is the agent benchmark's peer and, through `kubectl kustomize`, a
# kustomize for machines without a standalone one; build it from the same
# wrapper module when the machine has none.
if ! command -v kubectl >/dev/null && [ ! -x "$bin/kubectl" ]; then
  build kubectl "$KUBE_VERSION" k8s.io/kubernetes/cmd/kubectl "$kube_ld" kube-apiserver
fi

# sed reads all of its input (head would close the pipe early: SIGPIPE under pipefail).
"$bin/etcd" --version | sed -n 1p
"$bin/kube-apiserver" --version
echo "kubectl: $(command -v kubectl || echo "$bin/kubectl")"
