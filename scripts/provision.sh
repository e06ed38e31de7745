#!/usr/bin/env bash
# Every test and quickstart server, provisioned idempotently with caches outside
# the repository: scripts/provision/NN-*.sh. Binaries land in $SHIPMATE_CACHE/bin,
# which callers put on PATH.
#
# On a new machine most of the time goes to Go builds (kube-apiserver, Gitea,
# helm, sops…), each of which has long single-threaded stretches (dependency
# downloads, linking): two scripts run at once, each logging to its own file,
# printed whole when it ends. apt-get calls from two scripts wait for each
# other's dpkg lock instead of failing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
jobs_max="${SHIPMATE_PROVISION_JOBS:-2}"
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
apt_conf="$logs/apt.conf"
printf 'DPkg::Lock::Timeout "600";\n' >"$apt_conf"
export APT_CONFIG="$apt_conf"

declare -A name_of=()
failed=0
# Waits for any one running script, prints its log and records a failure.
reap() {
  local done_pid status=0
  wait -n -p done_pid || status=$?
  local name="${name_of[$done_pid]}"
  unset "name_of[$done_pid]"
  echo "== provision $name"
  cat "$logs/$name.log"
  if [ "$status" != 0 ]; then
    echo "== provision $name failed (exit $status)" >&2
    failed=1
  fi
}
for p in scripts/provision/*.sh; do
  name="$(basename "$p" .sh)"
  while [ "${#name_of[@]}" -ge "$jobs_max" ]; do reap; done
  bash "$p" >"$logs/$name.log" 2>&1 &
  name_of[$!]="$name"
done
while [ "${#name_of[@]}" -gt 0 ]; do reap; done
exit "$failed"
