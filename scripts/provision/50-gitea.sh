#!/usr/bin/env bash
# Gitea, built from its published Go module (scripts/provision/gitea/go.mod pins
# the version and carries the release's replace lines), for the forge tests:
# they start their own headless instance on 127.0.0.1 (test/infra/gitea.ts).
#
# Output: $SHIPMATE_CACHE/bin/gitea and $SHIPMATE_CACHE/share/gitea (the
# module's templates/ and options/: without the `bindata` tag Gitea reads them
# from its static root at run time). Idempotent: a stamp holds the hash of the
# wrapper module, this script and the Go version; nothing is rebuilt while it matches.
set -euo pipefail
cd "$(dirname "$0")/../.."
SHIPMATE_CACHE="${SHIPMATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shipmate}"
wrapper="scripts/provision/gitea"
bin="$SHIPMATE_CACHE/bin/gitea"
share="$SHIPMATE_CACHE/share/gitea"
stamp="$SHIPMATE_CACHE/bin/gitea.stamp"

if ! command -v go >/dev/null; then
  if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; else
    echo "50-gitea: the Go toolchain (>= the version in $wrapper/go.mod) is needed to build Gitea" >&2
    exit 1
  fi
fi
# mattn/go-sqlite3 (the `sqlite` tag) is cgo.
if ! command -v gcc >/dev/null || ! command -v git >/dev/null; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends gcc libc6-dev git >/dev/null
fi

# `go mod tidy` moves the requirement into the require block, so match both forms.
version="$(sed -nE 's#^(require)?[[:space:]]*code\.gitea\.io/gitea (v[^ ]+).*#\2#p' "$wrapper/go.mod" | head -1)"
[ -n "$version" ] || { echo "50-gitea: no 'code.gitea.io/gitea vX.Y.Z' requirement in $wrapper/go.mod" >&2; exit 1; }
want="$version $( (cat "$wrapper/go.mod" "$wrapper/go.sum" scripts/provision/50-gitea.sh; go version) | sha256sum | cut -d' ' -f1)"
if [ -x "$bin" ] && [ -d "$share/templates" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "gitea $version (cached: $bin)"
  exit 0
fi

export GOMODCACHE="${GOMODCACHE:-$SHIPMATE_CACHE/gomod}"
export GOFLAGS="-mod=readonly -buildvcs=false"
# Go's default build cache lives outside the repo already; the build dir is a
# copy so the repo never gets build artefacts.
build="$SHIPMATE_CACHE/build/gitea"
rm -rf "$build"
mkdir -p "$build" "$SHIPMATE_CACHE/bin"
cp "$wrapper/go.mod" "$wrapper/go.sum" "$build/"
start=$(date +%s)
echo "50-gitea: building Gitea $version from the Go module proxy (several minutes on 2 cores)"
(
  cd "$build"
  CGO_ENABLED=1 go build -tags 'sqlite sqlite_unlock_notify' -trimpath \
    -ldflags="-s -w -X 'main.Version=${version#v}'" \
    -o "$bin.tmp" code.gitea.io/gitea
)
mv -f "$bin.tmp" "$bin"
src="$(cd "$build" && go list -m -f '{{.Dir}}' code.gitea.io/gitea)"
rm -rf "$share.tmp"
mkdir -p "$share.tmp"
cp -r "$src/templates" "$src/options" "$share.tmp/"
chmod -R u+w "$share.tmp"
rm -rf "$share"
mv "$share.tmp" "$share"
echo "$want" > "$stamp"
echo "gitea $version built in $(( $(date +%s) - start ))s: $("$bin" --version)"
