-- name: events
-- Upsert events (full payloads) from whole pages in `_incoming(n INTEGER, p VARCHAR, ctx VARCHAR)`: each
-- page is the JSON array as the server sent it, parsed here and never in Python.
-- Sentry lists use camelCase; GlitchTip's issue-event list uses snake_case, so each field falls
-- back to its snake_case twin. `ctx.issue_id` (the issue it was listed under) fills a missing groupID.
-- An event without a level (GlitchTip sends none, as field or tag) takes its issue's level when the
-- issue is stored; issues.sql fills the level of events stored before their issue.
-- Only events that are new or whose payload changed are written (`_changed`, which the event_*
-- companions read): re-reading a page writes nothing. Each statement parses just the fields it
-- needs; holding whole parsed payloads (stack frames and all) cost more than parsing twice.
CREATE OR REPLACE TEMP MACRO _parsed_events(lo, hi) AS TABLE
SELECT j, ctx, coalesce(s.eventID, s.event_id, s.id) AS event_id, s
FROM (
    SELECT j, ctx, json_transform(j, '{
        "eventID": "VARCHAR", "event_id": "VARCHAR", "id": "VARCHAR",
        "groupID": "VARCHAR", "group_id": "VARCHAR", "projectID": "VARCHAR", "project_id": "VARCHAR",
        "dateCreated": "VARCHAR", "date_created": "VARCHAR", "dateReceived": "VARCHAR", "date_received": "VARCHAR",
        "release": "JSON", "environment": "VARCHAR", "level": "VARCHAR", "platform": "VARCHAR",
        "title": "VARCHAR", "message": "VARCHAR", "location": "VARCHAR",
        "user": {"id": "VARCHAR", "email": "VARCHAR", "username": "VARCHAR", "ip_address": "VARCHAR", "ipAddress": "VARCHAR"},
        "sdk": {"name": "VARCHAR", "version": "VARCHAR"},
        "tags": [{"key": "VARCHAR", "value": "VARCHAR"}]
    }') AS s
    FROM (SELECT unnest(from_json(p, '["JSON"]')) AS j, ctx::JSON AS ctx FROM _incoming WHERE n BETWEEN lo AND hi)
);
CREATE OR REPLACE TEMP TABLE _events AS FROM _parsed_events(0, -1);
-- Parsed a slice of pages at a time ($page_lo..$page_hi, see Store.upsert_pages): a batch's pages
-- parsed together could need more memory than the store's limit.
INSERT INTO _events FROM _parsed_events($page_lo, $page_hi);

-- The last copy of each event in the batch, when it is new or differs from the stored one (by the
-- payload's hash: the stored payloads themselves are never read back).
CREATE OR REPLACE TEMP TABLE _changed AS
WITH batch AS (
    SELECT e.event_id, e.rowid AS r, hash(e.j) AS h
    FROM _events e SEMI JOIN (SELECT max(rowid) AS r FROM _events WHERE event_id IS NOT NULL GROUP BY event_id) l
         ON l.r = e.rowid
),
stored AS (
    SELECT event_id, raw_hash FROM events
    WHERE source = $source AND event_id IN (SELECT event_id FROM batch)
)
SELECT b.event_id, b.r, b.h, s.event_id IS NOT NULL AS existed
FROM batch b LEFT JOIN stored s ON s.event_id = b.event_id
WHERE s.event_id IS NULL OR s.raw_hash IS DISTINCT FROM b.h;

DELETE FROM events WHERE source = $source AND event_id IN (SELECT event_id FROM _changed WHERE existed);

INSERT INTO events
SELECT $source, e.event_id,
       coalesce(s.groupID, s.group_id, ctx->>'issue_id'),
       coalesce(s.projectID, s.project_id),
       iso_ts(coalesce(s.dateCreated, s.date_created)),
       iso_ts(coalesce(s.dateReceived, s.date_received)),
       coalesce(CASE json_type(s.release) WHEN 'OBJECT' THEN s.release->>'version'
                                          WHEN 'VARCHAR' THEN s.release->>'$' END,
                list_filter(s.tags, lambda t: t.key = 'release')[1].value),
       coalesce(s.environment, list_filter(s.tags, lambda t: t.key = 'environment')[1].value),
       coalesce(s.level, list_filter(s.tags, lambda t: t.key = 'level')[1].value, i.level),
       s.platform, s.title, s.message, s.location,
       s.user.id, s.user.email, s.user.username, coalesce(s.user.ip_address, s.user.ipAddress),
       j, $synced_at, s.sdk.name, s.sdk.version, c.h,
       -- user_key: who Sentry counts as the user (see migration 006)
       coalesce(list_filter(s.tags, lambda t: t.key = 'user')[1].value, 'id:' || s.user.id,
                'username:' || s.user.username, 'email:' || s.user.email,
                'ip:' || coalesce(s.user.ip_address, s.user.ipAddress))
FROM _events e JOIN _changed c ON c.r = e.rowid
LEFT JOIN issues i ON i.source = $source AND i.id = coalesce(e.s.groupID, e.s.group_id, e.ctx->>'issue_id');
