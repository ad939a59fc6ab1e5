-- An agent's current API key is derived from api_keys (its newest key that is neither
-- revoked nor expired) instead of stored on the agent, where it went stale when the key
-- was revoked. The index serves that lookup.
ALTER TABLE agents DROP COLUMN api_key_id;
CREATE INDEX api_keys_agent ON api_keys (agent_id, created_at DESC)
    WHERE agent_id IS NOT NULL AND revoked_at IS NULL;
