-- Boards, tasks and the event log.
--
-- Work entities are tenant tables (RLS forced). Every mutation writes an agent_events row
-- in the same transaction; the row carries a per-organization sequence number assigned
-- under a row lock on org_event_seq, so within an organization seq order is commit order
-- and there are no gaps: a subscriber that sees seq N+2 after N knows it missed one.

-- Full organization rows of a user, with their role (one query for "list mine").
CREATE FUNCTION auth_user_organization_rows(p_user uuid)
    RETURNS TABLE (id uuid, slug text, name text, status text, tier text, settings jsonb,
                   deletion_scheduled_at timestamptz, created_at timestamptz,
                   updated_at timestamptz, role text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
AS $$
    SELECT o.id, o.slug, o.name, o.status, o.tier, o.settings, o.deletion_scheduled_at,
           o.created_at, o.updated_at, m.role
    FROM memberships m JOIN organizations o ON o.id = m.organization_id
    WHERE m.user_id = p_user AND o.status <> 'deleted'
    ORDER BY m.created_at, m.organization_id
$$;
ALTER FUNCTION auth_user_organization_rows(uuid) OWNER TO mc_system;

CREATE TABLE board_groups (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description     text CHECK (length(description) <= 10000),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX board_groups_org ON board_groups (organization_id, created_at DESC, id DESC);
CREATE TRIGGER board_groups_updated_at BEFORE UPDATE ON board_groups
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
ALTER TABLE board_groups ENABLE ROW LEVEL SECURITY;
ALTER TABLE board_groups FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON board_groups
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

ALTER TABLE boards
    ADD COLUMN slug text,
    ADD COLUMN description text CHECK (length(description) <= 10000),
    ADD COLUMN objective text CHECK (length(objective) <= 10000),
    ADD COLUMN board_group_id uuid REFERENCES board_groups(id) ON DELETE SET NULL,
    ADD COLUMN max_agents integer NOT NULL DEFAULT 5 CHECK (max_agents BETWEEN 0 AND 10000),
    ADD COLUMN require_approval_for_done boolean NOT NULL DEFAULT false,
    ADD COLUMN require_evidence_for_done boolean NOT NULL DEFAULT false,
    ADD COLUMN archived_at timestamptz;
UPDATE boards SET slug = 'board-' || substr(replace(id::text, '-', ''), 1, 12) WHERE slug IS NULL;
ALTER TABLE boards ALTER COLUMN slug SET NOT NULL;
ALTER TABLE boards ADD CONSTRAINT boards_slug_format
    CHECK (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$');
CREATE UNIQUE INDEX boards_org_slug ON boards (organization_id, slug);

CREATE TABLE tasks (
    id                 uuid PRIMARY KEY,
    organization_id    uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    board_id           uuid NOT NULL REFERENCES boards(id) ON DELETE CASCADE,
    title              text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    description        text CHECK (length(description) <= 50000),
    status             text NOT NULL DEFAULT 'todo'
                       CHECK (status IN ('todo', 'in_progress', 'review', 'done', 'blocked')),
    priority           text NOT NULL DEFAULT 'medium'
                       CHECK (priority IN ('critical', 'high', 'medium', 'low')),
    assignee_agent_id  uuid REFERENCES agents(id) ON DELETE SET NULL,
    assignee_user_id   uuid REFERENCES users(id) ON DELETE SET NULL,
    due_at             timestamptz,
    estimate_hours     double precision CHECK (estimate_hours >= 0 AND estimate_hours <= 100000),
    evidence           jsonb NOT NULL DEFAULT '[]',
    position           double precision NOT NULL DEFAULT 0,
    version            integer NOT NULL DEFAULT 1,
    status_changed_at  timestamptz NOT NULL DEFAULT now(),
    completed_at       timestamptz,
    created_by_type    text NOT NULL,
    created_by_id      uuid NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (assignee_agent_id IS NULL OR assignee_user_id IS NULL)
);
CREATE INDEX tasks_board ON tasks (organization_id, board_id, status, position);
CREATE INDEX tasks_board_created ON tasks (organization_id, board_id, created_at DESC, id DESC);
CREATE INDEX tasks_agent ON tasks (assignee_agent_id, status) WHERE assignee_agent_id IS NOT NULL;
CREATE INDEX tasks_due ON tasks (organization_id, due_at) WHERE due_at IS NOT NULL AND status <> 'done';
CREATE TRIGGER tasks_updated_at BEFORE UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON tasks
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

-- task_id cannot finish while depends_on_task_id is open.
CREATE TABLE task_dependencies (
    organization_id    uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    task_id            uuid NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    depends_on_task_id uuid NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, depends_on_task_id),
    CHECK (task_id <> depends_on_task_id)
);
CREATE INDEX task_dependencies_reverse ON task_dependencies (depends_on_task_id);
ALTER TABLE task_dependencies ENABLE ROW LEVEL SECURITY;
ALTER TABLE task_dependencies FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON task_dependencies
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

CREATE TABLE tags (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    color           text NOT NULL DEFAULT '#64748b' CHECK (color ~ '^#[0-9a-fA-F]{6}$'),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tags_org_name ON tags (organization_id, lower(name));
ALTER TABLE tags ENABLE ROW LEVEL SECURITY;
ALTER TABLE tags FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON tags
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

CREATE TABLE task_tags (
    organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    task_id         uuid NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    tag_id          uuid NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, tag_id)
);
CREATE INDEX task_tags_tag ON task_tags (tag_id);
ALTER TABLE task_tags ENABLE ROW LEVEL SECURITY;
ALTER TABLE task_tags FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON task_tags
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

CREATE TABLE task_comments (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    task_id         uuid NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    author_type     text NOT NULL,
    author_id       uuid NOT NULL,
    author_name     text NOT NULL,
    body            text NOT NULL CHECK (length(body) BETWEEN 1 AND 20000),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_comments_task ON task_comments (task_id, created_at, id);
ALTER TABLE task_comments ENABLE ROW LEVEL SECURITY;
ALTER TABLE task_comments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON task_comments
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

CREATE TABLE approvals (
    id                 uuid PRIMARY KEY,
    organization_id    uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    board_id           uuid NOT NULL REFERENCES boards(id) ON DELETE CASCADE,
    title              text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    description        text CHECK (length(description) <= 20000),
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'approved', 'rejected')),
    requested_by_type  text NOT NULL,
    requested_by_id    uuid NOT NULL,
    requested_by_name  text NOT NULL,
    resolved_by_type   text,
    resolved_by_id     uuid,
    resolved_by_name   text,
    resolution_reason  text CHECK (length(resolution_reason) <= 5000),
    resolved_at        timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX approvals_org ON approvals (organization_id, status, created_at DESC, id DESC);
ALTER TABLE approvals ENABLE ROW LEVEL SECURITY;
ALTER TABLE approvals FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON approvals
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

CREATE TABLE approval_tasks (
    organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    approval_id     uuid NOT NULL REFERENCES approvals(id) ON DELETE CASCADE,
    task_id         uuid NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    PRIMARY KEY (approval_id, task_id)
);
CREATE INDEX approval_tasks_task ON approval_tasks (task_id);
ALTER TABLE approval_tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE approval_tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON approval_tasks
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

-- Event log ------------------------------------------------------------------------------

CREATE TABLE org_event_seq (
    organization_id uuid PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    last_seq        bigint NOT NULL DEFAULT 0
);
ALTER TABLE org_event_seq ENABLE ROW LEVEL SECURITY;
ALTER TABLE org_event_seq FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON org_event_seq
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

-- Seed 000 M8's agent_events plus seq, actor, and monthly range partitions on created_at
-- (retention drops whole partitions older than PROACTIVITY_EVENT_TTL_DAYS). Foreign keys
-- to boards/tasks are deliberately absent: the log outlives what it describes.
CREATE TABLE agent_events (
    id              uuid NOT NULL,
    organization_id uuid NOT NULL,
    seq             bigint NOT NULL,
    board_id        uuid,
    agent_id        uuid,
    task_id         uuid,
    event_type      text NOT NULL CHECK (event_type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    actor_type      text NOT NULL,
    actor_id        uuid NOT NULL,
    actor_name      text NOT NULL,
    payload         jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, seq, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX agent_events_board ON agent_events (organization_id, board_id, seq) WHERE board_id IS NOT NULL;
CREATE INDEX agent_events_task ON agent_events (organization_id, task_id, seq) WHERE task_id IS NOT NULL;
CREATE INDEX agent_events_agent ON agent_events (organization_id, agent_id, seq) WHERE agent_id IS NOT NULL;
CREATE INDEX agent_events_type ON agent_events (organization_id, event_type, seq);
CREATE INDEX agent_events_actor ON agent_events (organization_id, actor_id, seq);
CREATE INDEX agent_events_created ON agent_events (created_at);
ALTER TABLE agent_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE agent_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON agent_events
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());
CREATE TRIGGER agent_events_append_only BEFORE UPDATE OR DELETE ON agent_events
    FOR EACH ROW EXECUTE FUNCTION reject_mutation();
CREATE TRIGGER agent_events_no_truncate BEFORE TRUNCATE ON agent_events
    FOR EACH STATEMENT EXECUTE FUNCTION reject_truncate();

-- Creates the monthly partitions covering [month of `from`, `months` months later).
-- Called here for the current and next two months, and daily by the worker.
-- Partitions reached by name bypass the parent's policy and statement triggers, so each
-- one gets its own forced RLS policy and TRUNCATE guard.
CREATE FUNCTION secure_agent_event_partition(p_name text)
    RETURNS void
    LANGUAGE plpgsql
AS $$
BEGIN
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', p_name);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', p_name);
    EXECUTE format('CREATE POLICY tenant ON %I USING (organization_id = app_current_org())'
                   ' WITH CHECK (organization_id = app_current_org())', p_name);
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION reject_truncate()',
                   p_name || '_no_truncate', p_name);
END
$$;

CREATE FUNCTION ensure_agent_event_partitions(p_from timestamptz, p_months integer)
    RETURNS integer
    LANGUAGE plpgsql
AS $$
DECLARE
    start_month date := date_trunc('month', p_from)::date;
    lo date;
    hi date;
    name text;
    created integer := 0;
BEGIN
    FOR i IN 0..greatest(p_months, 1) - 1 LOOP
        lo := (start_month + make_interval(months => i))::date;
        hi := (lo + interval '1 month')::date;
        name := format('agent_events_%s', to_char(lo, 'YYYYMM'));
        IF to_regclass(name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF agent_events FOR VALUES FROM (%L) TO (%L)',
                name, lo, hi);
            PERFORM secure_agent_event_partition(name);
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;
SELECT ensure_agent_event_partitions(now() - interval '1 month', 4);
-- Catches rows outside every monthly partition (clock skew, a missed maintenance run),
-- so an insert never fails for lack of a partition.
CREATE TABLE agent_events_default PARTITION OF agent_events DEFAULT;
SELECT secure_agent_event_partition('agent_events_default');
