-- name: 007_triage_log
-- Every write `sentry-mirror triage` sent to Sentry, one row a request, whatever Sentry answered:
-- what was asked (action, issue ids, method, path with its query, JSON body), Sentry's status code
-- and answer (or the error), and the config source it ran as. Never the token: it is in a header,
-- and neither headers nor the client's settings are kept.
CREATE SEQUENCE triage_log_id START 1;
CREATE TABLE triage_log (
    id           BIGINT PRIMARY KEY DEFAULT nextval('triage_log_id'),
    sent_at      TIMESTAMP NOT NULL,   -- UTC, when the answer came
    source       VARCHAR NOT NULL,
    action       VARCHAR NOT NULL,     -- resolve, ignore, assign, delete, merge, ...
    issue_ids    VARCHAR[] NOT NULL,
    method       VARCHAR NOT NULL,
    path         VARCHAR NOT NULL,     -- relative to /api/0/, with its query
    body         JSON,
    status_code  INTEGER,              -- 0: no answer came (network)
    answer       JSON,                 -- Sentry's JSON answer, or {"error": "..."}
    applied      BOOLEAN NOT NULL      -- whether the store took the change from this answer
);

-- Who made a status change: NULL for one a sync observed, 'triage' for one this mirror made and
-- stored from Sentry's answer (the next sync then sees no change, and adds no row).
ALTER TABLE issue_status_history ADD COLUMN via VARCHAR;
