-- name: matching_events
-- requires: events, projects
-- A table macro, not a view: the stored events that pass the report filters (NULL means "any"),
-- shared by the `report users` and `report top` queries. Usable from SQL too:
--   SELECT count(*) FROM matching_events('backend', 'production', NULL, TIMESTAMP '2025-01-01', NULL);
-- Grain: one row per event (source, issue_id, user_key). Project ids are matched within the event's
-- source: two self-hosted servers may both have a project 1.
CREATE OR REPLACE MACRO matching_events(project, environment, release, since, until) AS TABLE
SELECT source, issue_id, user_key
FROM events
WHERE (project IS NULL OR project_id IN (SELECT id FROM projects p WHERE p.slug = project AND p.source = events.source))
  AND (environment IS NULL OR events.environment = environment)
  AND (release IS NULL OR events.release = release)
  AND (since IS NULL OR date_created >= since)
  AND (until IS NULL OR date_created < until);
