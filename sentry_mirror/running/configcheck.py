"""What `config check` prints: the settings in effect and where each came from (secrets masked),
and with `--online` what each source's token can see."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterator

from .. import redact
from ..errors import MirrorError
from .allorgs import list_organizations
from .config import ALL_ORGS, SOURCE_RULES, Config, Source


def mask(secret: str | None) -> str:
    """Enough to tell two tokens apart, never enough to use one."""
    if not secret:
        return "(none)"
    if len(secret) < 16:
        return "****"
    prefix = secret.split("_", 1)[0] + "_" if secret.startswith(("sntryu_", "sntrys_")) else ""
    return f"{prefix}…{secret[-4:]}"


def _row(name: str, value: object, origin: str) -> str:
    return f"  {name:<16} {str(value):<40} ({origin})"


def describe(config: Config) -> str:
    lines = [f"config file: {config.path}" if config.path else
             "config file: none (flags, environment variables, the nearest .sentryclirc and ~/.sentryclirc)"]
    lines.append(_row("db", config.db, config.origins.get("db", "default")).lstrip())
    lines.append(schedule_line(config))
    for source in config.sources:
        lines.append(f"source {source.name}:")
        lines.extend(source_rows(source))
    return "\n".join(lines)


def schedule_line(config: Config) -> str:
    schedule = config.schedule
    if not schedule:
        return "schedule: none (run 'sentry-mirror sync' from cron, or 'schedule --cron')"
    from .scheduler import make_trigger

    trigger = make_trigger(schedule.get("cron"), schedule.get("every_minutes"), schedule.get("timezone"))
    upcoming = trigger.get_next_fire_time(None, datetime.now(timezone.utc))
    what = f"cron '{schedule['cron']}'" if "cron" in schedule else f"every {schedule['every_minutes']} minutes"
    return f"schedule: {what} in {schedule.get('timezone', 'UTC')}; next run {upcoming:%Y-%m-%d %H:%M %Z} (file)"


def source_rows(source: Source) -> list[str]:
    rows = [_row("url", redact.scrub(source.url), source.origins.get("url", "default")),  # user:password@
            _row("org", _org_shown(source), source.origins.get("org", "file")),
            _row("token", mask(source.token), source.origins.get("token", "?"))]
    for key in SOURCE_RULES:
        if key in ("url", "org", "name", "token_env"):
            continue
        value = getattr(source, key)
        if key == "headers":  # those of headers_env have their own row, never with their value
            value = {name: mask(v) for name, v in value.items() if name not in source.headers_env} or "{}"
        elif key == "headers_env":
            value = {name: f"from env {variable}" for name, variable in value.items()} or "{}"
        rows.append(_row(key, value, source.origins.get(key, "default")))
    return rows


def _org_shown(source: Source) -> str:
    if source.org != ALL_ORGS:
        return source.org
    return (f"* (every organization the token sees, each synced as source {source.name}/<slug> "
            "at its region; one no longer listed is kept and marked gone)")


def online_check(config: Config) -> Iterator[tuple[str, bool]]:
    """One authenticated request per source (two small GETs): (line, all well?)."""
    from .runner import client_for

    for source in config.sources:
        client = client_for(source)
        client.max_retries = 1
        client.retry_budget = 5.0  # a check answers in seconds, rate limited or not
        try:
            root, _ = client.get("")
            scopes = sorted(((root or {}).get("auth") or {}).get("scopes") or [])
            slugs = sorted(o["slug"] for o in list_organizations(client))  # every page: a token may see hundreds
        except MirrorError as exc:
            yield f"{source.name}: {exc}", False
            continue
        finally:
            client.close()
        yield (f"{source.name}: token scopes {', '.join(scopes) or '(not reported)'}; "
               f"sees organizations {', '.join(slugs) or '(none)'}"), True
        missing = {"org:read", "project:read", "event:read"} - set(scopes)
        if scopes and missing:
            yield f"{source.name}: the token lacks {', '.join(sorted(missing))}", False
        if source.org == ALL_ORGS:
            yield f"{source.name}: org = \"*\" mirrors {', '.join(f'{source.name}/{s}' for s in slugs) or 'nothing'}", True
        elif source.org not in slugs:
            yield f"{source.name}: the token does not see organization '{source.org}'", False
