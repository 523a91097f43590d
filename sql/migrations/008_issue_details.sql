-- name: 008_issue_details
-- Per-issue details read for the issues that changed (syncing/issue_details.py).
--
-- issue_hashes: the grouping hashes (fingerprints) each issue holds, with the latest event of each.
-- A hash belongs to one issue at a time: a merge in Sentry moves it to the surviving issue, and the
-- row moves with it (`previous_issue_id` keeps where it was, `first_seen_at` restarts).
CREATE TABLE issue_hashes (
    source             VARCHAR NOT NULL,
    hash               VARCHAR NOT NULL,
    issue_id           VARCHAR NOT NULL,
    latest_event_id    VARCHAR,            -- NULL when Sentry no longer keeps an event of it
    latest_event_at    TIMESTAMP,
    merged_by_seer     BOOLEAN,            -- Sentry's `mergedBySeer`
    seer_match_distance DOUBLE,
    previous_issue_id  VARCHAR,            -- the issue it was under before it moved (a merge)
    first_seen_at      TIMESTAMP NOT NULL, -- UTC, when the mirror first saw it under this issue
    synced_at          TIMESTAMP NOT NULL,
    PRIMARY KEY (source, hash)
);

-- issue_tag_values: an issue's top values of a tag key as Sentry counts them over all its events
-- (`/issues/{id}/tags/{key}/`), for issues whose events the store does not hold whole (projects
-- synced with events = "sample" or "none"). `key_events` and `key_values` are the key's totals:
-- how many events carry it, how many distinct values it has.
CREATE TABLE issue_tag_values (
    source      VARCHAR NOT NULL,
    issue_id    VARCHAR NOT NULL,
    key         VARCHAR NOT NULL,
    value       VARCHAR NOT NULL,
    count       BIGINT,
    first_seen  TIMESTAMP,
    last_seen   TIMESTAMP,
    key_events  BIGINT,
    key_values  BIGINT,
    synced_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (source, issue_id, key, value)
);
