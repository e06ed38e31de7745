#!/usr/bin/env bash
# CNCF Distribution 2.8 from Debian's docker-registry package (the tests start
# their own instances on 127.0.0.1; the packaged service is never used).
set -euo pipefail
need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v openssl >/dev/null || need+=(openssl)
command -v git >/dev/null || need+=(git)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The package starts a system service on :5000; the tests never use it.
if command -v systemctl >/dev/null && systemctl is-active --quiet docker-registry 2>/dev/null; then
  systemctl stop docker-registry || true
fi
docker-registry --version
