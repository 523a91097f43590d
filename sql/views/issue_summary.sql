-- name: issue_summary
-- requires: issues, events, projects
-- One row per issue: Sentry's own counters (times_seen, user_count) beside what the mirror holds
-- (events and distinct affected users, from the stored events), the releases it was first and last
-- seen in. first_release is known only when the mirror holds the issue's first event (sampled
-- events, or an issue older than the mirror, leave it NULL rather than name a later release). An
-- issue deleted in Sentry stays in the mirror with status 'deleted' (its last status in Sentry is
-- in issues.status).
CREATE OR REPLACE VIEW issue_summary AS
WITH ev AS (
    SELECT source, issue_id,
           count(*) AS stored_events,
           count(DISTINCT user_key) AS affected_users,
           min(date_created) AS first_at,
           arg_min_null(release, date_created) AS first_release,
           arg_max_null(release, date_created) AS last_release
    FROM events GROUP BY source, issue_id
)
SELECT i.source, i.id AS issue_id, i.short_id, p.slug AS project, i.title, i.level,
       CASE WHEN i.deleted_at IS NOT NULL THEN 'deleted' ELSE i.status END AS status, i.substatus,
       i.first_seen, i.last_seen, i.times_seen, i.user_count,
       coalesce(ev.stored_events, 0) AS stored_events,
       coalesce(ev.affected_users, 0) AS affected_users,
       -- first_seen may be cut to the second while event times keep their milliseconds
       CASE WHEN ev.first_at < i.first_seen + INTERVAL 1 SECOND THEN ev.first_release END AS first_release,
       ev.last_release
FROM issues i
LEFT JOIN ev ON ev.source = i.source AND ev.issue_id = i.id
LEFT JOIN projects p ON p.source = i.source AND p.id = i.project_id;
