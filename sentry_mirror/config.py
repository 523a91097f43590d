"""Where a sync's settings come from: flags, then environment variables, then the config file,
then `~/.sentryclirc` (sentry-cli's file), then defaults.

Tokens are never stored in our config file itself: a source names the environment variable that
holds its token (`token_env`), so the file can be committed or shared safely.
"""

from __future__ import annotations

import configparser
import logging
import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import redact
from .errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_URL = "https://sentry.io"
DEFAULT_DB = "sentry.duckdb"
TOKEN_ENV_VARS = ("SENTRY_AUTH_TOKEN", "SENTRY_TOKEN")
URL_ENV_VARS = ("SENTRY_URL", "SENTRY_HOST")
ORG_ENV_VARS = ("SENTRY_ORG",)

SOURCE_KEYS = {"name", "url", "org", "token_env", "auth", "verify", "headers", "timeout", "overlap_minutes", "events",
               "events_sample", "project_events", "concurrency"}
TOP_KEYS = {"db", "sources", "schedule"}
AUTH_SCHEMES = {"bearer", "basic", "dsn"}
EVENT_POLICIES = {"all", "sample", "none"}


@dataclass
class Source:
    name: str
    url: str
    org: str
    token: str | None = field(default=None, repr=False)
    auth: str = "bearer"
    verify: bool | str = True
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    timeout: float = 30.0
    overlap_minutes: float = 10.0
    events: str = "all"
    events_sample: int = 10
    project_events: dict[str, str] = field(default_factory=dict)
    concurrency: int = 4


@dataclass
class Config:
    db: str = DEFAULT_DB
    sources: list[Source] = field(default_factory=list)
    schedule: dict[str, Any] = field(default_factory=dict)


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {path} does not exist", hint="see config.example.toml")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(sorted(unknown))}",
                          hint=f"known top-level settings: {', '.join(sorted(TOP_KEYS))}")
    _warn_if_exposed(p, data)
    return data


def _warn_if_exposed(path: Path, data: dict[str, Any]) -> None:
    """A file holding a secret (proxy headers here, a token in .sentryclirc) should not be readable by all."""
    sources = data.get("sources") if isinstance(data.get("sources"), list) else []
    holds_secret = "token" in data.get("auth", {}) if "auth" in data else any(
        isinstance(s, dict) and s.get("headers") for s in sources)
    warn_if_world_readable(path, holds_secret)


def warn_if_world_readable(path: Path, holds_secret: bool) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if holds_secret and mode & stat.S_IROTH:
        log.warning("%s holds a secret and is readable by every user on this machine; run: chmod 600 %s", path, path)


def sentryclirc() -> dict[str, str]:
    """sentry-cli's `~/.sentryclirc`: [auth] token, [defaults] url and org."""
    path = Path(os.environ.get("SENTRYCLIRC", Path.home() / ".sentryclirc"))
    if not path.is_file():
        return {}
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        log.warning("ignoring unreadable %s", path)
        return {}
    found = {}
    if parser.has_option("auth", "token"):
        found["token"] = parser.get("auth", "token")
        warn_if_world_readable(path, True)
    for key in ("url", "org"):
        if parser.has_option("defaults", key):
            found[key] = parser.get("defaults", key)
    return found


def _env(names: tuple[str, ...]) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def resolve(*, config_path: str | None, url: str | None, org: str | None, token: str | None,
            db: str | None, source_names: tuple[str, ...] = ()) -> Config:
    """Build the effective configuration; flags win over everything else."""
    data = load_config_file(config_path) if config_path else {}
    cli_rc = sentryclirc()
    if not isinstance(data.get("db", ""), str):
        raise ConfigError("config: db must be a file path (a string)")
    schedule = data.get("schedule") or {}
    if not isinstance(schedule, dict) or set(schedule) - {"cron", "every_minutes"}:
        raise ConfigError("config: [schedule] takes cron = '0 3 * * *' or every_minutes = 60")
    if "cron" in schedule and not isinstance(schedule["cron"], str):
        raise ConfigError("config: schedule.cron must be a crontab line in quotes, e.g. '0 3 * * *'")
    if "every_minutes" in schedule and (not isinstance(schedule["every_minutes"], (int, float))
                                        or isinstance(schedule["every_minutes"], bool)):
        raise ConfigError("config: schedule.every_minutes must be a number of minutes")
    config = Config(db=db or data.get("db") or DEFAULT_DB, schedule=dict(schedule))

    raw_sources = data.get("sources") or []
    if not isinstance(raw_sources, list):
        raise ConfigError("config: 'sources' must be a list of [[sources]] tables")
    if raw_sources and not (url or org):
        for i, raw in enumerate(raw_sources):
            config.sources.append(_source_from_table(raw, i, token))
        if source_names:
            wanted = set(source_names)
            missing = wanted - {s.name for s in config.sources}
            if missing:
                raise ConfigError(f"no source named {', '.join(sorted(missing))} in the config",
                                  hint=f"known: {', '.join(s.name for s in config.sources)}")
            config.sources = [s for s in config.sources if s.name in wanted]
    else:
        resolved_org = org or _env(ORG_ENV_VARS) or cli_rc.get("org")
        if not resolved_org:
            raise ConfigError("no organization given", hint="pass --org or set SENTRY_ORG")
        resolved_token = token or _env(TOKEN_ENV_VARS) or cli_rc.get("token")
        if not resolved_token:
            raise ConfigError("no auth token given",
                              hint="set SENTRY_AUTH_TOKEN (a token with org:read, project:read, event:read)")
        config.sources.append(Source(name=resolved_org, url=url or _env(URL_ENV_VARS) or cli_rc.get("url") or DEFAULT_URL,
                                     org=resolved_org, token=resolved_token))
    for source in config.sources:
        source.token = _clean_secret(source.token, f"the token for {source.name}")
        for name, value in source.headers.items():
            _clean_secret(value, f"header {name} of {source.name}")
        redact.register(source.token)
        from .client import normalise_base_url

        normalise_base_url(source.url)  # a bad URL is a config error now, before any store is touched
    return config


