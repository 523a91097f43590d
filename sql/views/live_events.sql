-- name: live_events
-- requires: events, issues
-- The stored events of issues that still exist in Sentry: what every event count and user count in
-- the other views reads. When an issue is deleted in Sentry its events go with it, and Sentry's
-- own figures drop them; the mirror keeps them (in `events`, beside the issue marked deleted), but
-- counting them would make the mirror's trends and user counts disagree with Sentry's for the
-- same days. Events aged out of Sentry's retention are not deleted and stay counted.
-- Grain: one row per event, the columns of `events`.
CREATE OR REPLACE VIEW live_events AS
SELECT e.*
FROM events e
WHERE NOT EXISTS (SELECT 1 FROM issues i
                  WHERE i.source = e.source AND i.id = e.issue_id AND i.deleted_at IS NOT NULL);
