-- name: last_org_stat
-- The last stored interval of the organization's stats at one interval size.
SELECT max(ts) FROM org_stats WHERE source = $source AND interval = $interval;
