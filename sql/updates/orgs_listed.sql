-- name: orgs_listed
-- A source with `org = "*"` listed its token's organizations ($ids): the organizations of its
-- sources (`$parent/<slug>`) no longer listed are marked gone, never deleted; those listed again
-- are not gone any more.
UPDATE organizations SET gone_at = $observed_at
WHERE starts_with(source, $parent || '/') AND id NOT IN (SELECT unnest($ids::VARCHAR[])) AND gone_at IS NULL;
UPDATE organizations SET gone_at = NULL
WHERE starts_with(source, $parent || '/') AND id IN (SELECT unnest($ids::VARCHAR[])) AND gone_at IS NOT NULL;
