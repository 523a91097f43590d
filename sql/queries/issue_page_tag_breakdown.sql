-- name: issue_page_tag_breakdown
-- An issue's tags as Sentry counts them over all its events (issue_tag_values, read for projects
-- whose events are sampled or not read): per key its top values (at most $top), with the key's
-- totals as Sentry gave them.
SELECT key, value, count AS events, key_events, key_values
FROM (SELECT *, row_number() OVER (PARTITION BY key ORDER BY count DESC, value) AS rank
      FROM issue_tag_values WHERE source = $source AND issue_id = $issue_id)
WHERE rank <= $top
ORDER BY key, rank;
