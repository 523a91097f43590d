-- name: 003_org_entities_and_stats
-- Teams, members, environments, deploys, per-project tag values and users, and the two kinds of
-- event-count series: project stats (received/rejected/blacklisted/generated at 1h and 1d) and the
-- organization's stats_v2 outcomes by category.

CREATE TABLE teams (
    source        VARCHAR NOT NULL,
    id            VARCHAR NOT NULL,
    slug          VARCHAR,
    name          VARCHAR,
    member_count  BIGINT,
    date_created  TIMESTAMP,
    raw           JSON NOT NULL,
    synced_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (source, id)
);

CREATE TABLE members (
    source        VARCHAR NOT NULL,
    id            VARCHAR NOT NULL,
    email         VARCHAR,
    name          VARCHAR,
    role          VARCHAR,
    pending       BOOLEAN,
    expired       BOOLEAN,
    user_id       VARCHAR,
    date_created  TIMESTAMP,
    raw           JSON NOT NULL,
    synced_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (source, id)
);

CREATE TABLE environments (
    source     VARCHAR NOT NULL,
    name       VARCHAR NOT NULL,
    id         VARCHAR,
    raw        JSON NOT NULL,
    synced_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (source, name)
);

CREATE TABLE deploys (
    source          VARCHAR NOT NULL,
    id              VARCHAR NOT NULL,
    release         VARCHAR NOT NULL,
    environment     VARCHAR,
    name            VARCHAR,
    url             VARCHAR,
    date_started    TIMESTAMP,
    date_finished   TIMESTAMP,
    raw             JSON NOT NULL,
    synced_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (source, id)
);

CREATE TABLE tag_values (
    source      VARCHAR NOT NULL,
    project_id  VARCHAR NOT NULL,
    key         VARCHAR NOT NULL,
    value       VARCHAR NOT NULL,
    count       BIGINT,
    first_seen  TIMESTAMP,
    last_seen   TIMESTAMP,
    raw         JSON NOT NULL,
    synced_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (source, project_id, key, value)
);

CREATE TABLE project_users (
    source        VARCHAR NOT NULL,
    project_id    VARCHAR NOT NULL,
    tag_value     VARCHAR NOT NULL,   -- "id:…", "email:…": how Sentry keys a user within a project
    id            VARCHAR,
    identifier    VARCHAR,
    username      VARCHAR,
    email         VARCHAR,
    name          VARCHAR,
    ip_address    VARCHAR,
    date_created  TIMESTAMP,
    raw           JSON NOT NULL,
    synced_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (source, project_id, tag_value)
);

-- Sentry's per-project counters (`/stats/`): one row per bucket.
CREATE TABLE project_stats (
    source      VARCHAR NOT NULL,
    project_id  VARCHAR NOT NULL,
    stat        VARCHAR NOT NULL,   -- received | rejected | blacklisted | generated
    resolution  VARCHAR NOT NULL,   -- 1h | 1d
    ts          TIMESTAMP NOT NULL, -- bucket start, UTC
    count       BIGINT,
    synced_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (source, project_id, stat, resolution, ts)
);

-- The organization's usage outcomes (`/stats_v2/`): one row per interval, category and outcome.
CREATE TABLE org_stats (
    source     VARCHAR NOT NULL,
    interval   VARCHAR NOT NULL,    -- 1h | 1d
    ts         TIMESTAMP NOT NULL,
    category   VARCHAR NOT NULL,
    outcome    VARCHAR NOT NULL,
    quantity   BIGINT,
    synced_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (source, interval, ts, category, outcome)
);
