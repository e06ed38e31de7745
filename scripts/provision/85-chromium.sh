#!/usr/bin/env bash
# Debian's chromium for the dashboard's browser tests (test/dashboard), driven
# headless by playwright-core against /usr/bin/chromium: nothing is downloaded
# at run time, and the browser comes from the distribution's packages.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
/usr/bin/chromium --version
