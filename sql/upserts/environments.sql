-- name: environments
-- Upsert environments (organization-wide list; project lists name the same environments).
INSERT INTO environments
SELECT $source, j->>'name', j->>'id', j, $synced_at
FROM _page
ON CONFLICT (source, name) DO UPDATE SET id = excluded.id, raw = excluded.raw, synced_at = excluded.synced_at
WHERE environments.raw IS DISTINCT FROM excluded.raw;
