-- name: org_stats_future
-- Drop the organization's stat intervals that begin after Sentry's now (see project_stats_future).
DELETE FROM org_stats WHERE source = $source AND interval = $interval AND ts > $until;
