-- name: issue_page_issue
-- The head of an issue's page: Sentry's own fields (the raw JSON keeps statusDetails, assignedTo,
-- firstRelease and lastRelease when the detail shape was stored) beside what the store holds of
-- its events. The first release is named only when the store holds the issue's first event (as in
-- the issue_summary view): sampled events would otherwise name a later release.
WITH ev AS (
    SELECT count(*) AS stored_events, count(DISTINCT user_key) AS stored_users,
           min(date_created) AS first_at, arg_min_null(release, date_created) AS first_release,
           arg_max_null(release, date_created) AS last_release
    FROM events WHERE source = $source AND issue_id = $issue_id
)
SELECT i.source, i.id, i.short_id, p.slug AS project, i.title, i.culprit, i.level, i.status, i.substatus,
       i.raw->'statusDetails' AS status_details, i.type, i.platform, i.priority,
       i.times_seen, i.user_count, ev.stored_events, ev.stored_users,
       i.first_seen, i.last_seen,
       coalesce(i.raw->'firstRelease'->>'version',
                CASE WHEN ev.first_at < i.first_seen + INTERVAL 1 SECOND THEN ev.first_release END) AS first_release,
       coalesce(i.raw->'lastRelease'->>'version', ev.last_release) AS last_release,
       i.assigned_to, i.raw->'assignedTo' AS assignee, i.is_unhandled, i.permalink, i.deleted_at
FROM issues i
CROSS JOIN ev
LEFT JOIN projects p ON p.source = i.source AND p.id = i.project_id
WHERE i.source = $source AND i.id = $issue_id;
