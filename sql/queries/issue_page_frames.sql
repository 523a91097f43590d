-- name: issue_page_frames
-- An event's stack frames per exception, in Sentry's order (the innermost call last).
SELECT exception_idx, idx, function, module, filename, abs_path, line_no, col_no, in_app
FROM event_frames WHERE source = $source AND event_id = $event_id
ORDER BY exception_idx, idx;
