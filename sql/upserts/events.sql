-- name: events
-- Upsert events (full payloads) from the page in `_page(j JSON)`. Each object is parsed once into a
-- typed STRUCT (`_events.s`) that this file's statements and the event_* companions read.
-- Sentry lists use camelCase; GlitchTip's issue-event list uses snake_case, so each field falls
-- back to its snake_case twin. `_page.ctx.issue_id` (the issue it was listed under) fills a missing groupID.
CREATE OR REPLACE TEMP TABLE _events AS
SELECT j, s, ctx,
       coalesce(s.eventID, s.event_id, s.id) AS event_id,
       list_filter(s.tags, lambda t: t.key = 'release')[1].value AS tag_release,
       list_filter(s.tags, lambda t: t.key = 'environment')[1].value AS tag_environment,
       list_filter(s.tags, lambda t: t.key = 'level')[1].value AS tag_level
FROM (
    SELECT j, ctx, json_transform(j, '{
        "eventID": "VARCHAR", "event_id": "VARCHAR", "id": "VARCHAR",
        "groupID": "VARCHAR", "group_id": "VARCHAR", "projectID": "VARCHAR", "project_id": "VARCHAR",
        "dateCreated": "VARCHAR", "date_created": "VARCHAR", "dateReceived": "VARCHAR", "date_received": "VARCHAR",
        "release": "JSON", "environment": "VARCHAR", "level": "VARCHAR", "platform": "VARCHAR",
        "title": "VARCHAR", "message": "VARCHAR", "location": "VARCHAR",
        "user": {"id": "VARCHAR", "email": "VARCHAR", "username": "VARCHAR", "ip_address": "VARCHAR", "ipAddress": "VARCHAR"},
        "sdk": {"name": "VARCHAR", "version": "VARCHAR"},
        "tags": [{"key": "VARCHAR", "value": "VARCHAR"}],
        "entries": [{"type": "VARCHAR", "data": "JSON"}],
        "contexts": "MAP(VARCHAR, JSON)"
    }') AS s
    FROM _page
);

INSERT INTO events
SELECT $source, event_id,
       coalesce(s.groupID, s.group_id, ctx->>'issue_id'),
       coalesce(s.projectID, s.project_id),
       iso_ts(coalesce(s.dateCreated, s.date_created)),
       iso_ts(coalesce(s.dateReceived, s.date_received)),
       coalesce(CASE json_type(s.release) WHEN 'OBJECT' THEN s.release->>'version'
                                          WHEN 'VARCHAR' THEN s.release->>'$' END, tag_release),
       coalesce(s.environment, tag_environment),
       coalesce(s.level, tag_level),
       s.platform, s.title, s.message, s.location,
       s.user.id, s.user.email, s.user.username, coalesce(s.user.ip_address, s.user.ipAddress),
       j, $synced_at, s.sdk.name, s.sdk.version
FROM _events
WHERE event_id IS NOT NULL
ON CONFLICT (source, event_id) DO UPDATE SET
    issue_id = excluded.issue_id, project_id = excluded.project_id,
    date_created = excluded.date_created, date_received = excluded.date_received,
    release = excluded.release, environment = excluded.environment, level = excluded.level,
    platform = excluded.platform, title = excluded.title, message = excluded.message,
    location = excluded.location, user_id = excluded.user_id, user_email = excluded.user_email,
    user_username = excluded.user_username, user_ip = excluded.user_ip,
    sdk_name = excluded.sdk_name, sdk_version = excluded.sdk_version,
    raw = excluded.raw, synced_at = excluded.synced_at
WHERE events.raw IS DISTINCT FROM excluded.raw;
