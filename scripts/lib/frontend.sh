# shellcheck shell=bash
# The frontend (frontend/: the console and the H5 app) for scripts/build, scripts/test and
# scripts/e2e: npm dependencies from the lockfile, the production build, and Chromium for
# browser tests. Sourced after lib/stack.sh.

MC_FRONTEND="$MC_ROOT/frontend"

# Node 20.19+ and npm are expected on the machine (Debian's nodejs otherwise).
mc_ensure_node() {
  command -v node >/dev/null 2>&1 || mc_apt_install nodejs npm
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' ||
    mc_die "node $(node --version) is too old for the frontend; it needs 20.19 or newer"
}

# Installs from the lockfile when node_modules is missing or older than it. `npm install`,
# not `npm ci`: the lockfile holds only the platform packages (rollup, esbuild) the
# registry here serves, and `npm ci` refuses a lockfile without every optional platform
# entry, while `npm install` installs exactly the locked versions and leaves it as it is.
mc_frontend_deps() {
  mc_ensure_node
  if [ ! -f "$MC_FRONTEND/node_modules/.package-lock.json" ] ||
    [ "$MC_FRONTEND/package-lock.json" -nt "$MC_FRONTEND/node_modules/.package-lock.json" ]; then
    mc_log "installing frontend dependencies (npm install from the lockfile)"
    (cd "$MC_FRONTEND" && npm install --no-audit --no-fund --loglevel=error) >&2
  fi
}

# Builds both apps into frontend/dist (the H5 build checks its 200 KB budget).
mc_frontend_build() {
  mc_frontend_deps
  mc_log "building the console and the H5 app"
  (cd "$MC_FRONTEND" && npm run --silent build) >&2
}

# Debian's Chromium (and CJK fonts for the zh-CN pages) for the browser tests.
mc_ensure_chromium() {
  if ! command -v chromium >/dev/null 2>&1; then mc_apt_install chromium; fi
  if ! fc-list 2>/dev/null | grep -qi "noto sans cjk"; then mc_apt_install fonts-noto-cjk; fi
  export MC_CHROMIUM="${MC_CHROMIUM:-$(command -v chromium)}"
}
