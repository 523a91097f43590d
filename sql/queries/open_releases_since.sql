-- name: open_releases_since
-- Stored open releases created at or after a time: those a walk of the open list down to that time
-- must have listed (one it did not was archived or deleted since).
SELECT version FROM releases
WHERE source = $source AND coalesce(status, 'open') = 'open' AND date_created >= $since;
