-- name: users
-- The `report users` query: distinct users per issue among the stored events that pass the
-- filters, beside Sentry's userCount (over all of the issue's events) and whether the mirror
-- lacks some of the issue's events. Counted from events: distinct counts do not add up across days.
WITH ev AS (
    SELECT e.source, e.issue_id, count(DISTINCT e.user_id) AS users, count(*) AS events
    FROM events e
    LEFT JOIN projects p ON p.source = e.source AND p.id = e.project_id
    WHERE ($project::VARCHAR IS NULL OR p.slug = $project)
      AND ($environment::VARCHAR IS NULL OR e.environment = $environment)
      AND ($release::VARCHAR IS NULL OR e.release = $release)
      AND ($since::TIMESTAMP IS NULL OR e.date_created >= $since)
      AND ($until::TIMESTAMP IS NULL OR e.date_created < $until)
    GROUP BY e.source, e.issue_id
),
stored AS (
    SELECT source, issue_id, count(*) AS stored_events FROM events
    WHERE issue_id IN (SELECT issue_id FROM ev) GROUP BY ALL
)
SELECT i.short_id, p.slug AS project, ev.users, ev.events, i.user_count AS sentry_user_count,
       i.times_seen AS sentry_events, s.stored_events < i.times_seen AS events_missing,
       left(i.title, 60) AS title, ev.issue_id
FROM ev
LEFT JOIN issues i ON i.source = ev.source AND i.id = ev.issue_id
LEFT JOIN projects p ON p.source = i.source AND p.id = i.project_id
LEFT JOIN stored s ON s.source = ev.source AND s.issue_id = ev.issue_id
ORDER BY ev.users DESC, ev.events DESC, ev.issue_id
LIMIT $limit;
