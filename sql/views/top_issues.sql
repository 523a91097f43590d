-- name: top_issues
-- requires: issues, events, projects, issue_status_history
-- Answers: which issues matter most, and how long do they take to fix? Each issue with Sentry's
-- counters, the mirror's stored events and distinct users, and its resolutions as the mirror saw
-- them (from the issue_resolutions view: count and latest time to resolve) and its regressions:
-- every time the mirror saw it go from resolved back to unresolved, including after a resolution
-- it first saw as a state (an issue already resolved when first mirrored).
-- Reads: issue_summary and issue_resolutions (views over issues, events, issue_status_history).
-- Grain: one row per source and issue (deleted issues included, with deleted_at).
CREATE OR REPLACE VIEW top_issues AS
WITH res AS (
    SELECT source, issue_id, count(*) AS resolutions,
           arg_max(time_to_resolve, resolved_seen_at) AS last_time_to_resolve,
           median(time_to_resolve) AS median_time_to_resolve
    FROM issue_resolutions GROUP BY source, issue_id
),
regs AS (
    SELECT source, issue_id, count(*) AS regressions FROM issue_status_history
    WHERE from_status = 'resolved' AND to_status = 'unresolved' GROUP BY source, issue_id
)
SELECT s.source, s.issue_id, s.short_id, s.project, s.title, s.level, s.status, s.substatus,
       s.first_seen, s.last_seen, i.deleted_at,
       s.times_seen AS sentry_events, s.user_count AS sentry_users,
       s.stored_events, s.affected_users AS stored_users, s.first_release, s.last_release,
       coalesce(res.resolutions, 0) AS resolutions, coalesce(regs.regressions, 0) AS regressions,
       res.last_time_to_resolve, res.median_time_to_resolve
FROM issue_summary s
JOIN issues i ON i.source = s.source AND i.id = s.issue_id
LEFT JOIN res ON res.source = s.source AND res.issue_id = s.issue_id
LEFT JOIN regs ON regs.source = s.source AND regs.issue_id = s.issue_id;
