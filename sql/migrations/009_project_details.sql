-- Per-project details read on the project_details cadence: the project's tag keys (whose values
-- fill tag_values) and its service hooks. A hook's `secret` is never stored: the syncer drops it
-- from Sentry's answer before anything is written, `raw` included.
CREATE TABLE project_tag_keys (
    source       VARCHAR NOT NULL,
    project_id   VARCHAR NOT NULL,
    key          VARCHAR NOT NULL,
    name         VARCHAR,
    values_seen  BIGINT,
    can_delete   BOOLEAN,
    raw          JSON NOT NULL,
    synced_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (source, project_id, key)
);

CREATE TABLE project_hooks (
    source        VARCHAR NOT NULL,
    project_id    VARCHAR NOT NULL,
    hook_id       VARCHAR NOT NULL,
    url           VARCHAR,
    events        VARCHAR[],
    status        VARCHAR,
    date_created  TIMESTAMP,
    raw           JSON NOT NULL,
    synced_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (source, project_id, hook_id)
);
