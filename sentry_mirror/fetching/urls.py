"""A Sentry server's address, as the user gives it and as the mirror shows or keeps it.

Below the HTTP client and the configuration both, so that checking a config's `url` needs no HTTP
library.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

from ..errors import ConfigError


def normalise_base_url(url: str) -> str:
    """Accept `https://sentry.io`, `https://sentry.io/`, or `…/api/0/`; return `…/api/0`."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        if parts.port == 0:  # `:0` is no port a server listens on (requests would try the scheme's own)
            raise ValueError
    except ValueError:
        raise ConfigError(f"not a valid URL: {url!r}", hint="pass --url like https://sentry.io") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise ConfigError(f"not an http(s) URL: {url!r}", hint="pass --url like https://sentry.io")
    path = parts.path.rstrip("/")
    if path.endswith("/api/0"):
        path = path[: -len("/api/0")]
    return f"{parts.scheme}://{parts.netloc}{path}/api/0"


def host_as_url(value: str) -> str:
    """`SENTRY_HOST` as sentry-cli's environment gives it, a bare host (`sentry.io`), means https://
    that host; a value with a scheme is a URL already and is kept."""
    value = (value or "").strip()
    return value if "://" in value else f"https://{value}"


def display_url(url: str) -> str:
    """A URL fit to show and to keep: scheme, host, port (unless the scheme's own) and path; no
    query string (filters can be long), never credentials."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port and parts.port != default else "")
    return f"{parts.scheme}://{host}{parts.path}"


def may_follow_region(here: SplitResult, there: SplitResult) -> bool:
    """Whether a token may follow an organization's `links.regionUrl` from `here` to `there`: on
    its own server (scheme, host and port), or between https hosts of sentry.io (no port); never
    where a server's answer points elsewhere."""
    if (here.scheme, here.hostname, here.port) == (there.scheme, there.hostname, there.port):
        return True
    on_sentry_io = all(h == "sentry.io" or h.endswith(".sentry.io") for h in (here.hostname or "", there.hostname or ""))
    return on_sentry_io and here.scheme == there.scheme == "https" and not there.port
