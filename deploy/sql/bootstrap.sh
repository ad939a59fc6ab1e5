#!/usr/bin/env bash
# Runs bootstrap.sql as a superuser. Used by scripts/dev, scripts/test, and by the
# pgvector container on first start (mounted into /docker-entrypoint-initdb.d).
#   MC_APP_DB_PASSWORD  password for mc_app (required)
#   MC_DB_NAME          database to create (default mission_control)
#   PSQL_URL / PG*      how to reach the server as a superuser (default: psql's defaults)
#   MC_BOOTSTRAP_SQL    path of bootstrap.sql when this script is copied elsewhere
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${MC_APP_DB_PASSWORD:?MC_APP_DB_PASSWORD is required}"
db_name="${MC_DB_NAME:-mission_control}"
args=(-v ON_ERROR_STOP=1 -q -v app_password="$MC_APP_DB_PASSWORD" -v db_name="$db_name")
if [ -n "${PSQL_URL:-}" ]; then args=("$PSQL_URL" "${args[@]}"); fi
# In the postgres image the init scripts run as the bootstrap superuser via POSTGRES_USER.
if [ -n "${POSTGRES_USER:-}" ] && [ -z "${PSQL_URL:-}" ]; then args+=(--username "$POSTGRES_USER" --dbname postgres); fi
psql "${args[@]}" -f "${MC_BOOTSTRAP_SQL:-$here/bootstrap.sql}"
