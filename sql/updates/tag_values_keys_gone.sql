-- name: tag_values_keys_gone
-- Drop a project's values of tag keys it no longer lists (or that the `tag_keys` setting no
-- longer reads), with the read that listed the others.
DELETE FROM tag_values
WHERE source = $source AND project_id = $project_id AND NOT list_contains($keys::VARCHAR[], key);
