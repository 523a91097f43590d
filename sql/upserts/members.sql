-- name: members
-- Upsert the organization's members, pending invites included.
INSERT INTO members
SELECT $source, j->>'id', j->>'email', j->>'name', coalesce(j->>'orgRole', j->>'role'),
       TRY_CAST(j->>'pending' AS BOOLEAN), TRY_CAST(j->>'expired' AS BOOLEAN),
       CASE WHEN json_type(j->'user') = 'OBJECT' THEN j->'user'->>'id' END,
       iso_ts(j->>'dateCreated'), j, $synced_at
FROM _page
ON CONFLICT (source, id) DO UPDATE SET
    email = excluded.email, name = excluded.name, role = excluded.role, pending = excluded.pending,
    expired = excluded.expired, user_id = excluded.user_id, date_created = excluded.date_created,
    raw = excluded.raw, synced_at = excluded.synced_at
WHERE members.raw IS DISTINCT FROM excluded.raw;
