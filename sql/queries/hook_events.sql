-- name: hook_events
-- The event each webhook delivery carries, as JSON text for `Store.upsert_pages`, parsed by DuckDB
-- rather than by Python. `$bodies` are the deliveries' bodies, `$kinds` say where the event sits:
-- 'service' (a service hook: `event`, its issue `group.id`) or 'error' (an integration's `error`
-- resource: `data.error`, its issue `issue_id`). The fields Sentry adds to a webhook's event that
-- the API's event lacks are dropped, so the stored payload is the API's. A body that is not a JSON
-- object, or carries no event object, gives a NULL event (`try`: a body DuckDB cannot read is not
-- checked by a parse of its own first). Each body is parsed once and its event once more (rewritten):
-- every `->` on the body would parse it again.
SELECT n,
       CASE WHEN starts_with(ev, '{')
            THEN json_merge_patch(ev, '{"url": null, "web_url": null, "issue_url": null, "issue_id": null}')::VARCHAR
       END AS event,
       CASE WHEN starts_with(ev, '{') THEN
            coalesce(CASE WHEN gid NOT IN ('', '0', 'false') THEN gid END,
                     CASE WHEN gid IS NULL OR gid IN ('', '0', 'false') THEN
                          CASE WHEN ev->>'groupID' NOT IN ('', '0', 'false') THEN ev->>'groupID' END END)
       END AS issue_id
FROM (
    SELECT n, p[1]::VARCHAR AS ev,
           p[2]->>'$' AS gid
    FROM (
        SELECT n, CASE WHEN starts_with(ltrim(t, E' \t\n\r'), '{') THEN
                       try(CASE k WHEN 'service' THEN json_extract(t, ['$.event', '$.group.id'])
                                  ELSE json_extract(t, ['$.data.error', '$.data.error.issue_id']) END)
                  END AS p
        FROM (SELECT unnest($bodies) AS t, unnest($kinds) AS k, unnest(range(len($bodies))) AS n)
    )
)
ORDER BY n
