"""sentry-mirror: keep a Sentry organization's error data in one local DuckDB file."""

__version__ = "0.1.0"
