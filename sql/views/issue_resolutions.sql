-- name: issue_resolutions
-- requires: issue_status_history, issues, projects
-- Every resolution the mirror observed, with the time from the issue's first event (or from its
-- last regression) to the sync that first saw it resolved: an upper bound, as precise as the
-- sync schedule. Issues already resolved when first mirrored are left out (when is unknown).
-- `regressed_later` says whether it was seen unresolved again afterwards.
CREATE OR REPLACE VIEW issue_resolutions AS
WITH h AS (
    SELECT source, issue_id, id, from_status, to_status, observed_at, release,
           lead(to_status) OVER w AS next_status,
           max(CASE WHEN from_status = 'resolved' AND to_status = 'unresolved' THEN observed_at END)
               OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS last_regression_at
    FROM issue_status_history
    WINDOW w AS (PARTITION BY source, issue_id ORDER BY observed_at, id)
)
SELECT h.source, h.issue_id, i.short_id, p.slug AS project, i.title,
       coalesce(h.last_regression_at, i.first_seen) AS open_since,
       h.observed_at AS resolved_seen_at,
       h.observed_at - coalesce(h.last_regression_at, i.first_seen) AS time_to_resolve,
       h.release AS resolved_in_release,
       coalesce(h.next_status = 'unresolved', false) AS regressed_later
FROM h
JOIN issues i ON i.source = h.source AND i.id = h.issue_id
LEFT JOIN projects p ON p.source = i.source AND p.id = i.project_id
WHERE h.to_status = 'resolved' AND h.from_status IS NOT NULL AND h.from_status <> 'resolved';
