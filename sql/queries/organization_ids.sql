-- name: organization_ids
-- The organization ids stored under a source: what a store from before sources were bound is bound to.
SELECT id FROM organizations WHERE source = $source ORDER BY id;
