-- name: 001_initial
-- The first schema: bookkeeping tables, and the organization, projects, issues, events and
-- releases mirrored from Sentry. Every entity table keeps the raw JSON object as Sentry sent it
-- (`raw`) beside typed columns, and a `source` naming the Sentry server and organization it came
-- from, so several sources can share one store. Times are UTC (TIMESTAMP without time zone).

-- iso_ts: parse Sentry's ISO-8601 strings ('2024-05-01T12:34:56.123Z', offsets, no fraction) to UTC.
CREATE OR REPLACE MACRO iso_ts(s) AS (TRY_CAST(s AS TIMESTAMPTZ) AT TIME ZONE 'UTC');

CREATE TABLE _sync_state (
    source      VARCHAR NOT NULL,
    stream      VARCHAR NOT NULL,   -- e.g. 'issues', 'events', 'projects'
    scope       VARCHAR NOT NULL,   -- e.g. '' for org-wide streams, an issue id for its events
    watermark   VARCHAR,            -- high-water mark of completed walks (ISO time or count)
    cursor      VARCHAR,            -- opaque cursor of a walk in progress, NULL when none
    params      JSON,               -- the query of the walk in progress, so a resume asks the same
    extra       JSON,               -- stream-specific bookkeeping
    updated_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (source, stream, scope)
);

CREATE SEQUENCE _sync_runs_id START 1;
CREATE TABLE _sync_runs (
    run_id       BIGINT PRIMARY KEY DEFAULT nextval('_sync_runs_id'),
    source       VARCHAR NOT NULL,
    started_at   TIMESTAMP NOT NULL,
    finished_at  TIMESTAMP,
    status       VARCHAR NOT NULL,  -- running | ok | failed | interrupted
    full_sync    BOOLEAN NOT NULL DEFAULT FALSE,
    requests     INTEGER,
    retries      INTEGER,
    rows_written JSON,              -- {"issues": 12, "events": 340, ...}
    error        VARCHAR
);

CREATE TABLE organizations (
    source        VARCHAR NOT NULL,
    id            VARCHAR NOT NULL,
    slug          VARCHAR NOT NULL,
    name          VARCHAR,
    date_created  TIMESTAMP,
    region_url    VARCHAR,
    raw           JSON NOT NULL,
    synced_at     TIMESTAMP NOT NULL,  -- when this row's content last changed in the mirror
    PRIMARY KEY (source, id)
);

CREATE TABLE projects (
    source        VARCHAR NOT NULL,
    id            VARCHAR NOT NULL,
    slug          VARCHAR NOT NULL,
    name          VARCHAR,
    platform      VARCHAR,
    date_created  TIMESTAMP,
    first_event   TIMESTAMP,
    raw           JSON NOT NULL,
    synced_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (source, id)
);

CREATE TABLE issues (
    source        VARCHAR NOT NULL,
    id            VARCHAR NOT NULL,
    short_id      VARCHAR,
    project_id    VARCHAR,
    title         VARCHAR,
    culprit       VARCHAR,
    level         VARCHAR,
    status        VARCHAR,
    substatus     VARCHAR,
    type          VARCHAR,
    platform      VARCHAR,
    first_seen    TIMESTAMP,
    last_seen     TIMESTAMP,
    times_seen    BIGINT,     -- Sentry's `count` (a string in its JSON)
    user_count    BIGINT,
    is_unhandled  BOOLEAN,
    priority      VARCHAR,
    assigned_to   VARCHAR,
    permalink     VARCHAR,
    raw           JSON NOT NULL,
    synced_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (source, id)
);

CREATE TABLE events (
    source         VARCHAR NOT NULL,
    event_id       VARCHAR NOT NULL,
    issue_id       VARCHAR,
    project_id     VARCHAR,
    date_created   TIMESTAMP,
    date_received  TIMESTAMP,
    release        VARCHAR,
    environment    VARCHAR,
    level          VARCHAR,
    platform       VARCHAR,
    title          VARCHAR,
    message        VARCHAR,
    location       VARCHAR,
    user_id        VARCHAR,
    user_email     VARCHAR,
    user_username  VARCHAR,
    user_ip        VARCHAR,
    raw            JSON NOT NULL,
    synced_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (source, event_id)
);

CREATE TABLE releases (
    source         VARCHAR NOT NULL,
    version        VARCHAR NOT NULL,
    id             BIGINT,    -- Sentry's release id is an integer (absent on GlitchTip)
    short_version  VARCHAR,
    status         VARCHAR,
    date_created   TIMESTAMP,
    date_released  TIMESTAMP,
    new_groups     BIGINT,
    commit_count   BIGINT,
    deploy_count   BIGINT,
    project_ids    VARCHAR[],
    raw            JSON NOT NULL,
    synced_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (source, version)
);
