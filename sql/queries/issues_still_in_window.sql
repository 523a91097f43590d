-- name: issues_still_in_window
-- Of these issue ids, the stored ones last seen after `since`: an issue older than that may have
-- left the server's window rather than been deleted.
SELECT id FROM issues WHERE source = $source AND id IN (SELECT unnest($ids::VARCHAR[])) AND last_seen >= $since;
