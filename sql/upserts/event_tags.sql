-- name: event_tags
-- Runs after the events upsert (reads its `_events`): the tags of these events, replaced whole.
DELETE FROM event_tags WHERE source = $source AND event_id IN (SELECT event_id FROM _events);
INSERT OR REPLACE INTO event_tags
SELECT $source, event_id, t.key, t.value
FROM (SELECT event_id, unnest(coalesce(s.tags, [])) AS t FROM _events)
WHERE event_id IS NOT NULL AND t.key IS NOT NULL;
