-- name: issue_page_contexts
-- An event's contexts (browser, os, runtime, device, trace, …) with their fields.
SELECT name, type, data
FROM event_contexts WHERE source = $source AND event_id = $event_id
ORDER BY name;
