-- name: top
-- The `report top` query: the issues with the most stored events among those that pass the
-- filters, with their users, status and time to resolve (from the top_issues view).
WITH ev AS (
    SELECT e.source, e.issue_id, count(*) AS events, count(DISTINCT e.user_id) AS users
    FROM events e
    LEFT JOIN projects p ON p.source = e.source AND p.id = e.project_id
    WHERE ($project::VARCHAR IS NULL OR p.slug = $project)
      AND ($environment::VARCHAR IS NULL OR e.environment = $environment)
      AND ($release::VARCHAR IS NULL OR e.release = $release)
      AND ($since::TIMESTAMP IS NULL OR e.date_created >= $since)
      AND ($until::TIMESTAMP IS NULL OR e.date_created < $until)
    GROUP BY e.source, e.issue_id
)
SELECT t.short_id, t.project, ev.events, ev.users, t.sentry_events, t.status, t.substatus, t.first_seen,
       t.last_seen, t.regressions, t.last_time_to_resolve, left(t.title, 60) AS title, ev.issue_id
FROM ev
JOIN top_issues t ON t.source = ev.source AND t.issue_id = ev.issue_id
ORDER BY ev.events DESC, ev.users DESC, ev.issue_id
LIMIT $limit;
