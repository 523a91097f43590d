-- name: projects
-- A source's projects, by id.
SELECT id, slug FROM projects WHERE source = $source ORDER BY id;
