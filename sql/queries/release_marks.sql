-- name: release_marks
-- What a release list page is compared with: each stored release's status and the counters its list
-- item carries, by version (a page that matches all of its releases ends the walk early).
SELECT version, status, CAST(deploy_count AS VARCHAR), CAST(new_groups AS VARCHAR), CAST(commit_count AS VARCHAR),
       date_released
FROM releases WHERE source = $source AND version IN (SELECT unnest($versions));
