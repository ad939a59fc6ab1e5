-- Gateway fleet (issue 6, seed 000 M2/M4): registration tokens, self-registered
-- gateways with relay tokens, heartbeat metrics, relay connections, and agents bound to
-- gateways. Tokens are stored as SHA-256 (they carry 256 bits of entropy).

CREATE TABLE gateway_registration_tokens (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- First characters of the token (`gw_reg_AbCd…`), to recognise it in lists.
    token_prefix    text NOT NULL,
    token_hash      text NOT NULL UNIQUE,
    created_by      uuid,
    expires_at      timestamptz,
    revoked_at      timestamptz,
    last_used_at    timestamptz,
    use_count       integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gateway_registration_tokens_org
    ON gateway_registration_tokens (organization_id, created_at DESC, id DESC);
ALTER TABLE gateway_registration_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE gateway_registration_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON gateway_registration_tokens
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

CREATE TABLE gateways (
    id                       uuid PRIMARY KEY,
    organization_id          uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name                     text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    url                      text,
    workspace_root           text,
    version                  text,
    capabilities             jsonb NOT NULL DEFAULT '[]'::jsonb,
    -- Seed M2's columns.
    registration_token_hash  text,
    status                   text NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'online', 'offline', 'error')),
    last_heartbeat_at        timestamptz,
    connection_info          jsonb NOT NULL DEFAULT '{}'::jsonb,
    auto_registered          boolean NOT NULL DEFAULT false,
    -- The relay credential; after a rotation the previous one works until it expires.
    relay_token_hash         text NOT NULL UNIQUE,
    previous_relay_token_hash text,
    previous_relay_token_expires_at timestamptz,
    registration_token_id    uuid REFERENCES gateway_registration_tokens(id) ON DELETE SET NULL,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, name)
);
CREATE INDEX ix_gateways_status ON gateways (status);
CREATE INDEX gateways_org ON gateways (organization_id, created_at DESC, id DESC);
-- The offline sweeper's scan.
CREATE INDEX gateways_heartbeat ON gateways (last_heartbeat_at) WHERE status IN ('online', 'error', 'pending');
CREATE TRIGGER gateways_updated_at BEFORE UPDATE ON gateways
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
ALTER TABLE gateways ENABLE ROW LEVEL SECURITY;
ALTER TABLE gateways FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON gateways
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

-- One row per accepted heartbeat (pruned after 7 days by the sweeper).
CREATE TABLE gateway_metrics (
    gateway_id      uuid NOT NULL REFERENCES gateways(id) ON DELETE CASCADE,
    organization_id uuid NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    active_sessions integer NOT NULL CHECK (active_sessions >= 0),
    memory_mb       double precision NOT NULL CHECK (memory_mb >= 0),
    cpu_pct         double precision NOT NULL CHECK (cpu_pct >= 0),
    agent_count     integer NOT NULL CHECK (agent_count >= 0),
    PRIMARY KEY (gateway_id, recorded_at)
);
CREATE INDEX gateway_metrics_recorded ON gateway_metrics (recorded_at);
ALTER TABLE gateway_metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE gateway_metrics FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON gateway_metrics
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

-- Relay sockets, open (disconnected_at NULL) and past.
CREATE TABLE gateway_connections (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    gateway_id      uuid NOT NULL REFERENCES gateways(id) ON DELETE CASCADE,
    relay_instance  text NOT NULL,
    remote_addr     text,
    connected_at    timestamptz NOT NULL DEFAULT now(),
    disconnected_at timestamptz,
    close_reason    text
);
CREATE INDEX gateway_connections_gateway ON gateway_connections (gateway_id, connected_at DESC);
CREATE INDEX gateway_connections_open ON gateway_connections (relay_instance) WHERE disconnected_at IS NULL;
ALTER TABLE gateway_connections ENABLE ROW LEVEL SECURITY;
ALTER TABLE gateway_connections FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON gateway_connections
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

-- Agents gain their gateway binding and runtime state (seed 000 M4/M6).
ALTER TABLE agents
    ADD COLUMN gateway_id        uuid REFERENCES gateways(id) ON DELETE SET NULL,
    ADD COLUMN openclaw_agent_id text CHECK (length(openclaw_agent_id) BETWEEN 1 AND 200),
    ADD COLUMN session_key       text CHECK (length(session_key) BETWEEN 1 AND 300),
    ADD COLUMN status            text NOT NULL DEFAULT 'offline'
                                 CHECK (status IN ('online', 'offline', 'busy', 'error')),
    ADD COLUMN last_seen_at      timestamptz,
    ADD COLUMN capabilities      jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN current_load      integer NOT NULL DEFAULT 0 CHECK (current_load >= 0),
    ADD COLUMN api_key_id        uuid REFERENCES api_keys(id) ON DELETE SET NULL;
CREATE UNIQUE INDEX agents_gateway_openclaw ON agents (gateway_id, openclaw_agent_id)
    WHERE gateway_id IS NOT NULL AND openclaw_agent_id IS NOT NULL;
CREATE INDEX agents_gateway ON agents (gateway_id) WHERE gateway_id IS NOT NULL;

-- Relay and heartbeat authentication finds a gateway by id before the organization is
-- known: a narrow lookup, like auth_api_keys.
CREATE FUNCTION auth_gateway(p_gateway uuid)
    RETURNS TABLE (id uuid, organization_id uuid, name text, status text,
                   relay_token_hash text, previous_relay_token_hash text,
                   previous_relay_token_expires_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
AS $$
    SELECT g.id, g.organization_id, g.name, g.status, g.relay_token_hash,
           g.previous_relay_token_hash, g.previous_relay_token_expires_at
    FROM gateways g JOIN organizations o ON o.id = g.organization_id
    WHERE g.id = p_gateway AND o.status <> 'deleted'
$$;
ALTER FUNCTION auth_gateway(uuid) OWNER TO mc_system;
