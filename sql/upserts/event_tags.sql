-- name: event_tags
-- Runs after the events upsert (reads its `_events` and `_changed`): the tags of new or changed
-- events, replaced whole.
DELETE FROM event_tags WHERE source = $source AND event_id IN (SELECT event_id FROM _changed WHERE existed);
INSERT INTO event_tags
SELECT $source, event_id, t.key, t.value
FROM (SELECT event_id, unnest(s.tags) AS t FROM _events WHERE rowid IN (SELECT r FROM _changed))
WHERE t.key IS NOT NULL;
