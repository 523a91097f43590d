-- name: webhook_digest
-- An integration `issue` webhook body applied: its digest remembered (see migration 011), and
-- digests older than 7 days forgotten.
DELETE FROM _hook_digests WHERE seen_at < $observed_at - INTERVAL 7 DAY;
INSERT INTO _hook_digests (digest, seen_at) VALUES ($digest, $observed_at) ON CONFLICT DO NOTHING;
