-- name: 011_hook_digests
-- `_hook_digests`: the SHA-256 of each integration `issue` webhook body the hook writer applied, and
-- when. Sentry signs the body but not its timestamp, so a captured delivery replayed later with a
-- fresh timestamp passes the receiver's checks; the writer applies a body it has applied before
-- only once. Kept 7 days (sql/updates/webhook_digest.sql), far longer than the replay window.
CREATE TABLE _hook_digests (
    digest   VARCHAR PRIMARY KEY,
    seen_at  TIMESTAMP NOT NULL
);
