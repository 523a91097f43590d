-- name: projects
-- Upsert projects from the organization's project list.
INSERT INTO projects
SELECT $source, j->>'id', j->>'slug', j->>'name', NULLIF(j->>'platform', ''),
       iso_ts(coalesce(j->>'dateCreated', j->>'date_created')),
       iso_ts(coalesce(j->>'firstEvent', j->>'first_event')), j, $synced_at
FROM _page
ON CONFLICT (source, id) DO UPDATE SET
    slug = excluded.slug, name = excluded.name, platform = excluded.platform,
    date_created = excluded.date_created, first_event = excluded.first_event,
    raw = excluded.raw, synced_at = excluded.synced_at
WHERE projects.raw IS DISTINCT FROM excluded.raw;
