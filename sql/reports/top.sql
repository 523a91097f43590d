-- name: top
-- The `report top` query: the issues with the most stored events among those that pass the
-- filters, with their users, status, and resolutions as the mirror saw them (issue_resolutions).
-- Counting events per issue is cheap; distinct users are counted only for the issues shown.
-- `matching` is not materialized: the events are scanned again, filters pushed down, for the users.
WITH matching AS NOT MATERIALIZED (
    SELECT * FROM matching_events($project::VARCHAR, $environment::VARCHAR, $release::VARCHAR,
                                  $since::TIMESTAMP, $until::TIMESTAMP)
    WHERE $source::VARCHAR IS NULL OR source = $source
),
top AS (
    SELECT source, issue_id, count(*) AS events FROM matching GROUP BY ALL
    ORDER BY events DESC, issue_id LIMIT $limit
),
users AS (
    SELECT m.source, m.issue_id, count(DISTINCT m.user_key) AS users FROM matching m
    SEMI JOIN top ON top.source = m.source AND top.issue_id = m.issue_id
    GROUP BY ALL
),
res AS (
    SELECT source, issue_id, arg_max(time_to_resolve, resolved_seen_at) AS last_time_to_resolve
    FROM issue_resolutions WHERE issue_id IN (SELECT issue_id FROM top) GROUP BY ALL
),
regs AS (  -- every return from resolved to unresolved the mirror saw (as top_issues counts them)
    SELECT source, issue_id, count(*) AS regressions FROM issue_status_history
    WHERE from_status = 'resolved' AND to_status = 'unresolved' AND issue_id IN (SELECT issue_id FROM top)
    GROUP BY ALL
)
SELECT i.short_id, p.slug AS project, top.events, u.users, i.times_seen AS sentry_events,
       CASE WHEN i.deleted_at IS NOT NULL THEN 'deleted' ELSE i.status END AS status, i.substatus,
       i.first_seen, i.last_seen, coalesce(regs.regressions, 0) AS regressions, res.last_time_to_resolve,
       i.title, top.issue_id
FROM top
JOIN users u ON u.source = top.source AND u.issue_id = top.issue_id
JOIN issues i ON i.source = top.source AND i.id = top.issue_id
LEFT JOIN projects p ON p.source = i.source AND p.id = i.project_id
LEFT JOIN res ON res.source = top.source AND res.issue_id = top.issue_id
LEFT JOIN regs ON regs.source = top.source AND regs.issue_id = top.issue_id
ORDER BY top.events DESC, top.issue_id;
