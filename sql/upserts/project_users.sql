-- name: project_users
-- Upsert a project's users (`ctx.project_id`), keyed as Sentry keys them: by tagValue.
INSERT INTO project_users
SELECT $source, ctx->>'project_id', j->>'tagValue', j->>'id', j->>'identifier', j->>'username', j->>'email',
       j->>'name', j->>'ipAddress', iso_ts(j->>'dateCreated'), j, $synced_at
FROM _page
WHERE j->>'tagValue' IS NOT NULL
ON CONFLICT (source, project_id, tag_value) DO UPDATE SET
    id = excluded.id, identifier = excluded.identifier, username = excluded.username, email = excluded.email,
    name = excluded.name, ip_address = excluded.ip_address, date_created = excluded.date_created,
    raw = excluded.raw, synced_at = excluded.synced_at
WHERE project_users.raw IS DISTINCT FROM excluded.raw;
