-- name: deploys_to_read
-- Releases whose deploys to read: those with deploys whose deployCount moved since they were last
-- read (or whose read was cut short), newest first.
SELECT r.version, CAST(r.deploy_count AS VARCHAR)
FROM releases r
LEFT JOIN _sync_state s ON s.source = r.source AND s.stream = 'deploys' AND s.scope = r.version
WHERE r.source = $source AND coalesce(r.deploy_count, 0) > 0
  AND (s.scope IS NULL OR s.cursor IS NOT NULL
       OR coalesce(s.extra->>'deploy_count', '') <> CAST(r.deploy_count AS VARCHAR))
ORDER BY r.date_created DESC NULLS LAST, r.version;
