-- name: issue_page_exceptions
-- An event's exception chain in Sentry's order (the cause first, the exception raised last).
SELECT idx, type, value, module, mechanism_type, handled
FROM event_exceptions WHERE source = $source AND event_id = $event_id
ORDER BY idx;
