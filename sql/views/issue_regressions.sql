-- name: issue_regressions
-- requires: issues, projects
-- Issues Sentry currently marks as regressed (resolved once, seen again), newest first.
CREATE OR REPLACE VIEW issue_regressions AS
SELECT i.source, i.id AS issue_id, i.short_id, p.slug AS project, i.title, i.first_seen, i.last_seen,
       i.times_seen, i.user_count
FROM issues i
LEFT JOIN projects p ON p.source = i.source AND p.id = i.project_id
WHERE i.substatus = 'regressed'
ORDER BY i.last_seen DESC;
