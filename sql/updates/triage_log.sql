-- name: triage_log
-- One request `triage` sent and what Sentry answered (see migration 007). Never the token.
INSERT INTO triage_log (sent_at, source, action, issue_ids, method, path, body, status_code, answer, applied)
VALUES ($sent_at, $source, $action, $ids::VARCHAR[], $method, $path, $body::JSON, $status_code, $answer::JSON, $applied);
