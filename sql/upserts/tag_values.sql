-- name: tag_values
-- Upsert a project's values of one tag key (`ctx.project_id`, `ctx.key`).
INSERT INTO tag_values
SELECT $source, ctx->>'project_id', coalesce(j->>'key', ctx->>'key'), coalesce(j->>'value', j->>'name'),
       TRY_CAST(j->>'count' AS BIGINT), iso_ts(j->>'firstSeen'), iso_ts(j->>'lastSeen'), j, $synced_at
FROM _page
WHERE coalesce(j->>'value', j->>'name') IS NOT NULL
ON CONFLICT (source, project_id, key, value) DO UPDATE SET
    count = excluded.count, first_seen = excluded.first_seen, last_seen = excluded.last_seen,
    raw = excluded.raw, synced_at = excluded.synced_at
WHERE tag_values.raw IS DISTINCT FROM excluded.raw;
