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
-- The project's ids first (a plain IN list the scan filters with), then each survivor's own source:
-- the source check alone, as a correlated IN, took 0.56 s at ten million events against 0.04.
WHERE (project IS NULL OR project_id IN (SELECT id FROM projects WHERE slug = project))
  AND (project IS NULL OR EXISTS (SELECT 1 FROM projects p WHERE p.slug = project AND p.source = ev.source
                                                          AND p.id = ev.project_id))
  AND (environment IS NULL OR ev.environment = environment)
  AND (release IS NULL OR ev.release = release)
  AND (since IS NULL OR date_created >= since)
  AND (until IS NULL OR date_created < until);
