-- name: release_regressions
-- requires: releases, events, live_events, issues, issue_status_history, projects
-- Answers: which release made things worse? Per release of each project: issues first seen in it,
-- issues that regressed in it, events and distinct users, beside the project's previous release,
-- with Sentry's own `newGroups` as a cross-check of the mirror's count.
-- Reads: releases, issues (first_seen), events (release, user), issue_status_history.
-- Grain: one row per source, project and release.
-- First seen in R: the issue's first stored event carries R when that event is the issue's first
--   (Sentry's firstSeen); otherwise R is the project's release current at firstSeen.
-- Regressed in R: the mirror saw the issue resolved, and its first stored event after that carries
--   R. A regression that happened before the mirror ever saw the issue resolved is not attributed
--   (the API tells its release only in each issue's activity, which the mirror does not read).
-- Built as the table macro release_regressions_for(project_slug, release_version, created_since,
-- created_until, max_rows): the releases that pass the filters (NULL means "any"), the newest
-- max_rows of them (by date_created DESC NULLS LAST, project, release, as `report regressions`
-- lists them). Events, users, new and regressed issues are counted for those releases and the
-- releases before them only, so a short list does not count distinct users over every release.
--   SELECT * FROM release_regressions_for('backend', NULL, TIMESTAMP '2025-01-01', NULL, 10);
-- The view is the macro with no filter: every release.
CREATE OR REPLACE MACRO release_regressions_for(project_slug, release_version, created_since, created_until,
                                                max_rows) AS TABLE
WITH rel AS (
    SELECT source, unnest(project_ids) AS project_id, version AS release, date_created, date_released, new_groups
    FROM releases
),
ordered AS (
    SELECT *, lag(release) OVER (PARTITION BY source, project_id ORDER BY date_created, release) AS previous_release
    FROM rel
),
shown AS (
    SELECT o.source, o.project_id, o.release, o.previous_release
    FROM ordered o
    LEFT JOIN projects p ON p.source = o.source AND p.id = o.project_id
    WHERE (project_slug IS NULL OR p.slug = project_slug)
      AND (release_version IS NULL OR o.release = release_version)
      AND (created_since IS NULL OR o.date_created >= created_since)
      AND (created_until IS NULL OR o.date_created < created_until)
    ORDER BY o.date_created DESC NULLS LAST, p.slug, o.release
    LIMIT max_rows
),
needed AS (  -- the shown releases and the ones before them, whose figures are compared
    SELECT source, project_id, release FROM shown
    UNION
    SELECT source, project_id, previous_release FROM shown WHERE previous_release IS NOT NULL
),
first_event AS (
    SELECT source, issue_id, min(date_created) AS first_at, arg_min_null(release, date_created) AS release
    FROM events GROUP BY source, issue_id
),
first_release AS (
    SELECT i.source, i.project_id, i.id AS issue_id,
           -- its first event's release when the mirror holds that event (first_seen may be cut to
           -- the second), else the release current when the issue was first seen
           CASE WHEN f.first_at < i.first_seen + INTERVAL 1 SECOND THEN f.release ELSE r.release END AS release
    FROM issues i
    LEFT JOIN first_event f ON f.source = i.source AND f.issue_id = i.id
    ASOF LEFT JOIN rel r ON r.source = i.source AND r.project_id = i.project_id AND i.first_seen >= r.date_created
),
new_issues AS (
    SELECT source, project_id, release, count(*) AS n FROM first_release WHERE release IS NOT NULL GROUP BY ALL
),
regressions AS (
    SELECT h.source, h.issue_id, h.observed_at,
           arg_min(e.project_id, e.date_created) AS project_id, arg_min_null(e.release, e.date_created) AS release
    FROM issue_status_history h
    JOIN events e ON e.source = h.source AND e.issue_id = h.issue_id AND e.date_created >= h.observed_at
    WHERE h.to_status = 'resolved'
    GROUP BY ALL
),
regressed AS (
    SELECT source, project_id, release, count(DISTINCT issue_id) AS n FROM regressions WHERE release IS NOT NULL
    GROUP BY ALL
),
per_user AS (  -- events per release and user: one pass gives both the events and the distinct users
    SELECT e.source, e.project_id, e.release, e.user_key, count(*) AS events
    FROM live_events e
    SEMI JOIN needed n ON n.source = e.source AND n.project_id = e.project_id AND n.release = e.release
    WHERE e.release IS NOT NULL GROUP BY ALL
),
ev AS (
    SELECT source, project_id, release, sum(events)::BIGINT AS events, count(user_key) AS users
    FROM per_user GROUP BY ALL
),
per_release AS (
    SELECT o.source, o.project_id, o.release, o.previous_release, o.date_created, o.date_released, o.new_groups,
           coalesce(n.n, 0) AS new_issues, coalesce(g.n, 0) AS regressed_issues,
           coalesce(ev.events, 0) AS events, coalesce(ev.users, 0) AS affected_users
    FROM ordered o
    SEMI JOIN needed USING (source, project_id, release)
    LEFT JOIN new_issues n ON n.source = o.source AND n.project_id = o.project_id AND n.release = o.release
    LEFT JOIN regressed g ON g.source = o.source AND g.project_id = o.project_id AND g.release = o.release
    LEFT JOIN ev ON ev.source = o.source AND ev.project_id = o.project_id AND ev.release = o.release
)
SELECT r.source, p.slug AS project, r.project_id, r.release, r.date_created, r.date_released,
       r.new_issues, r.new_groups AS sentry_new_groups, r.regressed_issues, r.events, r.affected_users,
       r.previous_release, prev.new_issues AS previous_new_issues,
       prev.regressed_issues AS previous_regressed_issues, prev.events AS previous_events,
       prev.affected_users AS previous_affected_users,
       r.events - coalesce(prev.events, 0) AS events_change,
       r.affected_users - coalesce(prev.affected_users, 0) AS affected_users_change
FROM per_release r
SEMI JOIN shown USING (source, project_id, release)
LEFT JOIN per_release prev ON prev.source = r.source AND prev.project_id = r.project_id AND prev.release = r.previous_release
LEFT JOIN projects p ON p.source = r.source AND p.id = r.project_id;

CREATE OR REPLACE VIEW release_regressions AS
SELECT * FROM release_regressions_for(NULL, NULL, NULL, NULL, NULL);
