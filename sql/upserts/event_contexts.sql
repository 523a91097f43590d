-- name: event_contexts
-- Runs after event_exceptions.sql (reads the contexts it parsed into `_details`, then drops the
-- batch's temp tables): one row per context object (browser, os, runtime, …), replaced whole.
DELETE FROM event_contexts WHERE source = $source AND event_id IN (SELECT event_id FROM _changed WHERE existed);
INSERT INTO event_contexts
SELECT $source, event_id, c.key, c.value->>'type', c.value
FROM (SELECT event_id, unnest(map_entries(contexts)) AS c FROM _details)
WHERE json_type(c.value) = 'OBJECT';
DROP TABLE _details;
DROP TABLE _changed;
DROP TABLE _events;
