-- name: event_contexts
-- Runs after the events upsert: one row per context object (browser, os, runtime, …).
DELETE FROM event_contexts WHERE source = $source AND event_id IN (
    SELECT coalesce(j->>'eventID', j->>'event_id', j->>'id') FROM (SELECT unnest($rows::JSON[]) AS j));
INSERT OR REPLACE INTO event_contexts
SELECT $source, event_id, name, data->>'type', data
FROM (
    SELECT coalesce(j->>'eventID', j->>'event_id', j->>'id') AS event_id,
           unnest(json_keys(j->'contexts')) AS name, j->'contexts' AS ctx
    FROM (SELECT unnest($rows::JSON[]) AS j)
    WHERE json_type(j->'contexts') = 'OBJECT'
), LATERAL (SELECT ctx->name AS data)
WHERE json_type(data) = 'OBJECT';
