-- name: held_events
-- For issues of projects read whole: how many of their events the store holds within the window
-- their count covers (from `horizon` to their lastSeen; lastSeen may come cut to the second, event
-- times with their milliseconds), and their newest event.
SELECT e.issue_id,
       count(*) FILTER (WHERE e.date_created >= w.horizon AND e.date_created < w.last_seen + INTERVAL 1 SECOND),
       max(e.date_created)
FROM events e
JOIN (SELECT unnest($ids::VARCHAR[]) AS issue_id, unnest($last_seen::TIMESTAMP[]) AS last_seen,
             unnest($horizons::TIMESTAMP[]) AS horizon) w ON w.issue_id = e.issue_id
WHERE e.source = $source
GROUP BY e.issue_id;
