-- name: deploys
-- Upsert a release's deploys; the release version comes from the page context (`ctx.release`).
INSERT INTO deploys
SELECT $source, j->>'id', ctx->>'release', j->>'environment', j->>'name', j->>'url',
       iso_ts(j->>'dateStarted'), iso_ts(j->>'dateFinished'), j, $synced_at
FROM _page
ON CONFLICT (source, id) DO UPDATE SET
    release = excluded.release, environment = excluded.environment, name = excluded.name, url = excluded.url,
    date_started = excluded.date_started, date_finished = excluded.date_finished,
    raw = excluded.raw, synced_at = excluded.synced_at
WHERE deploys.raw IS DISTINCT FROM excluded.raw;
