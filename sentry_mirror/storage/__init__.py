"""The store: one DuckDB file, its migrations, upserts and planning queries (the SQL under sql/), its sync state, its locks and the files it keeps beside it."""
