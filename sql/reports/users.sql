-- name: users
-- The `report users` query: distinct users per issue among the stored events that pass the
-- filters, beside Sentry's userCount (over all of the issue's events) and whether the mirror
-- lacks some of the issue's events. Counted from events in one pass (distinct counts do not add
-- up across days, so no daily rollup can answer it).
WITH ev AS (
    SELECT source, issue_id,
           count(DISTINCT user_id) FILTER (WHERE matches) AS users,
           count(*) FILTER (WHERE matches) AS events,
           count(*) AS stored_events
    FROM (
        SELECT source, issue_id, user_id,
               ($environment::VARCHAR IS NULL OR environment = $environment)
               AND ($release::VARCHAR IS NULL OR release = $release)
               AND ($since::TIMESTAMP IS NULL OR date_created >= $since)
               AND ($until::TIMESTAMP IS NULL OR date_created < $until) AS matches
        FROM events
        WHERE $project::VARCHAR IS NULL OR project_id IN (SELECT id FROM projects WHERE slug = $project)
    )
    GROUP BY source, issue_id
    HAVING count(*) FILTER (WHERE matches) > 0
)
SELECT i.short_id, p.slug AS project, ev.users, ev.events, i.user_count AS sentry_user_count,
       i.times_seen AS sentry_events, ev.stored_events < i.times_seen AS events_missing,
       left(i.title, 60) AS title, ev.issue_id
FROM ev
LEFT JOIN issues i ON i.source = ev.source AND i.id = ev.issue_id
LEFT JOIN projects p ON p.source = i.source AND p.id = i.project_id
ORDER BY ev.users DESC, ev.events DESC, ev.issue_id
LIMIT $limit;
