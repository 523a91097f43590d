-- name: event_tags
-- Runs after the events upsert: the tags of these events, replaced as a whole.
DELETE FROM event_tags WHERE source = $source AND event_id IN (
    SELECT coalesce(j->>'eventID', j->>'event_id', j->>'id') FROM (SELECT unnest($rows::JSON[]) AS j));
INSERT OR REPLACE INTO event_tags
SELECT $source, e.event_id, t->>'key', t->>'value'
FROM (SELECT coalesce(j->>'eventID', j->>'event_id', j->>'id') AS event_id,
             unnest(CASE WHEN json_type(j->'tags') = 'ARRAY' THEN CAST(j->'tags' AS JSON[]) ELSE [] END) AS t
      FROM (SELECT unnest($rows::JSON[]) AS j)) e
WHERE t->>'key' IS NOT NULL;
