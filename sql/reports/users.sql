-- name: users
-- The `report users` query: distinct users per issue among the stored events that pass the
-- filters, beside Sentry's userCount (over all of the issue's events) and whether the mirror
-- lacks some of the issue's events. Exact, and cheap on a large store: an issue cannot have more
-- users than events, so distinct users are counted for the issues with the most events
-- (2 x --limit of them: the first pick), which gives a bound, the --limit-th user count among
-- them; then only for the other issues with at least that many events (usually none). Reading
-- the events costs more than counting them, so `matching` is not materialized: each step scans
-- the events again with its filters pushed down.
WITH matching AS NOT MATERIALIZED (
    SELECT * FROM matching_events($project::VARCHAR, $environment::VARCHAR, $release::VARCHAR,
                                  $since::TIMESTAMP, $until::TIMESTAMP)
    WHERE $source::VARCHAR IS NULL OR source = $source
),
counts AS (SELECT source, issue_id, count(*) AS events FROM matching GROUP BY ALL),
first_pick AS (SELECT source, issue_id FROM counts ORDER BY events DESC, issue_id LIMIT 2 * $limit),
first_users AS (
    SELECT m.source, m.issue_id, count(DISTINCT m.user_key) AS users FROM matching m
    SEMI JOIN first_pick f ON f.source = m.source AND f.issue_id = m.issue_id
    GROUP BY ALL
),
bound AS (SELECT coalesce(min(users), 0) AS users FROM (SELECT users FROM first_users ORDER BY users DESC LIMIT $limit)),
more AS (  -- issues left out of the first pick that have enough events to reach the list
    SELECT c.source, c.issue_id FROM counts c
    ANTI JOIN first_pick f ON f.source = c.source AND f.issue_id = c.issue_id
    WHERE c.events >= (SELECT users FROM bound)
),
more_users AS (
    SELECT m.source, m.issue_id, count(DISTINCT m.user_key) AS users FROM matching m
    SEMI JOIN more ON more.source = m.source AND more.issue_id = m.issue_id
    GROUP BY ALL
),
ev AS (
    SELECT c.source, c.issue_id, c.events, u.users
    FROM (SELECT * FROM first_users UNION ALL SELECT * FROM more_users) u
    JOIN counts c ON c.source = u.source AND c.issue_id = u.issue_id
),
stored AS (  -- all of the issue's stored events (with no filter: the matching ones, counted already)
    SELECT e.source, e.issue_id, count(*) AS stored_events FROM events e
    SEMI JOIN ev ON ev.source = e.source AND ev.issue_id = e.issue_id
    WHERE NOT ($project::VARCHAR IS NULL AND $environment::VARCHAR IS NULL AND $release::VARCHAR IS NULL
               AND $since::TIMESTAMP IS NULL AND $until::TIMESTAMP IS NULL)
    GROUP BY ALL
)
SELECT i.short_id, p.slug AS project, CASE WHEN i.deleted_at IS NOT NULL THEN 'deleted' ELSE i.status END AS status,
       ev.users, ev.events, i.user_count AS sentry_user_count,
       i.times_seen AS sentry_events, coalesce(s.stored_events, ev.events) < i.times_seen AS events_missing,
       i.title, ev.issue_id
FROM ev
LEFT JOIN stored s ON s.source = ev.source AND s.issue_id = ev.issue_id
LEFT JOIN issues i ON i.source = ev.source AND i.id = ev.issue_id
LEFT JOIN projects p ON p.source = i.source AND p.id = i.project_id
ORDER BY ev.users DESC, ev.events DESC, ev.issue_id
LIMIT $limit;
