-- Foundation: extensions, shared helpers, and privileges for the system role.
--
-- Runs as the application role (mc_app), which owns the database but is not a superuser.
-- deploy/sql/bootstrap.sql must have run once as a superuser before: it creates the roles
-- and the extensions, which a non-superuser cannot create. The statements below are then
-- no-ops that document the requirement.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mc_system') THEN
        RAISE EXCEPTION 'role mc_system is missing: run deploy/sql/bootstrap.sql as a superuser first (see docs/database.md)';
    END IF;
END
$$;

-- Cross-tenant system work (sweepers, the rule engine) runs under SET LOCAL ROLE mc_system,
-- which has BYPASSRLS. Everything this role creates from now on is usable by it.
GRANT USAGE ON SCHEMA public TO mc_system;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO mc_system;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO mc_system;

-- The organization of the current transaction, set by the application with
-- SET LOCAL app.current_org_id; NULL when unset, so tenant policies match nothing.
CREATE FUNCTION app_current_org() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT NULLIF(current_setting('app.current_org_id', true), '')::uuid $$;

-- Keeps updated_at honest without relying on every UPDATE statement to set it.
CREATE FUNCTION set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
