-- name: live_issue_count
-- How many of a source's stored issues are not marked deleted.
SELECT count(*) FROM issues WHERE source = $source AND deleted_at IS NULL;
