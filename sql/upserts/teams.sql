-- name: teams
-- Upsert the organization's teams.
INSERT INTO teams
SELECT $source, j->>'id', j->>'slug', j->>'name', TRY_CAST(j->>'memberCount' AS BIGINT),
       iso_ts(j->>'dateCreated'), j, $synced_at
FROM _page
ON CONFLICT (source, id) DO UPDATE SET
    slug = excluded.slug, name = excluded.name, member_count = excluded.member_count,
    date_created = excluded.date_created, raw = excluded.raw, synced_at = excluded.synced_at
WHERE teams.raw IS DISTINCT FROM excluded.raw;
