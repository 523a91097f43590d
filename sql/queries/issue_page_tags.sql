-- name: issue_page_tags
-- The tags of an issue's stored events, as Sentry's issue page lists them: per key its top values
-- (at most $top) with how many events carry each, of how many events carry the key at all, and
-- how many distinct values the key has.
WITH counted AS (
    SELECT t.key, t.value, count(*) AS events
    FROM event_tags t
    WHERE t.source = $source
      AND t.event_id IN (SELECT event_id FROM events WHERE source = $source AND issue_id = $issue_id)
    GROUP BY t.key, t.value
),
ranked AS (
    SELECT key, value, events,
           sum(events) OVER (PARTITION BY key) AS key_events,
           count(*) OVER (PARTITION BY key) AS key_values,
           row_number() OVER (PARTITION BY key ORDER BY events DESC, value) AS rank
    FROM counted
)
SELECT key, value, events, key_events, key_values
FROM ranked WHERE rank <= $top
ORDER BY key, rank;