def _clean_secret(value: str | None, what: str) -> str | None:
    """Tokens pasted with a newline are common; control characters inside one are not usable."""
    if value is None:
        return None
    value = value.strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in value) or not value.isascii():
        redact.register(value)
        raise ConfigError(f"{what} contains control or non-ASCII characters", hint="check how it was copied")
    return value


def _source_from_table(raw: Any, index: int, flag_token: str | None) -> Source:
    where = f"config: sources[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(raw) - SOURCE_KEYS
    if "token" in raw:
        raise ConfigError(f"{where}: do not put tokens in the config file",
                          hint="set token_env to the name of an environment variable holding it")
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}",
                          hint=f"known: {', '.join(sorted(SOURCE_KEYS))}")
    org = raw.get("org")
    if not isinstance(org, str) or not org:
        raise ConfigError(f"{where}: 'org' (the organization slug) is required")
    token_env = raw.get("token_env")
    token = flag_token
    if token is None and token_env:
        token = os.environ.get(str(token_env))
        if not token:
            raise ConfigError(f"{where}: environment variable {token_env} is not set", hint="export it with the token")
    if token is None:
        token = _env(TOKEN_ENV_VARS) or sentryclirc().get("token")
    if not token:
        raise ConfigError(f"{where}: no token", hint="set token_env, or SENTRY_AUTH_TOKEN")
    auth = raw.get("auth", "bearer")
    if auth not in AUTH_SCHEMES:
        raise ConfigError(f"{where}: auth must be one of {', '.join(sorted(AUTH_SCHEMES))}, not {auth!r}")
    events = raw.get("events", "all")
    if events not in EVENT_POLICIES:
        raise ConfigError(f"{where}: events must be one of {', '.join(sorted(EVENT_POLICIES))}, not {events!r}")
    project_events = raw.get("project_events", {})
    if not isinstance(project_events, dict) or not all(v in EVENT_POLICIES for v in project_events.values()):
        raise ConfigError(f"{where}: project_events must map project slugs to one of {', '.join(sorted(EVENT_POLICIES))}")
    sample = raw.get("events_sample", 10)
    if not isinstance(sample, int) or isinstance(sample, bool) or not 1 <= sample <= 100:
        raise ConfigError(f"{where}: events_sample must be a whole number from 1 to 100")
    concurrency = raw.get("concurrency", 4)
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or not 1 <= concurrency <= 32:
        raise ConfigError(f"{where}: concurrency must be a whole number from 1 to 32")
    headers = raw.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ConfigError(f"{where}: headers must be a table of strings")
    verify = raw.get("verify", True)
    if not isinstance(verify, (bool, str)):
        raise ConfigError(f"{where}: verify must be true, false, or a CA bundle path")
    for key, low, high in (("timeout", 0.1, 3600), ("overlap_minutes", 0, 7 * 24 * 60)):
        value = raw.get(key)
        if key in raw and (not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high):
            raise ConfigError(f"{where}: {key} must be a number from {low} to {high}")
    return Source(name=str(raw.get("name") or org), url=str(raw.get("url") or DEFAULT_URL), org=org, token=token,
                  auth=auth, verify=verify, headers=dict(headers), timeout=float(raw.get("timeout", 30.0)),
                  overlap_minutes=float(raw.get("overlap_minutes", 10.0)), events=events,
                  events_sample=sample, project_events=dict(project_events), concurrency=concurrency)
