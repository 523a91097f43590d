-- name: webhook_issues
-- An issue a Sentry integration webhook told of (`issue` resource: resolved, ignored, assigned,
-- unresolved...), stored at once from the issue in its payload: the status columns, the assignee
-- when the payload has one, and the payload merged into `raw`. A status change is recorded in
-- issue_status_history as via 'webhook'; the next sync or refresh finds the same status and adds none.
-- An issue whose `lastSeen` is older than the stored one is a delivery from before a newer state
-- (late, or replayed: Sentry does not sign the timestamp) and changes nothing; an equal or missing
-- one is applied (the payload has no other time to order by), and a newer one moves `last_seen`.
INSERT INTO issue_status_history (source, issue_id, from_status, to_status, from_substatus, to_substatus,
                                  observed_at, release, via)
SELECT source, id, status, $status, substatus, $substatus, $observed_at, $release, 'webhook'
FROM issues
WHERE source = $source AND id = $id AND deleted_at IS NULL
  AND NOT coalesce(iso_ts($last_seen) < last_seen, false)
  AND (status IS DISTINCT FROM $status OR substatus IS DISTINCT FROM $substatus);
UPDATE issues SET
    status = $status,
    substatus = $substatus,
    assigned_to = CASE WHEN $set_assignee THEN $assigned_to ELSE assigned_to END,
    last_seen = greatest(last_seen, iso_ts($last_seen)),
    raw = json_merge_patch(json_merge_patch(raw, '{"statusDetails": null}'::JSON), $patch::JSON)
WHERE source = $source AND id = $id AND deleted_at IS NULL
  AND NOT coalesce(iso_ts($last_seen) < last_seen, false);
