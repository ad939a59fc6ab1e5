-- One-time database bootstrap, run as a superuser (or the cloud's admin role).
--
--   psql "$SUPERUSER_URL" -v app_password="$MC_APP_DB_PASSWORD" -v db_name=mission_control \
--        -f deploy/sql/bootstrap.sql
--
-- Creates:
--   mc_app     LOGIN, not superuser: the role every service connects as. It owns the database
--              and runs `mc-api migrate`. Tenant tables FORCE row-level security, so even as
--              owner it only sees the organization set in app.current_org_id.
--   mc_system  NOLOGIN BYPASSRLS: granted to mc_app; cross-tenant system work (sweepers, the
--              rule engine) switches to it with SET LOCAL ROLE inside one transaction.
--   the database, owned by mc_app, with the extensions vector and pg_trgm (creating them
--   needs a superuser; migrations only check that they exist).
-- Idempotent: re-running updates the password and changes nothing else.
\set ON_ERROR_STOP on

SELECT format('CREATE ROLE mc_app LOGIN PASSWORD %L', :'app_password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mc_app') \gexec
SELECT format('ALTER ROLE mc_app LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD %L', :'app_password') \gexec
SELECT 'CREATE ROLE mc_system NOLOGIN BYPASSRLS'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mc_system') \gexec
GRANT mc_system TO mc_app;

SELECT format('CREATE DATABASE %I OWNER mc_app', :'db_name')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db_name') \gexec

\connect :db_name
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
