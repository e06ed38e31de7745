#!/usr/bin/env bash
# The sops CLI, built from its published Go module
# (github.com/getsops/sops/v3/cmd/sops; scripts/provision/sops/go.mod pins the
# version, go.sum every module): the agent runs it to decrypt SOPS-encrypted
# Secrets in memory (Kustomization spec.decryption). age-keygen is built from
# the same module graph (filippo.io/age, the version sops links), for the tests
# and for users making a key. Built once into $SHIPMATE_CACHE/bin and rebuilt
# only when the version stamp (version + hash of the wrapper module, this script
# and the Go version) changes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
SHIPMATE_CACHE="${SHIPMATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shipmate}"
bin="$SHIPMATE_CACHE/bin"
wrapper="$here/sops"
mkdir -p "$bin"

if ! command -v go >/dev/null; then
  if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; else
    echo "70-sops: the Go toolchain (>= the version in $wrapper/go.mod) is needed to build sops" >&2
    exit 1
  fi
fi

version="$(sed -nE 's#^(require)?[[:space:]]*github\.com/getsops/sops/v3 (v[^ ]+).*#\2#p' "$wrapper/go.mod" | head -1)"
[ -n "$version" ] || { echo "70-sops: no 'github.com/getsops/sops/v3 vX.Y.Z' requirement in $wrapper/go.mod" >&2; exit 1; }
want="$version $( (cat "$wrapper/go.mod" "$wrapper/go.sum" "$wrapper/tools.go" "$0"; go version) | sha256sum | cut -d' ' -f1)"
if [ -x "$bin/sops" ] && [ -x "$bin/age-keygen" ] && [ -f "$bin/.sops.version" ] && [ "$(cat "$bin/.sops.version")" = "$want" ]; then
  echo "sops $version: cached ($bin/sops)"
  exit 0
fi

# The dependency graph pins its go version; never let `go` fetch another toolchain.
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0
work="$SHIPMATE_CACHE/build/sops"
rm -rf "$work"
mkdir -p "$work"
cp "$wrapper/go.mod" "$wrapper/go.sum" "$wrapper/tools.go" "$work/"
start=$SECONDS
echo "sops $version: building github.com/getsops/sops/v3/cmd/sops and age-keygen (first run only; several minutes on 2 cores)"
(
  cd "$work"
  nice go build -p "${SHIPMATE_GO_BUILD_JOBS:-1}" -trimpath -ldflags="-s -w" \
    -o "$bin/sops.tmp" github.com/getsops/sops/v3/cmd/sops
  nice go build -p "${SHIPMATE_GO_BUILD_JOBS:-1}" -trimpath -ldflags="-s -w" \
    -o "$bin/age-keygen.tmp" filippo.io/age/cmd/age-keygen
)
mv -f "$bin/sops.tmp" "$bin/sops"
mv -f "$bin/age-keygen.tmp" "$bin/age-keygen"
echo "$want" >"$bin/.sops.version"
echo "sops $version: built in $((SECONDS - start))s"
"$bin/sops" --version --disable-version-check | head -1
