-- name: matching_events
-- requires: events, projects
-- A table macro, not a view: the stored events that pass the report filters (NULL means "any"),
-- shared by the `report users` and `report top` queries. Usable from SQL too:
--   SELECT count(*) FROM matching_events('backend', 'production', NULL, TIMESTAMP '2025-01-01', NULL);
-- Grain: one row per event (source, issue_id, user_key). Project ids are matched within the event's
-- source: two self-hosted servers may both have a project 1. Events of issues deleted in Sentry
-- are kept here (both reports list such an issue with status 'deleted'), unlike live_events.
CREATE OR REPLACE MACRO matching_events(project, environment, release, since, until) AS TABLE
SELECT source, issue_id, user_key
FROM events ev
WHERE (project IS NULL OR project_id IN (SELECT id FROM projects p WHERE p.slug = project AND p.source = ev.source))
  AND (environment IS NULL OR ev.environment = environment)
  AND (release IS NULL OR ev.release = release)
  AND (since IS NULL OR date_created >= since)
  AND (until IS NULL OR date_created < until);
