#!/usr/bin/env bash
# The one test command (README "Tests"; .ci/run calls it): provisions Node 24,
# the npm dependencies and every test server (idempotent, cached outside the
# repo), then runs the type check, the linter/formatter check and the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/install.sh
bash scripts/provision.sh
export PATH="$SHIPMATE_CACHE/bin:$PATH"
echo "== typecheck"
node_modules/.bin/tsc --noEmit
echo "== lint"
node_modules/.bin/biome check .
echo "== tests"
mkdir -p .shipmate-cache
status=0
node_modules/.bin/vitest run --reporter=default --reporter=json --outputFile.json=.shipmate-cache/vitest.json "$@" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(".shipmate-cache/vitest.json", "utf8"));
  console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));
  if (r.numPendingTests || r.numTodoTests) { console.error("tests were skipped; no test may be skipped"); process.exit(1); }
' || status=1
exit $status
