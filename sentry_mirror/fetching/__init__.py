"""Fetching: the HTTP client (retries, pacing, pagination), raw pages, the endpoints described as data, server URLs. Knows nothing of the store."""
