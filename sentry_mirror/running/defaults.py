"""The settings every command shares, and the store's path: here, apart from config.py, so that a
reading command works out its store without loading the config machinery (start-up time)."""

from __future__ import annotations

import os
from typing import Any

DEFAULT_URL = "https://sentry.io"
DEFAULT_DB = "sentry.duckdb"
TOKEN_ENV_VARS = ("SENTRY_AUTH_TOKEN", "SENTRY_TOKEN")
URL_ENV_VARS = ("SENTRY_URL", "SENTRY_HOST")
ORG_ENV_VARS = ("SENTRY_ORG",)


def store_path(db: str | None, data: dict[str, Any]) -> str:
    """The store file: --db (or SENTRY_MIRROR_DB), else the config file's `db`, else the default.
    The one place that says so, for the writer and the readers alike."""
    return db or file_db(data) or DEFAULT_DB


def file_db(data: dict[str, Any]) -> str | None:
    """The config file's store path, ~ expanded."""
    return os.path.expanduser(data["db"]) if data.get("db") else None
