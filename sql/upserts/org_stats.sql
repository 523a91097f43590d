-- name: org_stats
-- Upsert stats_v2 points, one JSON object per (interval start, category, outcome): the fetcher
-- unfolds Sentry's `groups[].series` into them, `ctx.interval` says the resolution.
INSERT INTO org_stats
SELECT $source, ctx->>'interval', iso_ts(j->>'ts'), coalesce(j->>'category', 'all'), coalesce(j->>'outcome', 'all'),
       TRY_CAST(j->>'quantity' AS BIGINT), $synced_at
FROM _page
ON CONFLICT (source, interval, ts, category, outcome) DO UPDATE SET
    quantity = excluded.quantity, synced_at = excluded.synced_at
WHERE org_stats.quantity IS DISTINCT FROM excluded.quantity;
