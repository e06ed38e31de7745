# Sourced by every project script: puts Node.js 24 LTS (from the npm registry's
# `node` package) first on PATH, installing it once into a cache outside the repo.
# The machine's own Node may be older; the project never uses it.
SHIPMATE_CACHE="${SHIPMATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shipmate}"
SHIPMATE_NODE_VERSION="${SHIPMATE_NODE_VERSION:-24}"
_node_dir="$SHIPMATE_CACHE/node$SHIPMATE_NODE_VERSION"
_node_ok() { [ -x "$_node_dir/node_modules/.bin/node" ] && "$_node_dir/node_modules/.bin/node" -e 'process.exit(+process.versions.node.split(".")[0] === +process.argv[1] ? 0 : 1)' "$SHIPMATE_NODE_VERSION" 2>/dev/null; }
if ! _node_ok; then
  echo "shipmate: installing Node.js $SHIPMATE_NODE_VERSION from the npm registry into $_node_dir" >&2
  mkdir -p "$_node_dir"
  (cd "$_node_dir" && npm install --no-save --no-audit --no-fund --loglevel=error "node@$SHIPMATE_NODE_VERSION" >&2) || { echo "shipmate: could not install Node.js $SHIPMATE_NODE_VERSION" >&2; return 1 2>/dev/null || exit 1; }
  _node_ok || { echo "shipmate: Node.js $SHIPMATE_NODE_VERSION did not install correctly in $_node_dir" >&2; return 1 2>/dev/null || exit 1; }
fi
# npm's own shim runs under whichever `node` is first on PATH, so this is enough.
export PATH="$_node_dir/node_modules/.bin:$PATH"
export SHIPMATE_CACHE
unset _node_dir
