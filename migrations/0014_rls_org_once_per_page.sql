-- Row-level security reads the organization once per statement on the tables that are
-- read in pages through a parent's index (BENCHMARKS.md, identity).
--
-- The policy `USING (organization_id = app_current_org())` is inlined by the planner. Where
-- a scan goes through an index that leads with organization_id (boards, tasks, agents,
-- events, ...), the policy becomes an index condition and is evaluated once per scan. A
-- single-row lookup by primary key evaluates it once, as a filter. But where rows are read
-- through an index that does not name the organization (a session's chat messages, a
-- task's comments), the policy is a filter evaluated on every fetched row: current_setting()
-- and a text -> uuid parse each time, about 4,300 backend instructions per row (callgrind,
-- PostgreSQL 18.3), which made a 50-row page more than twice as expensive as without RLS.
--
-- `USING (organization_id = (SELECT app_current_org()))` makes the organization an
-- InitPlan, evaluated once per execution; each row then compares against a parameter.
-- That costs a fixed ~6,000 instructions more per statement than the inlined form on a
-- single-row lookup, so it is applied only to the tables below, whose reads are pages.
-- WITH CHECK stays inlined: it is evaluated per written row and writes here are one row
-- per statement. mc-domain's rls test checks these tables keep the form.

DO $$
DECLARE
    paged text[] := ARRAY['h5_chat_messages', 'h5_chat_sessions', 'h5_user_agent_assignments',
                          'task_comments', 'task_dependencies', 'task_tags', 'approval_tasks',
                          'agent_suggestions', 'gateway_connections', 'gateway_metrics',
                          'rule_firings'];
    p record;
    changed integer := 0;
BEGIN
    FOR p IN
        SELECT schemaname, tablename, policyname
        FROM pg_policies
        WHERE schemaname = current_schema()
          AND tablename = ANY (paged)
          AND qual = '(organization_id = app_current_org())'
    LOOP
        EXECUTE format('ALTER POLICY %I ON %I.%I USING (organization_id = (SELECT app_current_org()))',
                       p.policyname, p.schemaname, p.tablename);
        changed := changed + 1;
    END LOOP;
    IF changed <> array_length(paged, 1) THEN
        RAISE EXCEPTION 'expected one tenant policy on each of % tables, changed %',
            array_length(paged, 1), changed;
    END IF;
END
$$;
