-- name: issue_hashes_deleted
-- Issues marked deleted (deleted in Sentry, or merged into another) hold no hash: a merged issue's
-- moved to the survivor, whose own read stores them there.
DELETE FROM issue_hashes
WHERE source = $source
  AND issue_id IN (SELECT id FROM issues WHERE source = $source AND deleted_at IS NOT NULL);
