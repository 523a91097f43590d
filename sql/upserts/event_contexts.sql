-- name: event_contexts
-- Runs after the events upsert (reads its `_events`, then drops it): one row per context object
-- (browser, os, runtime, …), replaced whole.
DELETE FROM event_contexts WHERE source = $source AND event_id IN (SELECT event_id FROM _events);
INSERT OR REPLACE INTO event_contexts
SELECT $source, event_id, c.key, c.value->>'type', c.value
FROM (SELECT event_id, unnest(map_entries(s.contexts)) AS c FROM _events WHERE s.contexts IS NOT NULL)
WHERE event_id IS NOT NULL AND json_type(c.value) = 'OBJECT';
DROP TABLE _events;
