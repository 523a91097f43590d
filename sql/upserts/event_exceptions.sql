-- name: event_exceptions
-- Runs after the events upsert: the exceptions and their stack frames, from the `exception` entry.
DELETE FROM event_exceptions WHERE source = $source AND event_id IN (
    SELECT coalesce(j->>'eventID', j->>'event_id', j->>'id') FROM (SELECT unnest($rows::JSON[]) AS j));
DELETE FROM event_frames WHERE source = $source AND event_id IN (
    SELECT coalesce(j->>'eventID', j->>'event_id', j->>'id') FROM (SELECT unnest($rows::JSON[]) AS j));
CREATE OR REPLACE TEMP TABLE _exc AS
SELECT e.event_id, x.idx - 1 AS idx, x.v
FROM (
    SELECT coalesce(j->>'eventID', j->>'event_id', j->>'id') AS event_id,
           unnest(CASE WHEN json_type(j->'entries') = 'ARRAY' THEN CAST(j->'entries' AS JSON[]) ELSE [] END) AS entry
    FROM (SELECT unnest($rows::JSON[]) AS j)
) e,
LATERAL (
    SELECT unnest(CASE WHEN json_type(e.entry->'data'->'values') = 'ARRAY'
                       THEN CAST(e.entry->'data'->'values' AS JSON[]) ELSE [] END) AS v,
           generate_subscripts(CASE WHEN json_type(e.entry->'data'->'values') = 'ARRAY'
                       THEN CAST(e.entry->'data'->'values' AS JSON[]) ELSE [] END, 1) AS idx
) x
WHERE e.entry->>'type' = 'exception';
INSERT OR REPLACE INTO event_exceptions
SELECT $source, event_id, idx, v->>'type', v->>'value', v->>'module', v->'mechanism'->>'type',
       TRY_CAST(v->'mechanism'->>'handled' AS BOOLEAN)
FROM _exc;
INSERT OR REPLACE INTO event_frames
SELECT $source, event_id, idx, f.fidx - 1, f.fr->>'function', f.fr->>'module', f.fr->>'filename',
       f.fr->>'absPath', TRY_CAST(f.fr->>'lineNo' AS INTEGER), TRY_CAST(f.fr->>'colNo' AS INTEGER),
       TRY_CAST(f.fr->>'inApp' AS BOOLEAN)
FROM _exc,
LATERAL (
    SELECT unnest(CASE WHEN json_type(v->'stacktrace'->'frames') = 'ARRAY'
                       THEN CAST(v->'stacktrace'->'frames' AS JSON[]) ELSE [] END) AS fr,
           generate_subscripts(CASE WHEN json_type(v->'stacktrace'->'frames') = 'ARRAY'
                       THEN CAST(v->'stacktrace'->'frames' AS JSON[]) ELSE [] END, 1) AS fidx
) f;
DROP TABLE _exc;
