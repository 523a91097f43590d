"""Keep tokens out of everything the tool writes: logs, error messages, status output.

Every secret the process learns is registered here once; `scrub` replaces any occurrence with a
masked form, and `install_log_filter` applies it to every log record.
"""

from __future__ import annotations

import base64
import logging
import re
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


_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_TOKEN = re.compile(r"\b(?:Bearer|Basic|DSN|Token)\s+[^\s*]{8,}|\bsntr[a-z]*_[\w.=+/-]{8,}|"
                    r"\b(?=[\w+=-]*\d)[A-Za-z0-9_+=-]{40,}")


def mask_personal(text: str) -> str:
    """Emails, IP addresses and anything shaped like a token, masked: for text a server sent that
    we quote in an error (an error page, a broken body), which ends up in _sync_runs and `status`."""
    if not text:
        return text
    text = _TOKEN.sub("<token>", scrub(text))
    text = _EMAIL.sub("<email>", text)
    text = _IPV4.sub("<ip>", text)
    # IPv6 needs "::" or the full eight groups: a time of day (12:30:45) has the same letters
    return _IPV6.sub(lambda m: "<ip>" if "::" in m[0] or m[0].count(":") == 7 else m[0], text)


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
