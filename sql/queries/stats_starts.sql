-- name: stats_starts
-- Per project, stat and resolution: where the next read of project stats may start (the last stored
-- bucket, or the first one stored before it began on our clock: a skewed Date header once stored
-- zeros for hours still to come), and where the stored buckets begin.
SELECT project_id, stat, resolution,
       least(max(ts), min(ts) FILTER (WHERE ts > synced_at +
             CASE resolution WHEN '1d' THEN INTERVAL 1 DAY ELSE INTERVAL 1 HOUR END)),
       min(ts)
FROM project_stats WHERE source = $source GROUP BY ALL;
