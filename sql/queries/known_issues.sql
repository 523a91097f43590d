-- name: known_issues
-- Stored issues not marked deleted, seen within retention (or never): those to re-read for status
-- changes that move no watermark.
SELECT id FROM issues
WHERE source = $source AND deleted_at IS NULL AND (last_seen IS NULL OR last_seen >= $since)
ORDER BY id;
