"""Reading a store without a network: the reports, status, ad-hoc queries, the issue list, Parquet export. Read-only connections only."""
