-- name: issues
-- Upsert issues. `count` is a string in Sentry's JSON (a number on some servers): cast either way.
INSERT INTO issues
SELECT $source, j->>'id', coalesce(j->>'shortId', j->>'short_id'),
       coalesce(j->'project'->>'id', j->>'projectId', j->>'project_id'),
       j->>'title', j->>'culprit', j->>'level', j->>'status', j->>'substatus', j->>'type', j->>'platform',
       iso_ts(coalesce(j->>'firstSeen', j->>'first_seen')),
       iso_ts(coalesce(j->>'lastSeen', j->>'last_seen')),
       TRY_CAST(j->>'count' AS BIGINT),
       TRY_CAST(coalesce(j->>'userCount', j->>'user_count') AS BIGINT),
       TRY_CAST(j->>'isUnhandled' AS BOOLEAN),
       j->>'priority',
       CASE WHEN coalesce(json_type(j->'assignedTo'), 'NULL') = 'NULL' THEN NULL
            ELSE concat(j->'assignedTo'->>'type', ':', coalesce(j->'assignedTo'->>'email', j->'assignedTo'->>'name', j->'assignedTo'->>'id')) END,
       j->>'permalink', j, $synced_at, NULL
FROM _page
ON CONFLICT (source, id) DO UPDATE SET
    short_id = excluded.short_id, project_id = excluded.project_id, title = excluded.title,
    culprit = excluded.culprit, level = excluded.level, status = excluded.status,
    substatus = excluded.substatus, type = excluded.type, platform = excluded.platform,
    first_seen = excluded.first_seen, last_seen = excluded.last_seen,
    times_seen = excluded.times_seen, user_count = excluded.user_count,
    is_unhandled = excluded.is_unhandled, priority = excluded.priority,
    assigned_to = excluded.assigned_to, permalink = excluded.permalink,
    raw = excluded.raw, synced_at = excluded.synced_at, deleted_at = NULL
WHERE issues.raw IS DISTINCT FROM excluded.raw OR issues.deleted_at IS NOT NULL;

-- Events stored before their issue (a project's events list can show an issue not yet listed) and
-- without a level of their own (GlitchTip sends none) take the issue's level (see events.sql).
UPDATE events SET level = p.level
FROM (SELECT j->>'id' AS id, j->>'level' AS level FROM _page) p
WHERE events.source = $source AND events.level IS NULL AND events.issue_id = p.id AND p.level IS NOT NULL;
