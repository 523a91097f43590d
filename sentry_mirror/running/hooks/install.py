"""Service hooks in Sentry: create one for a project (its secret kept in the secrets file, never
shown), list them (never with their secrets), remove one.
"""

from __future__ import annotations

import os
from urllib.parse import quote, urlsplit

from ...errors import ConfigError
from ...fetching.client import SentryClient
from .secrets import HookSecrets

EVENTS = ("event.created", "event.alert")
SHOWN = ("id", "url", "events", "status", "dateCreated")  # what `hooks list` tells; never `secret`


def hooks_path(org: str, project: str) -> str:
    return f"projects/{quote(org, safe='')}/{quote(project, safe='')}/hooks/"


def check_install(url: str, events: list[str], secret_env: str | None = None) -> None:
    from ..config import SOURCE_RULES

    if secret_env is not None and not SOURCE_RULES["token_env"][0](secret_env):
        raise ConfigError(f"--secret-env must be {SOURCE_RULES['token_env'][1]}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"--url {url!r} is not an http(s) URL", hint="the public URL Sentry will POST to")
    bad = [e for e in events if e not in EVENTS]
    if bad or not events:
        raise ConfigError(f"unknown hook event {bad[0] if bad else '(none)'}", hint=f"choose from {', '.join(EVENTS)}")


def install(client: SentryClient, org: str, project: str, url: str, events: list[str], secrets: HookSecrets,
            *, source: str, secret_env: str | None = None) -> dict:
    """Create the hook; keep its secret (or, with `secret_env`, the variable's name) keyed by its GUID.
    Returns the hook without its secret."""
    hook, _ = client.request("POST", hooks_path(org, project), json_body={"url": url, "events": events},
                             scope="project:write")
    if not isinstance(hook, dict) or not hook.get("id") or not hook.get("secret"):
        raise ConfigError("Sentry created the hook but its answer holds no id or secret",
                          hint="remove it in Sentry's project settings and try again")
    if secret_env:
        secrets.add_hook_env(hook["id"], secret_env, source=source, project=project, url=url)
    else:
        secrets.add_hook(hook["id"], hook["secret"], source=source, project=project, url=url)
    return shown(hook)


def same_url(client: SentryClient, org: str, project: str, url: str) -> list[str]:
    """The project's hooks that already send to this URL: a second would deliver every event twice."""
    return [h["id"] for h in list_hooks(client, org, [project]) if h.get("url") == url]


def list_hooks(client: SentryClient, org: str, projects: list[str]) -> list[dict]:
    rows = []
    for project in projects:
        for page in client.paginate(hooks_path(org, project)):
            rows += [{"project": project, **shown(h)} for h in page.items]
    return rows


def remove(client: SentryClient, org: str, project: str, hook_id: str, secrets: HookSecrets) -> bool:
    """Delete the hook in Sentry and forget its secret; whether the secrets file had it."""
    client.request("DELETE", hooks_path(org, project) + f"{quote(hook_id, safe='')}/", scope="project:write")
    return secrets.remove_hook(hook_id)


def secret_here(entry: dict | None) -> str:
    """What the secrets file holds for a hook, for `hooks list`: whether the receiver can check its
    deliveries (never the secret itself)."""
    if not isinstance(entry, dict):
        return "no"
    if entry.get("secret"):
        return "yes"
    name = entry.get("secret_env")
    if name:
        return f"${name}" + ("" if os.environ.get(name) else " (unset)")
    return "no"


def shown(hook: dict) -> dict:
    return {k: hook.get(k) for k in SHOWN}
