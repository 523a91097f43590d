-- name: issue_page_event
-- One stored event of an issue: $event_id when given, else the latest (or, with $oldest, the
-- first) by when it happened, the event id breaking ties; with how many of the issue's events the
-- store holds before and after it.
WITH mine AS (
    SELECT event_id, date_created FROM events WHERE source = $source AND issue_id = $issue_id
),
chosen AS (
    SELECT e.event_id, e.date_created, e.date_received, e.release, e.environment, e.level, e.platform,
           e.title, e.message, e.location, e.user_id, e.user_email, e.user_username, e.user_ip,
           e.sdk_name, e.sdk_version, e.raw
    FROM events e
    WHERE e.source = $source AND e.issue_id = $issue_id
      AND ($event_id::VARCHAR IS NULL OR e.event_id = $event_id)
    ORDER BY CASE WHEN $oldest THEN e.date_created END ASC NULLS LAST,
             CASE WHEN $oldest THEN e.event_id END ASC NULLS LAST,
             e.date_created DESC, e.event_id DESC
    LIMIT 1
)
SELECT c.*,
       (SELECT count(*) FROM mine m WHERE (m.date_created, m.event_id) < (c.date_created, c.event_id)) AS older,
       (SELECT count(*) FROM mine m WHERE (m.date_created, m.event_id) > (c.date_created, c.event_id)) AS newer
FROM chosen c;
