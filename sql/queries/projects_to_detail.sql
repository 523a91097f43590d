-- name: projects_to_detail
-- Projects whose tag values and users to read: those whose issues moved (the sum of their counts or
-- their latest lastSeen) since they were last read; with that mark, to keep when the read settles.
WITH p AS (
    SELECT p.id, p.slug, coalesce(CAST(sum(i.times_seen) AS VARCHAR), '') || '|' ||
           coalesce(strftime(max(i.last_seen), '%Y-%m-%dT%H:%M:%S'), '') AS mark
    FROM projects p
    LEFT JOIN issues i ON i.source = p.source AND i.project_id = p.id AND i.deleted_at IS NULL
    WHERE p.source = $source GROUP BY p.id, p.slug)
SELECT p.id, p.slug, p.mark FROM p
LEFT JOIN _sync_state s ON s.source = $source AND s.stream = 'project_details' AND s.scope = p.id
WHERE s.scope IS NULL OR coalesce(s.extra->>'mark', '') <> p.mark
ORDER BY p.id;
