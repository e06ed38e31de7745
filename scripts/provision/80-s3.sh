#!/usr/bin/env bash
# An S3-compatible server for the Bucket source tests: versitygw
# (github.com/versity/versitygw, Apache-2.0), built from its published Go
# module (scripts/provision/s3/go.mod pins the version, go.sum every module).
# Its posix backend serves plain directories, so a test needs no database and
# no erasure-coded disk layout: far less to build than MinIO. Built once into
# $SHIPMATE_CACHE/bin and rebuilt only when the version stamp (version + hash
# of the wrapper module, this script and the Go version) changes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
SHIPMATE_CACHE="${SHIPMATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shipmate}"
bin="$SHIPMATE_CACHE/bin"
wrapper="$here/s3"
mkdir -p "$bin"

if ! command -v go >/dev/null; then
  if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; else
    echo "80-s3: the Go toolchain (>= the version in $wrapper/go.mod) is needed to build versitygw" >&2
    exit 1
  fi
fi

version="$(sed -nE 's#^(require)?[[:space:]]*github\.com/versity/versitygw (v[^ ]+).*#\2#p' "$wrapper/go.mod" | head -1)"
[ -n "$version" ] || { echo "80-s3: no 'github.com/versity/versitygw vX.Y.Z' requirement in $wrapper/go.mod" >&2; exit 1; }
want="$version $( (cat "$wrapper/go.mod" "$wrapper/go.sum" "$wrapper/tools.go" "$0"; go version) | sha256sum | cut -d' ' -f1)"
if [ -x "$bin/versitygw" ] && [ -f "$bin/.versitygw.version" ] && [ "$(cat "$bin/.versitygw.version")" = "$want" ]; then
  echo "versitygw $version: cached ($bin/versitygw)"
  exit 0
fi

# The dependency graph pins its go version; never let `go` fetch another toolchain.
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0
work="$SHIPMATE_CACHE/build/s3"
rm -rf "$work"
mkdir -p "$work"
cp "$wrapper/go.mod" "$wrapper/go.sum" "$wrapper/tools.go" "$work/"
start=$SECONDS
echo "versitygw $version: building github.com/versity/versitygw/cmd/versitygw (first run only; minutes on 2 cores)"
(
  cd "$work"
  nice go build -p "${SHIPMATE_GO_BUILD_JOBS:-2}" -trimpath -ldflags="-s -w" \
    -o "$bin/versitygw.tmp" github.com/versity/versitygw/cmd/versitygw
)
mv -f "$bin/versitygw.tmp" "$bin/versitygw"
echo "$want" >"$bin/.versitygw.version"
echo "versitygw $version: built in $((SECONDS - start))s"
