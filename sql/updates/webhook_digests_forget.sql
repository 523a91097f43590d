-- name: webhook_digests_forget
-- Digests of integration `issue` webhook bodies older than 7 days forgotten (once per batch of
-- deliveries; see webhook_digest).
DELETE FROM _hook_digests WHERE seen_at < $observed_at - INTERVAL 7 DAY;
