#!/usr/bin/env bash
# Standalone kustomize for `shipmate validate` and its tests, built from the Go
# module (cached under $SHIPMATE_CACHE/bin). validate falls back to
# `kubectl kustomize` when this is absent, but the standalone binary starts
# faster and is the newer kustomize.
set -euo pipefail
SHIPMATE_CACHE="${SHIPMATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shipmate}"
# v5.7.1: the newest release the machine's Go (1.26) builds without fetching a toolchain (v5.8 needs Go 1.27).
version="v5.7.1"
bin="$SHIPMATE_CACHE/bin/kustomize"
if [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -q "$version"; then
  "$bin" version
  exit 0
fi
command -v go >/dev/null || { echo "30-kustomize: go is needed to build kustomize" >&2; exit 1; }
mkdir -p "$SHIPMATE_CACHE/bin"
GOBIN="$SHIPMATE_CACHE/bin" GOFLAGS=-modcacherw go install "sigs.k8s.io/kustomize/kustomize/v5@$version"
"$bin" version
