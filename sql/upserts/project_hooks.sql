-- name: project_hooks
-- Upsert a project's service hooks (`ctx.project_id`); their `secret` was dropped before this.
INSERT INTO project_hooks
SELECT $source, ctx->>'project_id', j->>'id', j->>'url', CAST(j->'events' AS VARCHAR[]), j->>'status',
       iso_ts(j->>'dateCreated'), j, $synced_at
FROM _page
WHERE j->>'id' IS NOT NULL
ON CONFLICT (source, project_id, hook_id) DO UPDATE SET
    url = excluded.url, events = excluded.events, status = excluded.status, date_created = excluded.date_created,
    raw = excluded.raw, synced_at = excluded.synced_at
WHERE project_hooks.raw IS DISTINCT FROM excluded.raw;
