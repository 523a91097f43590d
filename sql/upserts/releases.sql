-- name: releases
-- Upsert releases (open and archived). Release ids are integers on Sentry and absent on GlitchTip.
-- project_ids: each listed project's id; GlitchTip lists projects as {name, slug} only, so a project
-- without an id is found by its slug among the source's projects (synced before releases). Stored
-- projects are never dropped, so a slug may stand twice (a deleted project's, then a new one's): the
-- one synced last is the one the server lists now.
WITH slugs AS (SELECT map(list(slug), list(id)) AS by_slug
               FROM (SELECT slug, arg_max(id, synced_at) AS id FROM projects WHERE source = $source GROUP BY slug))
INSERT INTO releases
SELECT $source, j->>'version', TRY_CAST(j->>'id' AS BIGINT), j->>'shortVersion', j->>'status',
       iso_ts(coalesce(j->>'dateCreated', j->>'date_created')),
       iso_ts(coalesce(j->>'dateReleased', j->>'date_released')),
       TRY_CAST(j->>'newGroups' AS BIGINT), TRY_CAST(j->>'commitCount' AS BIGINT),
       TRY_CAST(j->>'deployCount' AS BIGINT),
       CASE WHEN json_type(j->'projects') = 'ARRAY'
            THEN list_transform(CAST(j->'projects' AS JSON[]),
                                lambda p: coalesce(p->>'id', element_at(slugs.by_slug, p->>'slug')[1])) END,
       j, $synced_at
FROM _page, slugs
ON CONFLICT (source, version) DO UPDATE SET
    id = excluded.id, short_version = excluded.short_version, status = excluded.status,
    date_created = excluded.date_created, date_released = excluded.date_released,
    new_groups = excluded.new_groups, commit_count = excluded.commit_count,
    deploy_count = excluded.deploy_count, project_ids = excluded.project_ids,
    raw = excluded.raw, synced_at = excluded.synced_at
WHERE releases.raw IS DISTINCT FROM excluded.raw
   -- a release stored before its projects were known (or by an older mirror) gets their ids now
   OR releases.project_ids IS DISTINCT FROM excluded.project_ids;
