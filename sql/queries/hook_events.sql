-- name: hook_events
-- The event each webhook delivery carries, as JSON text for `Store.upsert_pages`, parsed by DuckDB
-- rather than by Python. `$bodies` are the deliveries' bodies, `$kinds` say where the event sits:
-- 'service' (a service hook: `event`, its issue `group.id`) or 'error' (an integration's `error`
-- resource: `data.error`, its issue `issue_id`). The fields Sentry adds to a webhook's event that
-- the API's event lacks are dropped, so the stored payload is the API's; an `error` names its
-- project `project` and its time `datetime`, given to the row as `projectID` and `dateCreated`.
-- An event without what its row needs (an event id that is a string, an issue, a project, a time
-- DuckDB reads) gives a NULL event and `why` (the writer sets the delivery aside, never stores half
-- a row), as does a body that is not a JSON object or carries no event object (`try`: a body DuckDB
-- cannot read is not checked by a parse of its own first). Each body is parsed once (its event and
-- the fields checked taken in one `json_extract`) and its event once more (rewritten): every `->`
-- on the body would parse it again.
WITH parts AS (
    SELECT n, CASE WHEN starts_with(ltrim(t, E' \t\n\r'), '{') THEN
                   try(CASE k WHEN 'service' THEN json_extract(t, [
                                   '$.event', '$.group.id', '$.event.eventID', '$.event.event_id', '$.event.id',
                                   '$.event.groupID', '$.event.projectID', '$.event.project_id', '$.event.project',
                                   '$.event.dateCreated', '$.event.date_created', '$.event.datetime'])
                              ELSE json_extract(t, [
                                   '$.data.error', '$.data.error.issue_id', '$.data.error.eventID',
                                   '$.data.error.event_id', '$.data.error.id', '$.data.error.groupID',
                                   '$.data.error.projectID', '$.data.error.project_id', '$.data.error.project',
                                   '$.data.error.dateCreated', '$.data.error.date_created', '$.data.error.datetime']) END)
              END AS p
    FROM (SELECT unnest($bodies) AS t, unnest($kinds) AS k, unnest(range(len($bodies))) AS n)
),
fields AS (  -- a field that is JSON null is as good as missing (the upsert's coalesce skips it)
    SELECT n, p[1]::VARCHAR AS ev,
           list_transform(p[2:], lambda x: CASE WHEN json_type(x) <> 'NULL' THEN x END) AS f
    FROM parts
),
checked AS (
    SELECT n, ev,
           coalesce(CASE WHEN f[1]->>'$' NOT IN ('', '0', 'false') THEN f[1]->>'$' END,
                    CASE WHEN f[5]->>'$' NOT IN ('', '0', 'false') THEN f[5]->>'$' END) AS issue_id,
           coalesce(f[2], f[3], f[4]) AS event_id,
           coalesce(f[6], f[7]) AS own_project, coalesce(f[6], f[7], f[8]) AS project,
           coalesce(f[9], f[10]) AS own_time, coalesce(f[9], f[10], f[11]) AS time
    FROM fields
),
judged AS (
    SELECT *, CASE WHEN NOT coalesce(starts_with(ev, '{'), false) THEN 'no event object'
                   WHEN json_type(event_id) IS DISTINCT FROM 'VARCHAR' OR event_id->>'$' = '' THEN 'no event id (a string)'
                   WHEN issue_id IS NULL THEN 'no issue id'
                   WHEN json_type(project) NOT IN ('VARCHAR', 'BIGINT', 'UBIGINT') OR project->>'$' = ''
                        OR project IS NULL THEN 'no project id'
                   WHEN json_type(time) IS DISTINCT FROM 'VARCHAR' OR TRY_CAST(time->>'$' AS TIMESTAMPTZ) IS NULL
                        THEN 'no time it was created'
              END AS why
    FROM checked
)
SELECT n,
       CASE WHEN why IS NULL THEN
            json_merge_patch(ev, '{"url": null, "web_url": null, "issue_url": null, "issue_id": null}',
                             CASE WHEN own_project IS NULL THEN json_object('projectID', project->>'$') ELSE '{}' END,
                             CASE WHEN own_time IS NULL THEN json_object('dateCreated', time->>'$') ELSE '{}' END)::VARCHAR
       END AS event,
       CASE WHEN why IS NULL THEN issue_id END AS issue_id,
       why
FROM judged
ORDER BY n
