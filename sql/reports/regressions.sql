-- name: regressions
-- The `report regressions` query: releases from the release_regressions view, newest first, with
-- what each brought (new and regressed issues, events, users) against the previous release.
-- It reads the view's macro, release_regressions_for, with the filters and the limit, so distinct
-- users are counted only for the releases listed and those before them; same rows as the view.
-- $since/$until bound the release's creation time; $environment is not a release property and
-- is refused by the command.
SELECT project, release, date_created AS created, new_issues, sentry_new_groups, regressed_issues, events,
       affected_users, previous_release, previous_new_issues, previous_regressed_issues, previous_events,
       events_change, affected_users_change
FROM release_regressions_for($project::VARCHAR, $release::VARCHAR, $since::TIMESTAMP, $until::TIMESTAMP,
                             CASE WHEN $source::VARCHAR IS NULL THEN $limit END)  -- one source: all, then its $limit
WHERE ($project::VARCHAR IS NULL OR project = $project)
  AND ($source::VARCHAR IS NULL OR source = $source)
  AND ($release::VARCHAR IS NULL OR release = $release)
  AND ($since::TIMESTAMP IS NULL OR date_created >= $since)
  AND ($until::TIMESTAMP IS NULL OR date_created < $until)
ORDER BY date_created DESC NULLS LAST, project, release
LIMIT $limit;
