-- name: error_trends
-- requires: live_events, projects, project_stats
-- Answers: how are errors trending? Events per hour and per day, by project, environment, level
-- and release, beside the same bucket a week earlier.
-- Reads: project_stats (Sentry's `generated` counters, the events it accepted and stored: complete
-- and never sampled, but per project only; `received` also counts events its filters and rate
-- limits dropped) and events (the stored events: every breakdown, as complete as the events policy allows).
-- Grain: one row per source, project, period (hour | day), bucket, environment, level, release and
-- basis. basis = 'stats': a project's whole count from project_stats (environment, level and
-- release are NULL); basis = 'events': counted from the stored events.
CREATE OR REPLACE VIEW error_trends AS
WITH buckets AS (
    SELECT source, project_id, CASE resolution WHEN '1h' THEN 'hour' ELSE 'day' END AS period, ts AS bucket,
           NULL::VARCHAR AS environment, NULL::VARCHAR AS level, NULL::VARCHAR AS release,
           'stats' AS basis, count AS events
    FROM project_stats
    WHERE stat = 'generated' AND resolution IN ('1h', '1d')
    UNION ALL
    SELECT e.source, e.project_id, g.period, date_trunc(g.period, e.date_created), e.environment, e.level,
           e.release, 'events', count(*)
    FROM live_events e CROSS JOIN (VALUES ('hour'), ('day')) AS g(period)
    GROUP BY ALL
)
SELECT b.source, p.slug AS project, b.project_id, b.period, b.bucket, b.environment, b.level, b.release,
       b.basis, b.events,
       w.events AS events_week_before,
       b.events - coalesce(w.events, 0) AS change_week_over_week,
       CASE WHEN w.events > 0 THEN round(100.0 * (b.events - w.events) / w.events, 1) END AS change_pct
FROM buckets b
LEFT JOIN buckets w
       ON w.source = b.source AND w.project_id = b.project_id AND w.period = b.period AND w.basis = b.basis
      AND w.bucket = b.bucket - INTERVAL 7 DAY
      AND w.environment IS NOT DISTINCT FROM b.environment AND w.level IS NOT DISTINCT FROM b.level
      AND w.release IS NOT DISTINCT FROM b.release
LEFT JOIN projects p ON p.source = b.source AND p.id = b.project_id;
