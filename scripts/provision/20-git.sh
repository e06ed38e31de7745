#!/usr/bin/env bash
# git and its smart-HTTP CGI (`git http-backend`) for the update/delivery tests,
# which serve bare repositories on 127.0.0.1 through a small Node server.
set -euo pipefail
if ! command -v git >/dev/null || [ ! -x "$(git --exec-path 2>/dev/null)/git-http-backend" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends git >/dev/null
fi
git --version
test -x "$(git --exec-path)/git-http-backend"
