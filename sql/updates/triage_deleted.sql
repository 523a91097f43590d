-- name: triage_deleted
-- Issues `triage` deleted, or merged into another, in Sentry: marked deleted as a sync marks the
-- issues Sentry no longer knows (sql/updates/issues_deleted.sql), the change recorded as via 'triage'.
-- The next sync finds them gone and, as they are marked already, records nothing more.
INSERT INTO issue_status_history (source, issue_id, from_status, to_status, from_substatus, to_substatus,
                                  observed_at, release, via)
SELECT source, id, status, 'deleted', substatus, NULL, $observed_at, NULL, 'triage'
FROM issues
WHERE source = $source AND id IN (SELECT unnest($ids::VARCHAR[])) AND deleted_at IS NULL;
UPDATE issues SET deleted_at = $observed_at
WHERE source = $source AND id IN (SELECT unnest($ids::VARCHAR[])) AND deleted_at IS NULL;
