-- name: project_stats_future
-- Drop a project's stat buckets that begin after Sentry's now: a Date header from a clock ahead of
-- Sentry's (a proxy's) once stored zeros for hours still to come. Run with each fresh read.
DELETE FROM project_stats
WHERE source = $source AND project_id = $project_id AND stat = $stat AND resolution = $resolution AND ts > $until;
