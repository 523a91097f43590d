-- name: 006_user_key
-- `events.user_key`: who an event's user is, as Sentry counts users. Sentry counts distinct values
-- of the event's `sentry:user` tag (`user` in the API's tags: "id:42", "email:…", "username:…",
-- "ip:…"; TSDBModel.users_affected_by_group reads tags[sentry:user]), not the user id alone:
-- counting ids left out every user an SDK knew only by IP address or email. Without the tag, the
-- first of id, username, email and IP address, in the order Sentry's docs list them (the server's
-- own fallback order is UNCONFIRMED).
ALTER TABLE events ADD COLUMN user_key VARCHAR;
UPDATE events SET user_key = t.value
FROM event_tags t
WHERE t.source = events.source AND t.event_id = events.event_id AND t.key = 'user' AND t.value IS NOT NULL;
UPDATE events SET user_key = coalesce('id:' || user_id, 'username:' || user_username, 'email:' || user_email,
                                      'ip:' || user_ip)
WHERE user_key IS NULL;
