-- name: issues_in_projects
-- How many of these issue ids belong to one of these projects.
SELECT count(*) FROM issues
WHERE source = $source AND id IN (SELECT unnest($ids::VARCHAR[])) AND list_contains($projects::VARCHAR[], project_id);
