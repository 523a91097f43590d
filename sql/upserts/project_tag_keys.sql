-- name: project_tag_keys
-- Upsert a project's tag keys (`ctx.project_id`), as /projects/{org}/{p}/tags/ lists them.
INSERT INTO project_tag_keys
SELECT $source, ctx->>'project_id', j->>'key', j->>'name', TRY_CAST(j->>'uniqueValues' AS BIGINT),
       TRY_CAST(j->>'canDelete' AS BOOLEAN), j, $synced_at
FROM _page
WHERE j->>'key' IS NOT NULL
ON CONFLICT (source, project_id, key) DO UPDATE SET
    name = excluded.name, values_seen = excluded.values_seen, can_delete = excluded.can_delete,
    raw = excluded.raw, synced_at = excluded.synced_at
WHERE project_tag_keys.raw IS DISTINCT FROM excluded.raw;
