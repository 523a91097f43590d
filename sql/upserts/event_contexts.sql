-- name: event_contexts
-- Runs after the events upsert (reads its `_events` and `_changed`, then drops them): one row per
-- context object (browser, os, runtime, …), replaced whole; parsed a slice of the batch's events at a
-- time ($row_lo..$row_hi), as events.sql parses its pages.
DELETE FROM event_contexts WHERE source = $source AND event_id IN (SELECT event_id FROM _changed WHERE existed);
INSERT INTO event_contexts
SELECT $source, event_id, c.key, c.value->>'type', c.value
FROM (SELECT event_id, unnest(map_entries(json_transform(j, '{"contexts": "MAP(VARCHAR, JSON)"}').contexts)) AS c
      FROM _events WHERE rowid IN (SELECT r FROM _changed) AND rowid BETWEEN $row_lo AND $row_hi)
WHERE json_type(c.value) = 'OBJECT';
DROP TABLE _changed;
DROP TABLE _events;
