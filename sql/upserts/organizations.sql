-- name: organizations
-- Upsert organizations from a list of raw JSON objects ($rows). A row whose JSON did not change
-- is left as it is, so a sync with nothing new leaves the table identical.
INSERT INTO organizations
SELECT $source, j->>'id', j->>'slug', j->>'name', iso_ts(j->>'dateCreated'),
       j->'links'->>'regionUrl', j, $synced_at, NULL
FROM _page
ON CONFLICT (source, id) DO UPDATE SET
    slug = excluded.slug, name = excluded.name, date_created = excluded.date_created,
    region_url = excluded.region_url, raw = excluded.raw, synced_at = excluded.synced_at
WHERE organizations.raw IS DISTINCT FROM excluded.raw;
