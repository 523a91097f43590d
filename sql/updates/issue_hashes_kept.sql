-- name: issue_hashes_kept
-- After an issue's hashes were read whole: those it no longer lists are gone from it.
DELETE FROM issue_hashes
WHERE source = $source AND issue_id = $issue_id AND NOT list_contains($keep::VARCHAR[], hash);
