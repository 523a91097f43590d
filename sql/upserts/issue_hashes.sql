-- name: issue_hashes
-- Upsert one issue's hashes (`ctx.issue_id`). A hash listed under another issue than the stored
-- one has moved (a merge): the row follows it, remembering the issue it left.
INSERT INTO issue_hashes
SELECT DISTINCT ON (j->>'id') $source, j->>'id', ctx->>'issue_id',
       coalesce(j->'latestEvent'->>'eventID', j->'latestEvent'->>'id'),
       iso_ts(j->'latestEvent'->>'dateCreated'), TRY_CAST(j->>'mergedBySeer' AS BOOLEAN),
       TRY_CAST(j->>'seerMatchDistance' AS DOUBLE), NULL, $synced_at, $synced_at
FROM _page
WHERE j->>'id' IS NOT NULL
ON CONFLICT (source, hash) DO UPDATE SET
    previous_issue_id = CASE WHEN issue_hashes.issue_id = excluded.issue_id THEN issue_hashes.previous_issue_id
                             ELSE issue_hashes.issue_id END,
    first_seen_at = CASE WHEN issue_hashes.issue_id = excluded.issue_id THEN issue_hashes.first_seen_at
                         ELSE excluded.first_seen_at END,
    issue_id = excluded.issue_id, latest_event_id = excluded.latest_event_id,
    latest_event_at = excluded.latest_event_at, merged_by_seer = excluded.merged_by_seer,
    seer_match_distance = excluded.seer_match_distance, synced_at = excluded.synced_at;
