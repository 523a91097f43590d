-- name: users
-- The `report users` query: distinct users per issue among the stored events that pass the
-- filters, beside Sentry's userCount (over all of the issue's events) and whether the mirror
-- lacks some of the issue's events. Exact, and cheap on a large store: an issue cannot have more
-- users than events, so distinct users are counted only for the issues with the most events
-- (4 x --limit of them) and for those with at least as many events as the --limit-th user count
-- found among them.
WITH matching AS (
    SELECT * FROM matching_events($project::VARCHAR, $environment::VARCHAR, $release::VARCHAR,
                                  $since::TIMESTAMP, $until::TIMESTAMP)
),
counts AS (SELECT source, issue_id, count(*) AS events FROM matching GROUP BY ALL),
first_pick AS (
    SELECT m.issue_id, count(DISTINCT m.user_id) AS users FROM matching m
    WHERE m.issue_id IN (SELECT issue_id FROM counts ORDER BY events DESC, issue_id LIMIT 4 * $limit)
    GROUP BY m.issue_id
),
bound AS (SELECT coalesce(min(users), 0) AS users FROM (SELECT users FROM first_pick ORDER BY users DESC LIMIT $limit)),
candidates AS (SELECT source, issue_id, events FROM counts WHERE events >= (SELECT users FROM bound)),
ev AS (
    SELECT c.source, c.issue_id, c.events, count(DISTINCT m.user_id) AS users
    FROM candidates c JOIN matching m ON m.source = c.source AND m.issue_id = c.issue_id
    GROUP BY ALL
),
stored AS (
    SELECT source, issue_id, count(*) AS stored_events FROM events
    WHERE issue_id IN (SELECT issue_id FROM candidates) GROUP BY ALL
)
SELECT i.short_id, p.slug AS project, ev.users, ev.events, i.user_count AS sentry_user_count,
       i.times_seen AS sentry_events, s.stored_events < i.times_seen AS events_missing,
       left(i.title, 60) AS title, ev.issue_id
FROM ev
LEFT JOIN stored s ON s.source = ev.source AND s.issue_id = ev.issue_id
LEFT JOIN issues i ON i.source = ev.source AND i.id = ev.issue_id
LEFT JOIN projects p ON p.source = i.source AND p.id = i.project_id
ORDER BY ev.users DESC, ev.events DESC, ev.issue_id
LIMIT $limit;
