"""Keep tokens out of everything the tool writes: logs, error messages, status output.

Every secret the process learns is registered here once; `scrub` replaces any occurrence with a
masked form, and `install_log_filter` applies it to every log record.
"""

from __future__ import annotations

import base64
import logging
import threading

_secrets: set[str] = set()
_lock = threading.Lock()


def register(secret: str | None) -> None:
    if secret and len(secret) >= 4:
        with _lock:
            _secrets.add(secret)


def register_token(token: str | None) -> None:
    """A token, and the forms it travels in: its legacy Basic header (base64 of `token:`), and the
    bare token when it was pasted with its scheme (`Bearer sntryu_...`)."""
    if not token:
        return
    register(token)
    register(base64.b64encode(f"{token}:".encode()).decode())
    for part in token.split():
        if len(part) >= 8:
            register(part)


def mask(secret: str) -> str:
    """A recognisable but useless form: the prefix Sentry uses for the token kind and the length."""
    prefix = secret[:7] if secret.startswith(("sntrys_", "sntryu_")) else ""
    return f"{prefix}***({len(secret)} chars)"


def scrub(text: str) -> str:
    if not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, mask(secret))
    return text


class _ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_filter(logger: logging.Logger | None = None) -> None:
    target = logger or logging.getLogger()
    if not any(isinstance(f, _ScrubFilter) for f in target.filters):
        target.addFilter(_ScrubFilter())
    for handler in target.handlers:
        if not any(isinstance(f, _ScrubFilter) for f in handler.filters):
            handler.addFilter(_ScrubFilter())
