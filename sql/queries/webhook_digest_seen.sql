-- name: webhook_digest_seen
-- Whether an integration `issue` webhook body was applied before (a replay): 1 or 0.
SELECT count(*) FROM _hook_digests WHERE digest = $digest
