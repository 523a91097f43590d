-- name: events
-- Upsert events (full payloads). Sentry lists use camelCase; GlitchTip's issue-event list uses
-- snake_case, so each field falls back to its snake_case twin. `$issue_id` fills a missing groupID.
INSERT INTO events
SELECT $source,
       coalesce(j->>'eventID', j->>'event_id', j->>'id'),
       coalesce(j->>'groupID', j->>'group_id', $issue_id),
       coalesce(j->>'projectID', j->>'project_id'),
       iso_ts(coalesce(j->>'dateCreated', j->>'date_created')),
       iso_ts(coalesce(j->>'dateReceived', j->>'date_received')),
       coalesce(
           CASE json_type(j->'release') WHEN 'OBJECT' THEN j->'release'->>'version'
                                        WHEN 'VARCHAR' THEN j->>'release' END,
           (SELECT t->>'value' FROM (SELECT unnest(CAST(j->'tags' AS JSON[])) AS t) WHERE t->>'key' = 'release' LIMIT 1)),
       coalesce(j->>'environment',
           (SELECT t->>'value' FROM (SELECT unnest(CAST(j->'tags' AS JSON[])) AS t) WHERE t->>'key' = 'environment' LIMIT 1)),
       coalesce(j->>'level',
           (SELECT t->>'value' FROM (SELECT unnest(CAST(j->'tags' AS JSON[])) AS t) WHERE t->>'key' = 'level' LIMIT 1)),
       j->>'platform', j->>'title', j->>'message', j->>'location',
       j->'user'->>'id', j->'user'->>'email', j->'user'->>'username',
       coalesce(j->'user'->>'ip_address', j->'user'->>'ipAddress'),
       j, $synced_at, j->'sdk'->>'name', j->'sdk'->>'version'
FROM (SELECT unnest($rows::JSON[]) AS j)
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
