-- name: 006_user_key
-- `events.user_key`: who an event's user is, as Sentry counts users. Sentry counts distinct values
-- of the event's `sentry:user` tag (`user` in the API's tags: "id:42", "username:…", "email:…",
-- "ip:…"; TSDBModel.users_affected_by_group reads tags[sentry:user]), not the user id alone:
-- counting ids left out every user an SDK knew only by IP address or email. New events take the
-- tag (sql/upserts/events.sql). Stored events take what Sentry derives the tag from, the first of
-- id, username, email and IP address, in the order Sentry's docs list them (the server's own order
-- is UNCONFIRMED): from the typed columns, because joining the tags of ten million events ran out
-- of the writer's memory (128 MB), while this update takes 3 s and 206 MB there.
ALTER TABLE events ADD COLUMN user_key VARCHAR;
UPDATE events SET user_key = coalesce('id:' || user_id, 'username:' || user_username, 'email:' || user_email,
                                      'ip:' || user_ip)
WHERE user_id IS NOT NULL OR user_username IS NOT NULL OR user_email IS NOT NULL OR user_ip IS NOT NULL;
