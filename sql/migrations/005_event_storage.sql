-- name: 005_event_storage
-- Event storage built for bulk ingest (measured on 6,792 full-payload events, see the commit):
-- - `events.raw` is compressed with zstd: DuckDB's default string compression made the store
--   9x larger and its checkpoints slow; zstd cuts raw payloads to a tenth.
-- - No primary keys on events and the tables derived from them: DuckDB keeps each key's index in
--   memory, and the one on events grew with the store until a million events no longer fit the
--   syncer's memory limit. An event is written only when the store lacks it or holds an older
--   payload (which is deleted first, with its derived rows), all in the one writer's
--   transaction, so (source, event_id) stays unique by construction; tests check it.
-- - `events.raw_hash`: finding which events of a page changed read every stored payload (a
--   whole-table scan of raw per batch, 150 ms at a million events); the hash is 8 bytes.
-- Tables are rebuilt (DuckDB cannot change a column's compression or drop a key in place).

CREATE TABLE events_005 (
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
    raw            JSON NOT NULL USING COMPRESSION zstd,
    synced_at      TIMESTAMP NOT NULL,
    sdk_name       VARCHAR,
    sdk_version    VARCHAR,
    raw_hash       UBIGINT    -- hash(raw): a re-read page is compared with what is stored without reading raw
);
INSERT INTO events_005 SELECT *, hash(raw) FROM events;
DROP TABLE events;
ALTER TABLE events_005 RENAME TO events;

CREATE TABLE event_tags_005 (
    source    VARCHAR NOT NULL,
    event_id  VARCHAR NOT NULL,
    key       VARCHAR NOT NULL,
    value     VARCHAR
);
INSERT INTO event_tags_005 SELECT * FROM event_tags;
DROP TABLE event_tags;
ALTER TABLE event_tags_005 RENAME TO event_tags;

CREATE TABLE event_exceptions_005 (
    source          VARCHAR NOT NULL,
    event_id        VARCHAR NOT NULL,
    idx             INTEGER NOT NULL,
    type            VARCHAR,
    value           VARCHAR,
    module          VARCHAR,
    mechanism_type  VARCHAR,
    handled         BOOLEAN
);
INSERT INTO event_exceptions_005 SELECT * FROM event_exceptions;
DROP TABLE event_exceptions;
ALTER TABLE event_exceptions_005 RENAME TO event_exceptions;

CREATE TABLE event_frames_005 (
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
    in_app         BOOLEAN
);
INSERT INTO event_frames_005 SELECT * FROM event_frames;
DROP TABLE event_frames;
ALTER TABLE event_frames_005 RENAME TO event_frames;

CREATE TABLE event_contexts_005 (
    source    VARCHAR NOT NULL,
    event_id  VARCHAR NOT NULL,
    name      VARCHAR NOT NULL,
    type      VARCHAR,
    data      JSON
);
INSERT INTO event_contexts_005 SELECT * FROM event_contexts;
DROP TABLE event_contexts;
ALTER TABLE event_contexts_005 RENAME TO event_contexts;
