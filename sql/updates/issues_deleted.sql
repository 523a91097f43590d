-- name: issues_deleted
-- Mark issues Sentry no longer knows (deleted, or merged into another) without dropping them:
-- the mirror keeps their history. Records the change in issue_status_history.
INSERT INTO issue_status_history (source, issue_id, from_status, to_status, from_substatus, to_substatus, observed_at, release)
SELECT source, id, status, 'deleted', substatus, NULL, $observed_at, NULL
FROM issues
WHERE source = $source AND id IN (SELECT unnest($ids::VARCHAR[])) AND deleted_at IS NULL;
UPDATE issues SET deleted_at = $observed_at
WHERE source = $source AND id IN (SELECT unnest($ids::VARCHAR[])) AND deleted_at IS NULL;
