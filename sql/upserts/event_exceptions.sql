-- name: event_exceptions
-- Runs after the events upsert (reads its `_events` and `_changed`): exceptions and their stack
-- frames from the `exception` entry, replaced whole. Frames keep Sentry's order (innermost last).
-- The same parse keeps each event's contexts (`_details`) for event_contexts.sql: parsing the
-- payloads once for both costs what the exceptions' own parse did (the contexts' took 0.34 s more
-- per 20,000 events).
DELETE FROM event_exceptions WHERE source = $source AND event_id IN (SELECT event_id FROM _changed WHERE existed);
DELETE FROM event_frames WHERE source = $source AND event_id IN (SELECT event_id FROM _changed WHERE existed);
CREATE OR REPLACE TEMP MACRO _parsed_details(lo, hi) AS TABLE
SELECT event_id, list_filter(d.entries, lambda e: e.type = 'exception' AND e.data."values" IS NOT NULL) AS exc, d.contexts
FROM (
    SELECT event_id, json_transform(j, '{"entries": [{"type": "VARCHAR", "data": {"values": [{
        "type": "VARCHAR", "value": "VARCHAR", "module": "VARCHAR",
        "mechanism": {"type": "VARCHAR", "handled": "BOOLEAN"},
        "stacktrace": {"frames": [{"function": "VARCHAR", "module": "VARCHAR", "filename": "VARCHAR",
                                   "absPath": "VARCHAR", "lineNo": "INTEGER", "colNo": "INTEGER", "inApp": "BOOLEAN"}]}
        }]}}], "contexts": "MAP(VARCHAR, JSON)"}') AS d
    FROM _events WHERE rowid IN (SELECT r FROM _changed) AND rowid BETWEEN lo AND hi
);
CREATE OR REPLACE TEMP TABLE _details AS FROM _parsed_details(0, -1);
-- A slice of the batch's events at a time ($row_lo..$row_hi), as events.sql parses its pages.
INSERT INTO _details FROM _parsed_details($row_lo, $row_hi);
CREATE OR REPLACE TEMP TABLE _exc AS
SELECT event_id, generate_subscripts(e.data."values", 1) - 1 AS idx, unnest(e.data."values") AS v
FROM (SELECT event_id, unnest(exc) AS e FROM _details WHERE len(exc) > 0);
INSERT INTO event_exceptions
SELECT $source, event_id, idx, v.type, v.value, v.module, v.mechanism.type, v.mechanism.handled
FROM _exc;
INSERT INTO event_frames
SELECT $source, event_id, idx, fidx, f.function, f.module, f.filename, f.absPath, f.lineNo, f.colNo, f.inApp
FROM (SELECT event_id, idx, generate_subscripts(v.stacktrace.frames, 1) - 1 AS fidx, unnest(v.stacktrace.frames) AS f
      FROM _exc WHERE v.stacktrace.frames IS NOT NULL);
DROP TABLE _exc;
