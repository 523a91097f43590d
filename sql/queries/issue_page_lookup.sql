-- name: issue_page_lookup
-- The issues a user means by `sentry-mirror issue REF`: REF is Sentry's numeric id or its short id
-- (WEB-9; Sentry upper-cases short ids, a user may not). Several sources can hold the same one.
SELECT source, id, short_id FROM issues
WHERE (id = $ref OR upper(short_id) = upper($ref)) AND ($source::VARCHAR IS NULL OR source = $source)
ORDER BY source, id;
