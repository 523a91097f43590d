"""The project's exception types.

Every error a user can cause or meet (bad token, unknown org, broken config, a server answering
garbage, a locked store) is a `MirrorError`: the CLI prints its message on one line and exits
non-zero, with no traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from .redact import scrub  # an error's text goes to terminals, logs, --json and _sync_runs: never a token

# `sync` exit status when some streams failed after their retries and the others were stored.
PARTIAL_EXIT = 6


class MirrorError(Exception):
    """Base class: a failure the user can act on. `hint` says what to do about it."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return scrub(f"{self.message} ({self.hint})" if self.hint else self.message)


class ConfigError(MirrorError):
    """Missing or malformed configuration, flags or filters."""

    exit_code = 2


class BindingError(ConfigError):
    """A source pointed at another server or organization than the one it mirrors (syncing/syncer.py)."""


class NothingToMirror(MirrorError):
    """A source of `org = "*"` met an organization with none of the projects it names: that
    organization is skipped, not failed."""


class StoreError(MirrorError):
    """The DuckDB store cannot be opened, migrated or written."""

    exit_code = 3
    out_of_memory = False  # a write that DuckDB's memory limit stopped: may pass in smaller slices


class ApiError(MirrorError):
    """Sentry answered with an error status, or with something that is not the JSON it promised.

    Carries the HTTP status (0 when no response arrived) and the server's own message.
    """

    exit_code = 4

    def __init__(self, status: int, message: str, url: str = "", hint: str | None = None, json_body: bool = True):
        super().__init__(message, hint)
        self.status = status
        self.url = url
        self.json_body = json_body  # False when the server answered an HTML page or plain text

    def __str__(self) -> str:
        where = f" for {self.url}" if self.url else ""
        head = f"Sentry answered {self.status}{where}: {self.message}" if self.status else f"{self.message}{where}"
        return scrub(f"{head} ({self.hint})" if self.hint else head)


class AuthError(ApiError):
    """401/403: the token is wrong, revoked or lacks a scope."""

    exit_code = 5


class NotFoundError(ApiError):
    """404: an organization, project or issue that the server does not know."""


class Interrupted(MirrorError):
    """The sync was asked to stop (SIGTERM/SIGINT) and checkpointed the page in hand."""

    exit_code = 130

    @classmethod
    def stopped(cls) -> "Interrupted":
        return cls("sync interrupted; the last page was stored and the next sync resumes from it")


class SearchError(ConfigError):
    """A search query that does not parse or names what the store cannot answer; the parser puts
    the column (1-based) and, for an unknown key, the nearest valid key in the message."""

    def __init__(self, message: str, column: int | None = None, hint: str | None = None):
        super().__init__(message, hint)
        self.column = column
