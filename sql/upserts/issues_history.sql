-- name: issues_history
-- Runs before the issues upsert: record each issue whose status or substatus differs from the
-- stored one (or that is new to the mirror) in issue_status_history.
INSERT INTO issue_status_history (source, issue_id, from_status, to_status, from_substatus, to_substatus, observed_at, release)
SELECT $source, n.id, o.status, n.status, o.substatus, n.substatus, $observed_at, n.release
FROM (
    SELECT j->>'id' AS id, j->>'status' AS status, j->>'substatus' AS substatus,
           j->'statusDetails'->>'inRelease' AS release
    FROM _page
) n
LEFT JOIN issues o ON o.source = $source AND o.id = n.id
WHERE o.id IS NULL
   OR o.status IS DISTINCT FROM n.status
   OR o.substatus IS DISTINCT FROM n.substatus
   OR o.deleted_at IS NOT NULL;
