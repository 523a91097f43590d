-- name: event_walks_to_plan
-- Issues within retention whose events to read: never read, cut short, or whose count or lastSeen
-- moved since their events were last read (all of them with $full); newest lastSeen first. With
-- each: its project, the last walk's watermark, cursor and query, whether it was first seen within
-- retention, and when it was stored.
WITH i AS (
    SELECT i.id, p.id AS project_id, p.slug, coalesce(CAST(i.times_seen AS VARCHAR), '') AS times_seen,
           coalesce(strftime(i.last_seen, '%Y-%m-%dT%H:%M:%S.%fZ'), '') AS last_seen, i.last_seen AS ts,
           i.first_seen, i.synced_at
    FROM issues i LEFT JOIN projects p ON p.source = i.source AND p.id = i.project_id
    WHERE i.source = $source AND i.deleted_at IS NULL AND (i.last_seen IS NULL OR i.last_seen >= $horizon))
SELECT i.id, i.slug, i.times_seen, i.last_seen, s.watermark, s.cursor, s.params, i.project_id,
       coalesce(i.first_seen >= $horizon, false), i.synced_at
FROM i LEFT JOIN _sync_state s ON s.source = $source AND s.stream = 'events' AND s.scope = i.id
WHERE $full OR s.scope IS NULL OR s.cursor IS NOT NULL
   OR coalesce(s.extra->>'times_seen', '') <> i.times_seen
   OR coalesce(s.extra->>'last_seen', '') <> i.last_seen
ORDER BY i.ts DESC NULLS LAST, i.id;
