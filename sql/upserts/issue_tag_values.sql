-- name: issue_tag_values
-- Upsert an issue's top values of one tag key (`ctx.issue_id`, `ctx.key`, the key's totals in
-- `ctx.key_events` and `ctx.key_values`), from `/issues/{id}/tags/{key}/`'s topValues.
INSERT INTO issue_tag_values
SELECT $source, ctx->>'issue_id', ctx->>'key', j->>'value', TRY_CAST(j->>'count' AS BIGINT),
       iso_ts(j->>'firstSeen'), iso_ts(j->>'lastSeen'), TRY_CAST(ctx->>'key_events' AS BIGINT),
       TRY_CAST(ctx->>'key_values' AS BIGINT), $synced_at
FROM _page
WHERE j->>'value' IS NOT NULL
ON CONFLICT (source, issue_id, key, value) DO UPDATE SET
    count = excluded.count, first_seen = excluded.first_seen, last_seen = excluded.last_seen,
    key_events = excluded.key_events, key_values = excluded.key_values, synced_at = excluded.synced_at;
