-- name: release_health
-- requires: events, live_events, issues, projects
-- Per release: events, affected users, issues seen, and issues new in that release (their first
-- stored event carries it) — the per-release regression report.
CREATE OR REPLACE VIEW release_health AS
WITH first_event AS (
    SELECT source, issue_id, arg_min_null(release, date_created) AS release
    FROM events GROUP BY source, issue_id
),
per_release AS (
    SELECT source, project_id, release,
           min(date_created) AS first_event_at,
           count(*) AS events,
           count(DISTINCT user_key) AS affected_users,
           count(DISTINCT issue_id) AS issues_seen
    FROM live_events WHERE release IS NOT NULL
    GROUP BY ALL
)
SELECT r.source, p.slug AS project, r.release, r.first_event_at, r.events, r.affected_users, r.issues_seen,
       (SELECT count(*) FROM first_event f
          JOIN issues i ON i.source = f.source AND i.id = f.issue_id
         WHERE f.source = r.source AND f.release = r.release AND i.project_id = r.project_id) AS new_issues
FROM per_release r
LEFT JOIN projects p ON p.source = r.source AND p.id = r.project_id;
