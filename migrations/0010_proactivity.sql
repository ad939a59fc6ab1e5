-- Proactivity engine (seed 000 M8): rules that turn events into suggestions, the
-- suggestions themselves, notifications recorded for delivery later, and the rule
-- engine's own bookkeeping (which events it has evaluated, when each rule last fired
-- for each subject, which cron ticks have fired).

CREATE TABLE proactive_rules (
    id               uuid PRIMARY KEY,
    organization_id  uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    board_id         uuid REFERENCES boards(id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 500),
    description      text CHECK (length(description) <= 50000),
    trigger_event    text NOT NULL CHECK (trigger_event ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    conditions       jsonb NOT NULL DEFAULT '{}',
    action_type      text NOT NULL
                     CHECK (action_type IN ('create_suggestion', 'send_notification', 'auto_assign')),
    action_config    jsonb NOT NULL DEFAULT '{}',
    is_enabled       boolean NOT NULL DEFAULT true,
    is_builtin       boolean NOT NULL DEFAULT false,
    -- Which builtin this is (one of each per organization); NULL for custom rules.
    builtin_key      text,
    cooldown_seconds integer NOT NULL DEFAULT 3600 CHECK (cooldown_seconds BETWEEN 0 AND 2592000),
    last_fired_at    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((builtin_key IS NULL) = (NOT is_builtin))
);
CREATE INDEX proactive_rules_org ON proactive_rules (organization_id, is_enabled, trigger_event);
CREATE INDEX proactive_rules_list ON proactive_rules (organization_id, created_at, id);
CREATE UNIQUE INDEX proactive_rules_builtin ON proactive_rules (organization_id, builtin_key)
    WHERE builtin_key IS NOT NULL;
CREATE TRIGGER proactive_rules_updated_at BEFORE UPDATE ON proactive_rules
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
ALTER TABLE proactive_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE proactive_rules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON proactive_rules
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

-- When a rule last fired for a subject (`task:<id>`, `board:<id>`, `agent:<id>`, `org`):
-- the cooldown is one conditional upsert, so two engines cannot both fire inside it.
CREATE TABLE rule_firings (
    rule_id         uuid NOT NULL REFERENCES proactive_rules(id) ON DELETE CASCADE,
    subject         text NOT NULL,
    organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    fired_at        timestamptz NOT NULL,
    PRIMARY KEY (rule_id, subject)
);
ALTER TABLE rule_firings ENABLE ROW LEVEL SECURITY;
ALTER TABLE rule_firings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON rule_firings
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

CREATE TABLE agent_suggestions (
    id                  uuid PRIMARY KEY,
    organization_id     uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    board_id            uuid REFERENCES boards(id) ON DELETE CASCADE,
    agent_id            uuid REFERENCES agents(id) ON DELETE SET NULL,
    task_id             uuid REFERENCES tasks(id) ON DELETE SET NULL,
    rule_id             uuid REFERENCES proactive_rules(id) ON DELETE SET NULL,
    suggestion_type     text NOT NULL CHECK (suggestion_type IN
                        ('deadline_alert', 'quality_concern', 'workload_rebalance',
                         'task_reassign', 'task_create', 'blocked_task', 'idle_agent')),
    title               text NOT NULL CHECK (length(title) BETWEEN 1 AND 512),
    description         text CHECK (length(description) <= 50000),
    confidence          double precision NOT NULL DEFAULT 0.5 CHECK (confidence BETWEEN 0 AND 1),
    priority            text NOT NULL DEFAULT 'medium'
                        CHECK (priority IN ('low', 'medium', 'high', 'critical')),
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'accepted', 'dismissed', 'expired', 'executed')),
    -- What accepting does ({"action": ...}) and the context it was made in.
    payload             jsonb NOT NULL DEFAULT '{}',
    -- What it is about; at most one pending suggestion per type and subject.
    subject             text,
    -- agent_events has a composite key (it is partitioned), so this is not a foreign key.
    source_event_id     uuid,
    created_by_type     text NOT NULL,
    created_by_id       uuid NOT NULL,
    resolved_by_user_id uuid REFERENCES users(id) ON DELETE SET NULL,
    resolved_at         timestamptz,
    resolution_reason   text CHECK (length(resolution_reason) <= 2000),
    action_result       jsonb,
    expires_at          timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_suggestions_org_status ON agent_suggestions (organization_id, status, created_at DESC, id DESC);
