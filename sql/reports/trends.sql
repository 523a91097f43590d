-- name: trends
-- The `report trends` query: events per bucket ($by: hour | day | week) and project, from the
-- error_trends view on one basis ($basis: 'stats' when no breakdown filter needs the events),
-- with the bucket a week earlier; the latest $limit rows. Every filter is a bound parameter; NULL means "any".
WITH base AS (
    SELECT project, bucket, events
    FROM error_trends
    WHERE period = CASE WHEN $by = 'hour' THEN 'hour' ELSE 'day' END
      AND basis = $basis
      AND ($source::VARCHAR IS NULL OR source = $source)
      AND ($project::VARCHAR IS NULL OR project = $project)
      AND ($environment::VARCHAR IS NULL OR environment = $environment)
      AND ($release::VARCHAR IS NULL OR release = $release)
),
series AS (
    SELECT project, date_trunc($by, bucket) AS bucket, sum(events)::BIGINT AS events
    FROM base GROUP BY ALL
)
SELECT * FROM (
    SELECT s.bucket, s.project, s.events, w.events AS week_before,
           s.events - coalesce(w.events, 0) AS change,
           CASE WHEN w.events > 0 THEN round(100.0 * (s.events - w.events) / w.events, 1) END AS change_pct,
           $basis AS basis
    FROM series s
    LEFT JOIN series w ON w.project = s.project AND w.bucket = s.bucket - INTERVAL 7 DAY
    WHERE ($since::TIMESTAMP IS NULL OR s.bucket >= date_trunc($by, $since::TIMESTAMP))
      AND ($until::TIMESTAMP IS NULL OR s.bucket < $until)
    ORDER BY s.bucket DESC, s.project
    LIMIT $limit  -- the latest buckets
)
ORDER BY bucket, project;
