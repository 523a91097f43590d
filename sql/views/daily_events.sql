-- name: daily_events
-- requires: live_events, projects
-- Error events per UTC day, project, environment and level, with the distinct users they hit.
-- The trend behind "are we getting better?": kept past Sentry's 90-day retention.
CREATE OR REPLACE VIEW daily_events AS
SELECT e.source,
       CAST(date_trunc('day', e.date_created) AS DATE) AS day,
       p.slug AS project,
       e.environment,
       e.level,
       count(*) AS events,
       count(DISTINCT e.user_key) AS users,
       count(DISTINCT e.issue_id) AS issues
FROM live_events e
LEFT JOIN projects p ON p.source = e.source AND p.id = e.project_id
GROUP BY ALL;
