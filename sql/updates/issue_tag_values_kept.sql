-- name: issue_tag_values_kept
-- After one tag key of an issue was read: values no longer among its top values are dropped.
DELETE FROM issue_tag_values
WHERE source = $source AND issue_id = $issue_id AND key = $key AND NOT list_contains($keep::VARCHAR[], value);
