#!/usr/bin/env bash
# git and its smart-HTTP CGI (`git http-backend`) for the update/delivery tests,
# which serve bare repositories on 127.0.0.1 through a small Node server;
# ssh-keygen (openssh-client) for git's SSH commit signing: the update --sign test and the
# agent's ImageUpdateAutomation signingKey type: ssh, which decrypts and signs with it; gpg (Debian's
# gnupg) for GitRepository spec.verify and SOPS PGP keys, which the agent uses with git's
# verify-commit/verify-tag against a temporary keyring.
set -euo pipefail
need=()
if ! command -v git >/dev/null || [ ! -x "$(git --exec-path 2>/dev/null)/git-http-backend" ]; then need+=(git); fi
command -v ssh-keygen >/dev/null || need+=(openssh-client)
{ command -v gpg >/dev/null && command -v gpgconf >/dev/null; } || need+=(gnupg)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
git --version
test -x "$(git --exec-path)/git-http-backend"
gpg --version | head -1
