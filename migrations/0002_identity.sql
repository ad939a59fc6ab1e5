-- Identity and tenancy: organizations, console users, memberships, refresh tokens,
-- API keys, H5 end users and their agent assignments, the audit log, and the minimal
-- boards/agents tables the assignments point at (extended by later migrations).
--
-- Tenant tables ENABLE and FORCE row-level security with a policy on app_current_org(),
-- so the owning role mc_app is subject to it too. Global tables (users, refresh tokens)
-- have no organization and are reached only through authentication paths. The few
-- lookups that must cross tenants before the organization is known (API key by prefix,
-- membership of a user) are SECURITY DEFINER functions owned by mc_system, each
-- returning the narrowest possible answer.

CREATE TABLE organizations (
    id                    uuid PRIMARY KEY,
    slug                  text NOT NULL UNIQUE
                          CHECK (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$'),
    name                  text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    status                text NOT NULL DEFAULT 'active'
                          CHECK (status IN ('active', 'suspended', 'pending_deletion', 'deleted')),
    tier                  text NOT NULL DEFAULT 'pro'
                          CHECK (tier IN ('free', 'pro', 'enterprise')),
    settings              jsonb NOT NULL DEFAULT '{}',
    deletion_scheduled_at timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER organizations_updated_at BEFORE UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE organizations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON organizations
    USING (id = app_current_org()) WITH CHECK (id = app_current_org());

-- Console users are global: one person may belong to several organizations.
CREATE TABLE users (
    id             uuid PRIMARY KEY,
    email          text NOT NULL UNIQUE CHECK (email = lower(email)),
    password_hash  text,
    display_name   text CHECK (length(display_name) <= 128),
    status         text NOT NULL DEFAULT 'active'
                   CHECK (status IN ('active', 'invited', 'suspended')),
    default_org_id uuid REFERENCES organizations(id) ON DELETE SET NULL,
    last_login_at  timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE memberships (
    organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('admin', 'operator', 'developer', 'viewer')),
    invited_by      uuid REFERENCES users(id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);
CREATE TRIGGER memberships_updated_at BEFORE UPDATE ON memberships
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON memberships
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

-- Invitations for people who have no password yet; the token is shown once.
CREATE TABLE user_invitations (
    token_hash      text PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    expires_at      timestamptz NOT NULL,
    accepted_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX user_invitations_user ON user_invitations (user_id);

-- Opaque refresh tokens, stored as SHA-256. A family is one login; rotation replaces a
-- token by its successor, and presenting a replaced token revokes the whole family.
CREATE TABLE refresh_tokens (
    id              uuid PRIMARY KEY,
    family_id       uuid NOT NULL,
    user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    organization_id uuid REFERENCES organizations(id) ON DELETE CASCADE,
    token_hash      text NOT NULL UNIQUE,
    expires_at      timestamptz NOT NULL,
    replaced_by     uuid,
    revoked_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- Minimal work entities the assignments and keys refer to; later migrations extend them.
CREATE TABLE boards (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX boards_org ON boards (organization_id, created_at DESC, id DESC);
CREATE TRIGGER boards_updated_at BEFORE UPDATE ON boards
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
ALTER TABLE boards ENABLE ROW LEVEL SECURITY;
ALTER TABLE boards FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON boards
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

CREATE TABLE agents (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    board_id        uuid REFERENCES boards(id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agents_org ON agents (organization_id, created_at DESC, id DESC);
CREATE TRIGGER agents_updated_at BEFORE UPDATE ON agents
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
ALTER TABLE agents ENABLE ROW LEVEL SECURITY;
ALTER TABLE agents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON agents
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

-- API keys for agents and service accounts: mc_live_<base64url(32 bytes)>, shown once,
-- stored as SHA-256 and found by the first 12 characters of the random part.
CREATE TABLE api_keys (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    lookup_prefix   text NOT NULL,
    key_hash        text NOT NULL UNIQUE,
    role            text NOT NULL CHECK (role IN ('admin', 'operator', 'developer', 'viewer')),
    agent_id        uuid REFERENCES agents(id) ON DELETE CASCADE,
    created_by      uuid REFERENCES users(id) ON DELETE SET NULL,
    expires_at      timestamptz,
    -- Set on the old key when it is rotated: it keeps working until then.
    grace_until     timestamptz,
    replaced_by     uuid REFERENCES api_keys(id) ON DELETE SET NULL,
    revoked_at      timestamptz,
    last_used_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_lookup ON api_keys (lookup_prefix);
CREATE INDEX api_keys_org ON api_keys (organization_id, created_at DESC, id DESC);
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON api_keys
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

-- H5 end users (seed 000 M3), per organization.
CREATE TABLE h5_users (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    username        text NOT NULL,
    email           text,
    phone           text,
    password_hash   text NOT NULL,
    display_name    text,
    avatar_url      text,
    status          text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'suspended', 'deleted')),
    last_login_at   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, username)
);
CREATE INDEX h5_users_org ON h5_users (organization_id, created_at DESC, id DESC);
CREATE INDEX h5_users_search ON h5_users
    USING gin ((username || ' ' || coalesce(display_name, '') || ' ' || coalesce(email, '')) gin_trgm_ops);
CREATE TRIGGER h5_users_updated_at BEFORE UPDATE ON h5_users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
ALTER TABLE h5_users ENABLE ROW LEVEL SECURITY;
ALTER TABLE h5_users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON h5_users
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

CREATE TABLE h5_refresh_tokens (
    id              uuid PRIMARY KEY,
    family_id       uuid NOT NULL,
    h5_user_id      uuid NOT NULL REFERENCES h5_users(id) ON DELETE CASCADE,
    organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    token_hash      text NOT NULL UNIQUE,
    expires_at      timestamptz NOT NULL,
    revoked         boolean NOT NULL DEFAULT false,
    replaced_by     uuid,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX h5_refresh_tokens_family ON h5_refresh_tokens (family_id);
CREATE INDEX h5_refresh_tokens_user ON h5_refresh_tokens (h5_user_id);
CREATE INDEX h5_refresh_tokens_expires ON h5_refresh_tokens (expires_at);

CREATE TABLE h5_user_agent_assignments (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    h5_user_id      uuid NOT NULL REFERENCES h5_users(id) ON DELETE CASCADE,
    agent_id        uuid NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    board_id        uuid NOT NULL REFERENCES boards(id) ON DELETE CASCADE,
    role            text NOT NULL DEFAULT 'user' CHECK (length(role) BETWEEN 1 AND 32),
    assigned_at     timestamptz NOT NULL DEFAULT now(),
    assigned_by     uuid REFERENCES users(id) ON DELETE SET NULL,
    UNIQUE (h5_user_id, agent_id)
);
CREATE INDEX h5_assignments_agent ON h5_user_agent_assignments (agent_id);
ALTER TABLE h5_user_agent_assignments ENABLE ROW LEVEL SECURITY;
ALTER TABLE h5_user_agent_assignments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON h5_user_agent_assignments
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

-- Security-relevant actions, appended and never changed.
CREATE TABLE audit_log (
    id              uuid PRIMARY KEY,
    organization_id uuid REFERENCES organizations(id) ON DELETE CASCADE,
    actor_type      text NOT NULL CHECK (actor_type IN ('user', 'api_key', 'h5_user', 'system', 'anonymous')),
    actor_id        uuid,
    action          text NOT NULL,
    target_type     text,
    target_id       uuid,
    ip              inet,
    details         jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_org ON audit_log (organization_id, created_at DESC, id DESC);
CREATE INDEX audit_log_action ON audit_log (organization_id, action, created_at DESC);
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
-- Entries without an organization (a failed login for an unknown email) can be written
-- by anyone but read only by the system role.
CREATE POLICY tenant_read ON audit_log FOR SELECT
    USING (organization_id = app_current_org());
CREATE POLICY tenant_write ON audit_log FOR INSERT
    WITH CHECK (organization_id IS NULL OR organization_id = app_current_org());

-- Append-only tables reject UPDATE and DELETE. The one exception is purging a deleted
-- organization after its grace period: the purge transaction names the organization in
-- app.purge_org, and only that tenant's rows may go (by the cascade from organizations).
CREATE FUNCTION reject_mutation() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND OLD.organization_id IS NOT NULL
       AND OLD.organization_id = NULLIF(current_setting('app.purge_org', true), '')::uuid THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION reject_mutation();

CREATE FUNCTION reject_truncate() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: TRUNCATE is not allowed', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION reject_truncate();

-- Narrow cross-tenant lookups for authentication (run as mc_system, BYPASSRLS).

-- The caller's role in an organization, the organization's state, and the user's name
-- and state; no row when the user is not a member.
CREATE FUNCTION auth_membership(p_org uuid, p_user uuid)
    RETURNS TABLE (role text, org_status text, org_tier text, user_name text, user_status text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
AS $$
    SELECT m.role, o.status, o.tier, coalesce(u.display_name, u.email), u.status
    FROM memberships m
    JOIN organizations o ON o.id = m.organization_id
    JOIN users u ON u.id = m.user_id
    WHERE m.organization_id = p_org AND m.user_id = p_user
$$;

-- Every organization the user belongs to (for login's default and "list mine").
CREATE FUNCTION auth_user_organizations(p_user uuid)
    RETURNS TABLE (organization_id uuid, role text, org_status text, joined_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
AS $$
    SELECT m.organization_id, m.role, o.status, m.created_at
    FROM memberships m JOIN organizations o ON o.id = m.organization_id
    WHERE m.user_id = p_user
    ORDER BY m.created_at, m.organization_id
$$;

-- An organization's id and state by slug or id (H5 register/login name their org).
CREATE FUNCTION auth_organization(p_id uuid, p_slug text)
    RETURNS TABLE (id uuid, status text, tier text, settings jsonb)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
AS $$
    SELECT o.id, o.status, o.tier, o.settings FROM organizations o
    WHERE (p_id IS NOT NULL AND o.id = p_id) OR (p_slug IS NOT NULL AND o.slug = p_slug)
    LIMIT 1
$$;

-- API keys sharing a lookup prefix, with their organization's state. Records use at most
-- once a minute so hot keys do not turn every request into a write.
CREATE FUNCTION auth_api_keys(p_prefix text)
    RETURNS TABLE (id uuid, organization_id uuid, name text, key_hash text, role text,
                   agent_id uuid, agent_name text, expires_at timestamptz,
                   grace_until timestamptz, revoked_at timestamptz, org_status text,
                   org_tier text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
AS $$
    SELECT k.id, k.organization_id, k.name, k.key_hash, k.role, k.agent_id, a.name,
           k.expires_at, k.grace_until, k.revoked_at, o.status, o.tier
    FROM api_keys k
    JOIN organizations o ON o.id = k.organization_id
    LEFT JOIN agents a ON a.id = k.agent_id
    WHERE k.lookup_prefix = p_prefix
$$;

CREATE FUNCTION auth_touch_api_key(p_id uuid) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public
AS $$
    UPDATE api_keys SET last_used_at = now()
    WHERE id = p_id AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
$$;

-- The new owner needs CREATE on the schema to own functions in it.
GRANT CREATE ON SCHEMA public TO mc_system;
ALTER FUNCTION auth_membership(uuid, uuid) OWNER TO mc_system;
ALTER FUNCTION auth_user_organizations(uuid) OWNER TO mc_system;
ALTER FUNCTION auth_organization(uuid, text) OWNER TO mc_system;
ALTER FUNCTION auth_api_keys(text) OWNER TO mc_system;
ALTER FUNCTION auth_touch_api_key(uuid) OWNER TO mc_system;
