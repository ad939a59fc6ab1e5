-- Fixes to 0010, found in review.
--
-- 1. Organizations that existed before 0010 got no builtin rules: 0010 read
--    `organizations` as the application role, which row-level security shows nothing
--    without a current organization. Seeding is idempotent, so it simply runs again, as
--    the system role.
SET LOCAL ROLE mc_system;
SELECT seed_builtin_rules(id) FROM organizations;
RESET ROLE;

-- 2. `last_fired_at` was written on every firing, which moved the rule's `updated_at`
--    (invalidating the engine's compiled copy) and locked the rule row for the rest of the
--    engine's batch. It is derivable from `rule_firings`, which the API now reads instead.
ALTER TABLE proactive_rules DROP COLUMN last_fired_at;
CREATE INDEX rule_firings_rule ON rule_firings (rule_id, fired_at DESC);
