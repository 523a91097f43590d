-- name: affected_users
-- requires: live_events, issues, projects
-- Answers: how many users are hurt? Distinct users per issue, release, project and day, counted
-- from the stored events, beside Sentry's own userCount for the issue.
-- Reads: events (user_key: who Sentry counts as the user), issues (user_count, times_seen).
-- Grain: one row per source, issue, release and UTC day. The issue_* columns repeat per issue:
-- issue_users counts distinct users over all the issue's stored events; `events_missing` says the
-- mirror holds fewer events than Sentry counted (a sampling policy, or retention), and
-- `differs_for_missing_events` flags rows whose issue_users differs from Sentry's for that reason.
CREATE OR REPLACE VIEW affected_users AS
WITH per_issue AS (
    SELECT source, issue_id, count(*) AS stored_events, count(DISTINCT user_key) AS issue_users
    FROM live_events GROUP BY source, issue_id
),
per_day AS (
    SELECT source, issue_id, project_id, release, CAST(date_trunc('day', date_created) AS DATE) AS day,
           count(*) AS events, count(DISTINCT user_key) AS users
    FROM live_events GROUP BY ALL
)
SELECT d.source, d.issue_id, i.short_id, p.slug AS project, d.project_id, d.release, d.day, d.events, d.users,
       pi.issue_users, i.user_count AS sentry_user_count, pi.stored_events, i.times_seen AS sentry_times_seen,
       coalesce(pi.stored_events < i.times_seen, false) AS events_missing,
       coalesce(pi.issue_users <> i.user_count AND pi.stored_events < i.times_seen, false) AS differs_for_missing_events
FROM per_day d
JOIN per_issue pi ON pi.source = d.source AND pi.issue_id = d.issue_id
LEFT JOIN issues i ON i.source = d.source AND i.id = d.issue_id
LEFT JOIN projects p ON p.source = d.source AND p.id = d.project_id;
