-- name: project_stats
-- Upsert stat buckets. Sentry answers `[[unix_seconds, count], …]`; each pair arrives as a JSON
-- array with the project, stat and resolution in `ctx`.
INSERT INTO project_stats
SELECT $source, ctx->>'project_id', ctx->>'stat', ctx->>'resolution',
       to_timestamp(CAST(j->>0 AS DOUBLE)) AT TIME ZONE 'UTC', TRY_CAST(j->>1 AS BIGINT), $synced_at
FROM _page
ON CONFLICT (source, project_id, stat, resolution, ts) DO UPDATE SET
    count = excluded.count, synced_at = excluded.synced_at
WHERE project_stats.count IS DISTINCT FROM excluded.count;
