-- name: hook_events
-- The event each webhook delivery carries, as JSON text for `Store.upsert_pages`, parsed by DuckDB
-- rather than by Python (decoding and encoding a 9 KB event in Python cost 0.15 ms, a sixth of the
-- receiver's budget at 1,000 events/s). `$bodies` are the deliveries' bodies, `$kinds` say where
-- the event sits: 'service' (a service hook: `event`, its issue `group.id`) or 'error' (an
-- integration's `error` resource: `data.error`, its issue `issue_id`). The fields Sentry adds to a
-- webhook's event that the API's event lacks are dropped, so the stored payload is the API's.
-- A body that is not a JSON object, or carries no event object, gives a NULL event.
SELECT n,
       CASE WHEN json_type(ev) = 'OBJECT'
            THEN json_merge_patch(ev, '{"url": null, "web_url": null, "issue_url": null, "issue_id": null}')::VARCHAR
       END AS event,
       CASE WHEN json_type(ev) = 'OBJECT' THEN
            coalesce(CASE WHEN gid NOT IN ('', '0', 'false') THEN gid END,
                     CASE WHEN ev->>'groupID' NOT IN ('', '0', 'false') THEN ev->>'groupID' END)
       END AS issue_id
FROM (
    SELECT n,
           CASE k WHEN 'service' THEN b->'event' ELSE b->'data'->'error' END AS ev,
           CASE k WHEN 'service' THEN CASE WHEN json_type(b->'group') = 'OBJECT' THEN b->'group'->>'id' END
                  ELSE CASE WHEN json_type(b->'data'->'error') = 'OBJECT' THEN b->'data'->'error'->>'issue_id' END
           END AS gid
    FROM (
        SELECT n, CASE WHEN json_valid(t) AND json_type(t::JSON) = 'OBJECT' THEN t::JSON END AS b, k
        FROM (SELECT unnest($bodies) AS t, unnest($kinds) AS k, unnest(range(len($bodies))) AS n)
    )
)
ORDER BY n
