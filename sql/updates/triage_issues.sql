-- name: triage_issues
-- A change `triage` made in Sentry, stored from Sentry's answer at once: the status columns (when
-- the answer has a status), the assignee (when it has one), and the answer merged into `raw`
-- (statusDetails replaced, not merged: `$clear` first drops the old one). A status change is
-- recorded in issue_status_history as via 'triage'; the next sync finds the same status and adds none.
INSERT INTO issue_status_history (source, issue_id, from_status, to_status, from_substatus, to_substatus,
                                  observed_at, release, via)
SELECT source, id, status, $status, substatus, $substatus, $observed_at, $release, 'triage'
FROM issues
WHERE $set_status AND source = $source AND id IN (SELECT unnest($ids::VARCHAR[])) AND deleted_at IS NULL
  AND (status IS DISTINCT FROM $status OR substatus IS DISTINCT FROM $substatus);
UPDATE issues SET
    status = CASE WHEN $set_status THEN $status ELSE status END,
    substatus = CASE WHEN $set_status THEN $substatus ELSE substatus END,
    assigned_to = CASE WHEN $set_assignee THEN $assigned_to ELSE assigned_to END,
    raw = json_merge_patch(json_merge_patch(raw, $clear::JSON), $patch::JSON)
WHERE source = $source AND id IN (SELECT unnest($ids::VARCHAR[])) AND deleted_at IS NULL;
