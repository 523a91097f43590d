-- name: event_exceptions
-- Runs after the events upsert (reads its `_events`): exceptions and their stack frames from the
-- `exception` entry, replaced whole. Frames keep Sentry's order (innermost last).
DELETE FROM event_exceptions WHERE source = $source AND event_id IN (SELECT event_id FROM _events);
DELETE FROM event_frames WHERE source = $source AND event_id IN (SELECT event_id FROM _events);
CREATE OR REPLACE TEMP TABLE _exc AS
SELECT event_id, generate_subscripts(x.values, 1) - 1 AS idx, unnest(x.values) AS v
FROM (
    SELECT event_id, json_transform(e.data, '{"values": [{
        "type": "VARCHAR", "value": "VARCHAR", "module": "VARCHAR",
        "mechanism": {"type": "VARCHAR", "handled": "BOOLEAN"},
        "stacktrace": {"frames": [{"function": "VARCHAR", "module": "VARCHAR", "filename": "VARCHAR",
                                   "absPath": "VARCHAR", "lineNo": "INTEGER", "colNo": "INTEGER", "inApp": "BOOLEAN"}]}
    }]}') AS x
    FROM (SELECT event_id, unnest(coalesce(s.entries, [])) AS e FROM _events)
    WHERE e.type = 'exception' AND event_id IS NOT NULL
)
WHERE x.values IS NOT NULL;
INSERT OR REPLACE INTO event_exceptions
SELECT $source, event_id, idx, v.type, v.value, v.module, v.mechanism.type, v.mechanism.handled
FROM _exc;
INSERT OR REPLACE INTO event_frames
SELECT $source, event_id, idx, fidx, f.function, f.module, f.filename, f.absPath, f.lineNo, f.colNo, f.inApp
FROM (SELECT event_id, idx, generate_subscripts(v.stacktrace.frames, 1) - 1 AS fidx, unnest(v.stacktrace.frames) AS f
      FROM _exc WHERE v.stacktrace.frames IS NOT NULL);
DROP TABLE _exc;
