-- name: webhook_digest
-- An integration `issue` webhook body applied: its digest remembered (see migration 011); the old
-- ones are forgotten once per batch (webhook_digests_forget).
INSERT INTO _hook_digests (digest, seen_at) VALUES ($digest, $observed_at) ON CONFLICT DO NOTHING;
