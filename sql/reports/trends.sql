-- name: trends
-- The `report trends` query: events per bucket ($by: hour | day | week) and project, with the bucket
-- a week earlier; the latest $limit buckets, each with every project. Every filter is a bound
-- parameter; NULL means "any". The figures are error_trends' (Sentry's `generated` counters, or
-- the stored events of live_events), computed here from the same tables with the filters applied
-- before counting: through the view, ten million events were counted for every report.
-- $basis 'auto' reads each project's own counters from Sentry where the mirror has them at the
-- resolution shown (never sampled), from the first such bucket on, and its stored events elsewhere
-- (a GlitchTip source, a project whose stats failed or are not synced yet, the time before the
-- first counter); 'events' (a breakdown by environment or release) reads the events.
-- Projects of one slug in several sources add up (pick one with --source); `basis` lists what the
-- figures of a project came from. A bucket with no events is a 0, from the project's first bucket
-- (or --since) to the latest of any project: a missing row would draw a line straight over a
-- quiet day.
-- `partial`: the bucket ends after the start of the latest finished sync of the project's source
-- (or one of its sources), so it was read while still filling (or never read whole): it is
-- drawn dashed. Times in `_sync_runs` are on this machine's clock.
WITH params AS (
    SELECT CASE WHEN $by = 'hour' THEN 'hour' ELSE 'day' END AS period,
           CASE $by WHEN 'hour' THEN INTERVAL 1 HOUR WHEN 'day' THEN INTERVAL 1 DAY ELSE INTERVAL 7 DAY END AS step,
           date_trunc($by, $since::TIMESTAMP) AS first_shown,
           date_trunc($by, $since::TIMESTAMP) - INTERVAL 7 DAY AS first_read  -- the week before counts too
),
scoped AS (  -- the projects the filters keep
    SELECT source, id AS project_id, slug AS project FROM projects
    WHERE ($source::VARCHAR IS NULL OR source = $source) AND ($project::VARCHAR IS NULL OR slug = $project)
),
synced AS (  -- when each project was last read whole: its source's latest finished sync began
    SELECT s.project, CASE WHEN bool_and(r.synced_at IS NOT NULL) THEN min(r.synced_at) END AS synced_at
    FROM scoped s LEFT JOIN (SELECT source, max(started_at) AS synced_at FROM _sync_runs
                             WHERE status IN ('ok', 'partial') GROUP BY source) r ON r.source = s.source
    GROUP BY s.project
),
counted AS (  -- those whose counters the mirror holds at this resolution, from their first bucket
    SELECT s.source, s.project_id, min(t.ts) AS first_counted
    FROM scoped s JOIN project_stats t ON t.source = s.source AND t.project_id = s.project_id, params
    WHERE $basis = 'auto' AND t.stat = 'generated'
      AND t.resolution = CASE params.period WHEN 'hour' THEN '1h' ELSE '1d' END
    GROUP BY ALL
),
-- A bucket is shown when it starts before --until, whole, on both bases (the $by bucket: a week
-- that starts before it is counted whole too).
stats AS (
    SELECT c.source, c.project_id, t.ts AS bucket, t.count AS events, 'stats' AS basis
    FROM project_stats t JOIN counted c ON c.source = t.source AND c.project_id = t.project_id, params
    WHERE t.stat = 'generated' AND t.resolution = CASE params.period WHEN 'hour' THEN '1h' ELSE '1d' END
      AND (params.first_read IS NULL OR t.ts >= params.first_read)
      AND ($until::TIMESTAMP IS NULL OR date_trunc($by, t.ts) < $until)
),
events AS (  -- projects without counters, and those with them before their first counted bucket
    SELECT e.source, e.project_id, date_trunc(params.period, e.date_created) AS bucket, count(*) AS events,
           'events' AS basis
    FROM live_events e SEMI JOIN scoped s ON s.source = e.source AND s.project_id = e.project_id
    LEFT JOIN counted c ON c.source = e.source AND c.project_id = e.project_id, params
    WHERE (c.first_counted IS NULL OR e.date_created < c.first_counted)
      AND ($environment::VARCHAR IS NULL OR e.environment = $environment)
      AND ($release::VARCHAR IS NULL OR e.release = $release)
      AND (params.first_read IS NULL OR e.date_created >= params.first_read)
      AND ($until::TIMESTAMP IS NULL OR date_trunc($by, e.date_created) < $until)
    GROUP BY ALL
),
counts AS (
    SELECT s.project, date_trunc($by, b.bucket) AS bucket, sum(b.events)::BIGINT AS events,
           string_agg(DISTINCT b.basis, '+' ORDER BY b.basis) AS basis
    FROM (SELECT * FROM stats UNION ALL SELECT * FROM events) b
    JOIN scoped s ON s.source = b.source AND s.project_id = b.project_id
    GROUP BY ALL
),
bases AS (
    SELECT project, string_agg(DISTINCT basis, '+' ORDER BY basis) AS basis
    FROM (SELECT project, unnest(string_split(basis, '+')) AS basis FROM counts) GROUP BY project
),
calendar AS (
    SELECT c.project, unnest(generate_series(greatest(c.first_bucket, coalesce(params.first_read, c.first_bucket)),
                                             l.last_bucket, params.step)) AS bucket
    FROM (SELECT project, min(bucket) AS first_bucket FROM counts GROUP BY project) c,
         (SELECT max(bucket) AS last_bucket FROM counts) l, params
),
series AS (
    SELECT k.project, k.bucket, coalesce(n.events, 0) AS events
    FROM calendar k LEFT JOIN counts n ON n.project = k.project AND n.bucket = k.bucket
),
shown AS (
    SELECT s.bucket, s.project, s.events, w.events AS week_before,
           s.events - coalesce(w.events, 0) AS change,
           CASE WHEN w.events > 0 THEN round(100.0 * (s.events - w.events) / w.events, 1) END AS change_pct,
           b.basis,
           coalesce(s.bucket + params.step > y.synced_at, true) AS partial,
           dense_rank() OVER (ORDER BY s.bucket DESC) AS age
    FROM series s
    JOIN bases b ON b.project = s.project
    LEFT JOIN synced y ON y.project = s.project
    LEFT JOIN series w ON w.project = s.project AND w.bucket = s.bucket - INTERVAL 7 DAY, params
    WHERE (params.first_shown IS NULL OR s.bucket >= params.first_shown)
)
SELECT bucket, project, events, week_before, change, change_pct, basis, partial
FROM shown
WHERE age <= $limit  -- the latest buckets, each with every project
ORDER BY bucket, project;
