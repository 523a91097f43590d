-- name: 010_org_gone
-- `organizations.gone_at`: when an organization stopped being listed by `GET /api/0/organizations/`
-- for a source that mirrors every organization its token sees (`org = "*"`): it was deleted, or
-- the token lost it. Its rows are kept, never deleted; NULL while it is listed (set back to NULL
-- when it is listed again).
ALTER TABLE organizations ADD COLUMN gone_at TIMESTAMP;
