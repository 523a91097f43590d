-- name: issue_details_to_read
-- Live issues seen within retention whose hashes or tag breakdown to read: those whose count or
-- lastSeen moved since each was last read (or never read; with $full, all); with that mark, to
-- keep when the read settles, and the project's slug (the source's event policy is per project).
WITH i AS (
    SELECT i.id, p.slug, coalesce(CAST(i.times_seen AS VARCHAR), '') || '|' ||
           coalesce(strftime(i.last_seen, '%Y-%m-%dT%H:%M:%S'), '') AS mark
    FROM issues i
    LEFT JOIN projects p ON p.source = i.source AND p.id = i.project_id
    WHERE i.source = $source AND i.deleted_at IS NULL AND (i.last_seen IS NULL OR i.last_seen >= $since)
)
SELECT i.id, i.slug, i.mark,
       $full OR h.scope IS NULL OR coalesce(h.extra->>'mark', '') <> i.mark AS hashes_due,
       $full OR t.scope IS NULL OR coalesce(t.extra->>'mark', '') <> i.mark AS tags_due
FROM i
LEFT JOIN _sync_state h ON h.source = $source AND h.stream = 'issue_hashes' AND h.scope = i.id
LEFT JOIN _sync_state t ON t.source = $source AND t.stream = 'issue_tags' AND t.scope = i.id
WHERE $full OR h.scope IS NULL OR coalesce(h.extra->>'mark', '') <> i.mark
   OR t.scope IS NULL OR coalesce(t.extra->>'mark', '') <> i.mark
ORDER BY i.id;
