-- name: trends
-- The `report trends` query: events per bucket ($by: hour | day | week) and project, from the
-- error_trends view, with the bucket a week earlier; the latest $limit buckets. Every filter is a
-- bound parameter; NULL means "any".
-- $basis 'auto' reads each project's own counters from Sentry where the mirror has them (never
-- sampled), and its stored events where it has none (a GlitchTip source, a project whose stats
-- failed or are not synced yet); 'events' (a breakdown by environment or release) reads the events.
-- A bucket with no events is a 0, from the project's first bucket to the latest of any project:
-- a missing row would draw a line straight over a quiet day.
WITH counted AS (
    SELECT DISTINCT source, project_id FROM error_trends WHERE basis = 'stats'
),
base AS (
    SELECT t.project, t.basis, t.bucket, t.events
    FROM error_trends t LEFT JOIN counted c ON c.source = t.source AND c.project_id = t.project_id
    WHERE t.period = CASE WHEN $by = 'hour' THEN 'hour' ELSE 'day' END
      AND t.basis = CASE WHEN $basis = 'auto' AND c.project_id IS NOT NULL THEN 'stats' ELSE 'events' END
      AND ($source::VARCHAR IS NULL OR t.source = $source)
      AND ($project::VARCHAR IS NULL OR t.project = $project)
      AND ($environment::VARCHAR IS NULL OR t.environment = $environment)
      AND ($release::VARCHAR IS NULL OR t.release = $release)
),
counts AS (
    SELECT project, basis, date_trunc($by, bucket) AS bucket, sum(events)::BIGINT AS events
    FROM base GROUP BY ALL
),
step AS (
    SELECT CASE $by WHEN 'hour' THEN INTERVAL 1 HOUR WHEN 'day' THEN INTERVAL 1 DAY ELSE INTERVAL 7 DAY END AS step
),
calendar AS (
    SELECT c.project, c.basis, unnest(generate_series(c.first_bucket, l.last_bucket, step.step)) AS bucket
    FROM (SELECT project, basis, min(bucket) AS first_bucket FROM counts GROUP BY ALL) c,
         (SELECT max(bucket) AS last_bucket FROM counts) l, step
),
series AS (
    SELECT k.project, k.basis, k.bucket, coalesce(n.events, 0) AS events
    FROM calendar k LEFT JOIN counts n ON n.project = k.project AND n.basis = k.basis AND n.bucket = k.bucket
),
shown AS (
    SELECT s.bucket, s.project, s.events, w.events AS week_before,
           s.events - coalesce(w.events, 0) AS change,
           CASE WHEN w.events > 0 THEN round(100.0 * (s.events - w.events) / w.events, 1) END AS change_pct,
           s.basis,
           dense_rank() OVER (ORDER BY s.bucket DESC) AS age
    FROM series s
    LEFT JOIN series w ON w.project = s.project AND w.bucket = s.bucket - INTERVAL 7 DAY
    WHERE ($since::TIMESTAMP IS NULL OR s.bucket >= date_trunc($by, $since::TIMESTAMP))
      AND ($until::TIMESTAMP IS NULL OR s.bucket < $until)
)
SELECT bucket, project, events, week_before, change, change_pct, basis
FROM shown
WHERE age <= $limit  -- the latest buckets, each with every project
ORDER BY bucket, project;
