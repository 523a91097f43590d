-- name: 004_sync_run_figures
-- What each sync did, per run and per stream, for `status` and `sync --json` the morning after.
ALTER TABLE _sync_runs ADD COLUMN rate_limited INTEGER;   -- 429 answers met (and waited out)
ALTER TABLE _sync_runs ADD COLUMN seconds DOUBLE;
ALTER TABLE _sync_runs ADD COLUMN streams JSON;           -- {"issues": {"rows": {...}, "requests": 3, ...}, ...}