CREATE INDEX agent_suggestions_list ON agent_suggestions (organization_id, created_at DESC, id DESC);
CREATE INDEX agent_suggestions_board ON agent_suggestions (board_id) WHERE board_id IS NOT NULL;
CREATE INDEX agent_suggestions_expiry ON agent_suggestions (expires_at) WHERE status = 'pending';
CREATE UNIQUE INDEX agent_suggestions_open_subject
    ON agent_suggestions (organization_id, suggestion_type, subject)
    WHERE status = 'pending' AND subject IS NOT NULL;
CREATE TRIGGER agent_suggestions_updated_at BEFORE UPDATE ON agent_suggestions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
ALTER TABLE agent_suggestions ENABLE ROW LEVEL SECURITY;
ALTER TABLE agent_suggestions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON agent_suggestions
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

-- Notifications a rule asked for; the notifications capability delivers them.
CREATE TABLE notifications (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    rule_id         uuid REFERENCES proactive_rules(id) ON DELETE SET NULL,
    channel         text NOT NULL CHECK (channel IN ('in_app', 'email', 'webhook')),
    recipients      jsonb NOT NULL DEFAULT '[]',
    title           text NOT NULL CHECK (length(title) BETWEEN 1 AND 512),
    body            text CHECK (length(body) <= 10000),
    subject         text,
    source_event_id uuid,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_pending ON notifications (created_at) WHERE status = 'pending';
ALTER TABLE notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE notifications FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON notifications
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

-- Events the rule engine has evaluated: written in the transaction of their effects, so
-- an event redelivered by the stream (a consumer died before acknowledging) or found again
-- by the catch-up scan is not evaluated twice. Rows at or below the organization's cursor
-- are pruned. System tables: only the engine (mc_system) reads them.
CREATE TABLE rule_event_receipts (
    event_id        uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    seq             bigint NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('evaluated', 'poison', 'stale')),
    evaluated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rule_event_receipts_org ON rule_event_receipts (organization_id, seq);
ALTER TABLE rule_event_receipts ENABLE ROW LEVEL SECURITY;
ALTER TABLE rule_event_receipts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON rule_event_receipts
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

-- Every event of the organization up to evaluated_through has been evaluated.
CREATE TABLE rule_cursors (
    organization_id   uuid PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    evaluated_through bigint NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE rule_cursors ENABLE ROW LEVEL SECURITY;
ALTER TABLE rule_cursors FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON rule_cursors
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());
-- Existing history is not evaluated when the engine first arrives. Both tables force
-- row-level security, so this cross-tenant copy runs as the system role.
SET LOCAL ROLE mc_system;
INSERT INTO rule_cursors (organization_id, evaluated_through)
SELECT organization_id, last_seq FROM org_event_seq;
RESET ROLE;

-- One row per fired tick: whoever inserts it fires the tick, exactly once.
CREATE TABLE rule_cron_ticks (
    kind          text NOT NULL CHECK (kind IN ('minutely', 'hourly', 'daily')),
    period_start  timestamptz NOT NULL,
    fired_at      timestamptz NOT NULL DEFAULT now(),
    organizations integer NOT NULL,
    PRIMARY KEY (kind, period_start)
);

-- The six builtin rules of seed 000 M8, per organization. Their conditions are in the
-- language of crates/mc-domain/src/proactivity/conditions.rs (a test validates them).
CREATE FUNCTION seed_builtin_rules(p_org uuid) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
AS $$
DECLARE
    caller_org text := current_setting('app.current_org_id', true);
BEGIN
    -- Row-level security is forced on the table: act as the new organization, then give
    -- the caller its own setting back.
    PERFORM set_config('app.current_org_id', p_org::text, true);
    INSERT INTO proactive_rules (id, organization_id, name, description, trigger_event, conditions,
                                 action_type, action_config, is_builtin, builtin_key, cooldown_seconds)
    SELECT gen_random_uuid(), p_org, r.name, r.description, r.trigger_event, r.conditions::jsonb,
           'create_suggestion', r.action_config::jsonb, true, r.key, r.cooldown
    FROM (VALUES
        ('overdue_task', 'Overdue Task Alert',
         'Once a day, every open task past its due date.', 'cron.daily',
         '{"for_each": "task", "all": [{"field": "task.overdue", "op": "eq", "value": true}]}',
         '{"suggestion_type": "deadline_alert", "priority": "high", "confidence": 0.9,
           "title": "Overdue: {task.title}",
           "description": "Task \"{task.title}\" was due at {task.due_at} and is still {task.status}. Accept to raise its priority to critical.",
           "on_accept": {"action": "set_priority", "task_id": "{task.id}", "priority": "critical"}}',
         86400),
        ('stale_review', 'Stale Review Detection',
         'Every hour, tasks waiting in review for more than 24 hours.', 'cron.hourly',
         '{"for_each": "task", "all": [{"field": "task.status", "op": "eq", "value": "review"},
                                       {"field": "task.age_in_status_seconds", "op": "gt", "value": 86400}]}',
         '{"suggestion_type": "quality_concern", "priority": "medium", "confidence": 0.7,
           "title": "Review stalled: {task.title}",
           "description": "Task \"{task.title}\" has been in review for more than a day.",
           "on_accept": {"action": "none"}}',
         86400),
        ('wip_limit', 'WIP Limit Warning',
         'A status change leaves more tasks in progress than three per agent slot of the board.',
         'task.status_changed',
         '{"all": [{"field": "board.in_progress_count", "op": "gt", "value": {"field": "board.max_agents", "times": 3}}]}',
         '{"suggestion_type": "workload_rebalance", "priority": "high", "confidence": 0.8, "subject": "board",
           "title": "Too much work in progress on {board.name}",
           "description": "{board.in_progress_count} tasks are in progress; the board allows {board.max_agents} agents.",
           "on_accept": {"action": "none"}}',
         3600),
        ('unblocking', 'Unblocking Opportunity',
         'A task is done and tasks that waited on it can now start.', 'task.status_changed',
         '{"all": [{"field": "event.payload.to", "op": "eq", "value": "done"},
                   {"field": "task.unblocked_downstream_count", "op": "gt", "value": 0}]}',
         '{"suggestion_type": "task_reassign", "priority": "medium", "confidence": 0.7,
           "title": "{task.unblocked_downstream_count} task(s) unblocked by {task.title}",
           "description": "These tasks no longer wait on anything. Accept to assign them to the agent that finished the blocker.",
           "on_accept": {"action": "assign_tasks", "task_ids": "{task.unblocked_task_ids}", "agent_id": "{task.assignee_agent_id}"}}',
         3600),
        ('idle_agent', 'Idle Agent Detection',
         'An agent reports in with nothing in progress for over an hour while work waits.', 'agent.heartbeat',
         '{"all": [{"field": "agent.in_progress_count", "op": "eq", "value": 0},
                   {"field": "agent.idle_seconds", "op": "gt", "value": 3600},
                   {"field": "agent.next_task_id", "op": "exists"}]}',
         '{"suggestion_type": "task_reassign", "priority": "medium", "confidence": 0.6, "subject": "agent",
           "title": "{agent.name} is idle",
           "description": "{agent.name} has had nothing in progress for over an hour. Accept to assign it \"{agent.next_task_title}\".",
           "on_accept": {"action": "assign_tasks", "task_ids": ["{agent.next_task_id}"], "agent_id": "{agent.id}"}}',
         3600),
        ('follow_up', 'Auto-create Follow-up',
         'A finished task mentions a follow-up.', 'task.status_changed',
         '{"all": [{"field": "event.payload.to", "op": "eq", "value": "done"},
                   {"any": [{"field": "task.title", "op": "matches", "value": "(?i)follow[ -]?up|next step|todo"},
                            {"field": "task.description", "op": "matches", "value": "(?i)follow[ -]?up|next step|todo"}]}]}',
         '{"suggestion_type": "task_create", "priority": "low", "confidence": 0.6,
           "title": "Follow up on {task.title}",
           "description": "Task \"{task.title}\" is done and mentions a follow-up. Accept to create it.",
           "on_accept": {"action": "create_task", "board_id": "{task.board_id}", "title": "Follow up: {task.title}", "priority": "{task.priority}"}}',
         86400)
    ) AS r(key, name, description, trigger_event, conditions, action_config, cooldown)
    ON CONFLICT DO NOTHING;
    PERFORM set_config('app.current_org_id', coalesce(caller_org, ''), true);
END;
$$;

CREATE FUNCTION organizations_seed_rules() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
AS $$
BEGIN
    PERFORM seed_builtin_rules(NEW.id);
    RETURN NEW;
END;
$$;
CREATE TRIGGER organizations_builtin_rules AFTER INSERT ON organizations
    FOR EACH ROW EXECUTE FUNCTION organizations_seed_rules();

SELECT seed_builtin_rules(id) FROM organizations;

-- Builtin rules may be switched off but not removed.
CREATE FUNCTION proactive_rules_keep_builtin() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    -- Depth 1 is a direct DELETE; a cascade from the organization runs deeper.
    IF OLD.is_builtin AND pg_trigger_depth() = 1 THEN
        RAISE EXCEPTION 'builtin rules cannot be deleted' USING ERRCODE = 'check_violation';
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER proactive_rules_keep_builtin BEFORE DELETE ON proactive_rules
    FOR EACH ROW EXECUTE FUNCTION proactive_rules_keep_builtin();
