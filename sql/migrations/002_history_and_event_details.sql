-- name: 002_history_and_event_details
-- History the API forgets, and event payloads normalized into queryable tables.

-- Issues deleted in Sentry stay in the mirror, marked with when the mirror noticed.
ALTER TABLE issues ADD COLUMN deleted_at TIMESTAMP;

-- Every status change the mirror observed across syncs (and each issue's first observation, with
-- from_status NULL), so regressions and time-to-resolve can be computed after Sentry forgets.
CREATE SEQUENCE issue_status_history_id START 1;
CREATE TABLE issue_status_history (
    id              BIGINT PRIMARY KEY DEFAULT nextval('issue_status_history_id'),
    source          VARCHAR NOT NULL,
    issue_id        VARCHAR NOT NULL,
    from_status     VARCHAR,
    to_status       VARCHAR,
    from_substatus  VARCHAR,
    to_substatus    VARCHAR,
    observed_at     TIMESTAMP NOT NULL,  -- server time of the sync that saw the change
    release         VARCHAR              -- statusDetails.inRelease when Sentry says it
);
CREATE INDEX issue_status_history_issue ON issue_status_history (source, issue_id);

-- One row per tag of an event.
CREATE TABLE event_tags (
    source    VARCHAR NOT NULL,
    event_id  VARCHAR NOT NULL,
    key       VARCHAR NOT NULL,
    value     VARCHAR,
    PRIMARY KEY (source, event_id, key)
);

-- One row per exception in an event's exception entry (chained exceptions give several).
CREATE TABLE event_exceptions (
    source          VARCHAR NOT NULL,
    event_id        VARCHAR NOT NULL,
    idx             INTEGER NOT NULL,
    type            VARCHAR,
    value           VARCHAR,
    module          VARCHAR,
    mechanism_type  VARCHAR,
    handled         BOOLEAN,
    PRIMARY KEY (source, event_id, idx)
);

-- One row per stack frame of each exception, innermost last as Sentry orders them.
CREATE TABLE event_frames (
    source         VARCHAR NOT NULL,
    event_id       VARCHAR NOT NULL,
    exception_idx  INTEGER NOT NULL,
    idx            INTEGER NOT NULL,
    function       VARCHAR,
    module         VARCHAR,
    filename       VARCHAR,
    abs_path       VARCHAR,
    line_no        INTEGER,
    col_no         INTEGER,
    in_app         BOOLEAN,
    PRIMARY KEY (source, event_id, exception_idx, idx)
);

-- One row per context of an event (browser, os, runtime, device, …), its fields as JSON.
CREATE TABLE event_contexts (
    source    VARCHAR NOT NULL,
    event_id  VARCHAR NOT NULL,
    name      VARCHAR NOT NULL,
    type      VARCHAR,
    data      JSON,
    PRIMARY KEY (source, event_id, name)
);

ALTER TABLE events ADD COLUMN sdk_name VARCHAR;
ALTER TABLE events ADD COLUMN sdk_version VARCHAR;
