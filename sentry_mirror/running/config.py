"""Where a sync's settings come from: flags, then environment variables, then the config file,
then sentry-cli's files (the `.sentryclirc` nearest the working directory, then `~/.sentryclirc`),
then defaults.

Tokens are never stored in our config file itself: a source names the environment variable that
holds its token (`token_env`), so the file can be committed or shared safely.
"""

from __future__ import annotations

import configparser
import contextlib
import difflib
import logging
import os
import re
import stat
import tomllib
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from .. import redact
from ..errors import ConfigError
from ..fetching.endpoints import CADENCES

log = logging.getLogger(__name__)

# The shared settings and the store's path live in defaults.py; named here too, as config's.
from .defaults import (  # noqa: E402,F401
    DEFAULT_DB,
    DEFAULT_URL,
    ORG_ENV_VARS,
    TOKEN_ENV_VARS,
    URL_ENV_VARS,
    store_path,
)

AUTH_SCHEMES = {"bearer", "basic", "dsn"}
ALL_ORGS = "*"  # `org = "*"`: every organization the token sees, each its own source (running/allorgs.py)
EVENT_POLICIES = {"all", "sample", "none"}


def _number(low: float, high: float) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high


def _whole(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _url_ok(value: Any) -> bool:
    from ..fetching.urls import normalise_base_url

    try:
        normalise_base_url(value if isinstance(value, str) else "")
        return True
    except ConfigError:
        return False


def _cron_ok(value: Any) -> bool:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(value, timezone="UTC")
        return True
    except (ValueError, TypeError):
        return False


def _timezone_ok(value: Any) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
        return True
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return False


_TEXT = (lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty string")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110's token
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Every setting of the file: key -> (is it valid?, what it must be). The one place they are checked.
SOURCE_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "name": _TEXT,
    "url": (_url_ok, "an http(s) URL such as https://sentry.io"),
    "org": (_TEXT[0], "the organization slug (a string), or \"*\" for every organization the token sees"),
    "token_env": (lambda v: isinstance(v, str) and v.replace("_", "a").isalnum() and not looks_like_token(v),
                  "the name of an environment variable, e.g. SENTRY_AUTH_TOKEN"),
    "auth": (lambda v: v in AUTH_SCHEMES, "one of " + ", ".join(sorted(AUTH_SCHEMES))),
    "verify": (lambda v: isinstance(v, (bool, str)), "true, false, or a CA bundle path"),
    "headers": (lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
                and all(_HEADER_NAME.fullmatch(k) for k in v),
                "a table of strings whose keys are HTTP header names (letters, digits and -, no spaces)"),
    "headers_env": (lambda v: isinstance(v, dict) and all(_HEADER_NAME.fullmatch(k) for k in v)
                    and all(_ENV_NAME.fullmatch(x) if isinstance(x, str) else False for x in v.values()),
                    "a table of HTTP header names to environment variable names, e.g. "
                    "{ \"Maton-Connection\" = \"MATON_CONNECTION\" }"),
    "timeout": (_number(0.1, 3600), "a number from 0.1 to 3600"),
    "overlap_minutes": (_number(0, 7 * 24 * 60), "a number from 0 to 10080"),
    "events": (lambda v: v in EVENT_POLICIES, "one of " + ", ".join(sorted(EVENT_POLICIES))),
    "events_sample": (_whole(1, 100), "a whole number from 1 to 100"),
    "project_events": (lambda v: isinstance(v, dict) and all(x in EVENT_POLICIES for x in v.values()),
                       "a table mapping project slugs to one of " + ", ".join(sorted(EVENT_POLICIES))),
    "projects": (lambda v: isinstance(v, list) and bool(v) and all(isinstance(x, str) and x.strip() for x in v),
                 "a list of project slugs, e.g. [\"web\", \"api\"]"),
    "tag_keys": (lambda v: v == "all" or (isinstance(v, list) and bool(v) and all(isinstance(x, str) and x.strip()
                                                                               for x in v)),
                 "\"all\" or a list of tag keys, e.g. [\"environment\", \"release\"]"),
    "issue_hashes": (lambda v: isinstance(v, bool), "true or false"),
    "concurrency": (_whole(1, 32), "a whole number from 1 to 32"),
    "refresh_per_project": (_whole(0, 10**7), "a whole number (0 re-reads every known issue each sync)"),
    "refresh_with_hooks": (_whole(0, 10**7), "a whole number (0: as refresh_per_project)"),
    "refresh_hours": (lambda v: isinstance(v, dict) and all(k in CADENCES for k in v)
                      and all(_number(0, 24 * 365)(x) for x in v.values()),
                      "a table of hours (0 to 8760; 0: every sync) by stream: " + ", ".join(sorted(CADENCES))),
}
SCHEDULE_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "cron": (_cron_ok, "a crontab line in quotes with five fields, e.g. '0 3 * * *'"),
    "every_minutes": (_number(0.01, 10**6), "a positive number of minutes"),
    "timezone": (_timezone_ok, "an IANA time zone such as 'UTC' or 'Europe/Berlin'"),
}
TOP_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "db": _TEXT,
    "sources": (lambda v: isinstance(v, list), "a list of [[sources]] tables"),
    "schedule": (lambda v: isinstance(v, dict), "a [schedule] table"),
}
SOURCE_KEYS = set(SOURCE_RULES)
TOP_KEYS = set(TOP_RULES)


@dataclass
class Problem:
    """One thing wrong in a config file, where it is, and what to do."""

    message: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.message}" + (f" (line {self.line})" if self.line else "")


class KeyLines:
    """Where each key of a TOML file stands: tomllib gives values, not positions."""

    def __init__(self, text: str):
        self.lines: dict[tuple[str, int, str], int] = {}
        self.headers: dict[tuple[str, int], int] = {}
        table, index, counts = "", 0, {}
        for n, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            header = re.match(r"^\[\[\s*([\w.-]+)\s*\]\]", stripped) or re.match(r"^\[\s*([\w.-]+)\s*\]", stripped)
            if header:
                table = header.group(1)
                index = counts[table] = counts.get(table, -1) + 1 if stripped.startswith("[[") else 0
                self.headers[(table, index)] = n
                continue
            key = re.match(r"^([A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')\s*=", stripped)
            if key:
                self.lines.setdefault((table, index, key.group(1).strip("\"'")), n)

    def line(self, table: str, index: int, key: str | None = None) -> int | None:
        return self.headers.get((table, index)) if key is None else self.lines.get((table, index, key))


def _unknown(key: str, known: set[str], where: str, line: int | None) -> Problem:
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    hint = f"; did you mean `{close[0]}`?" if close else f"; known keys: {', '.join(sorted(known))}"
    return Problem(f"unknown key `{key}`{where}" + (f" on line {line}" if line else "") + hint)


def looks_like_token(value: str) -> bool:
    """A token pasted where the name of its variable belongs (`token_env = "sntryu_..."`)."""
    return value.startswith(("sntrys_", "sntryu_")) or (len(value) >= 32 and not value.isupper())


def _invalid(label: str, value: Any, rule: str, line: int | None) -> Problem:
    where = f" (line {line})" if line else ""
    if label.endswith(".token_env") and isinstance(value, str) and looks_like_token(value):
        redact.register(value)  # never echoed: it may be the token itself
        return Problem(f"{label} must be {rule}; it looks like a token itself{where}: put the token in that "
                       "variable, not in the file")
    shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return Problem(f"{label} must be {rule}, not {shown}{where}")


def check_config(data: dict[str, Any], text: str, *, flag_token: str | None = None) -> list[Problem]:
    """Every problem of a parsed config file, each naming its key, line and the nearest valid key."""
    where = KeyLines(text)
    problems = []
    for key, value in data.items():
        if key not in TOP_RULES:
            problems.append(_unknown(key, TOP_KEYS, "", where.line("", 0, key)))
        elif not TOP_RULES[key][0](value):
            problems.append(_invalid(key, value, TOP_RULES[key][1], where.line("", 0, key)))
    schedule = data.get("schedule") if isinstance(data.get("schedule"), dict) else {}
    for key, value in schedule.items():
        line = where.line("schedule", 0, key)
        if key not in SCHEDULE_RULES:
            problems.append(_unknown(key, set(SCHEDULE_RULES), " in [schedule]", line))
        elif not SCHEDULE_RULES[key][0](value):
            problems.append(_invalid(f"schedule.{key}", value, SCHEDULE_RULES[key][1], line))
    if "cron" in schedule and "every_minutes" in schedule:
        problems.append(Problem("[schedule] takes cron or every_minutes, not both", where.line("schedule", 0)))
    sources = data.get("sources") if isinstance(data.get("sources"), list) else []
    servers = _servers(sources)
    for i, raw in enumerate(sources):
        label = f"sources[{i}]"
        if not isinstance(raw, dict):
            problems.append(Problem(f"{label} must be a [[sources]] table", where.line("sources", i)))
            continue
        for key, value in raw.items():
            line = where.line("sources", i, key)
            if key == "token":
                problems.append(Problem(f"{label}: do not put tokens in the config file (line {line}); set "
                                        "token_env to the name of an environment variable holding it"))
            elif key not in SOURCE_RULES:
                problems.append(_unknown(key, SOURCE_KEYS, f" in {label}", line))
            elif not SOURCE_RULES[key][0](value):
                problems.append(_invalid(f"{label}.{key}", value, SOURCE_RULES[key][1], line))
        if not isinstance(raw.get("org"), str) or not raw.get("org"):
            if "org" not in raw:
                problems.append(Problem(f"{label}: 'org' (the organization slug) is required"
                                        + (f" (the table on line {where.line('sources', i)})" if where.line("sources", i) else "")))
        verify = raw.get("verify")
        if isinstance(verify, str) and not Path(verify).expanduser().exists():
            problems.append(Problem(f"{label}.verify: no CA bundle at {verify!r}; give true, false, or the path "
                                    "of a PEM file or a folder of certificates", where.line("sources", i, "verify")))
        name = source_name(raw) if raw.get("name") or raw.get("org") else None
        if isinstance(name, str) and name and name in names_of(sources[:i]):
            problems.append(Problem(f"{label}: another source is named {name!r} too; each needs its own name "
                                    "(its rows are tagged with it): set name", where.line("sources", i)))
        env_name = raw.get("token_env")
        if not env_name and len(servers) > 1:
            problems.append(Problem(f"{label}: no token_env, and the config names more than one server: set "
                                    "token_env for each source, so that no server is sent another's token "
                                    "(SENTRY_AUTH_TOKEN or ~/.sentryclirc would go to all of them)",
                                    where.line("sources", i)))
        problems.extend(_header_env_problems(raw, label, where.line("sources", i, "headers_env")))
        if flag_token is None and SOURCE_RULES["token_env"][0](env_name) and not os.environ.get(env_name):
            problems.append(Problem(f"{label}: environment variable {env_name} is not set "
                                    f"(line {where.line('sources', i, 'token_env')}); export it with the token"))
    return problems


def _header_env_problems(raw: dict, label: str, line: int | None) -> list[Problem]:
    """A header given in both tables (which value wins?), and a header whose variable is not set."""
    from_env = raw.get("headers_env")
    if not SOURCE_RULES["headers_env"][0](from_env):
        return []
    problems = []
    literal = {k.lower() for k in raw.get("headers") or {}} if isinstance(raw.get("headers"), dict) else set()
    where = f" (line {line})" if line else ""
    for header, variable in from_env.items():
        if header.lower() in literal:
            problems.append(Problem(f"{label}: header {header} is in both headers and headers_env{where}; keep one"))
        elif not os.environ.get(variable):
            problems.append(Problem(f"{label}: header {header} comes from environment variable {variable}, which "
                                    f"is not set{where}; export it with the header's value"))
    return problems


@dataclass
class Source:
    name: str
    url: str
    org: str
    token: str | None = field(default=None, repr=False)
    auth: str = "bearer"
    verify: bool | str = True
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # with those of headers_env, once read
    headers_env: dict[str, str] = field(default_factory=dict)  # header name -> environment variable name
    timeout: float = 30.0
    overlap_minutes: float = 10.0
    events: str = "all"
    events_sample: int = 10
    project_events: dict[str, str] = field(default_factory=dict)
    projects: list[str] = field(default_factory=list)  # the slugs mirrored; none: every project
    tag_keys: str | list[str] = "all"  # the tag keys whose values are read: all a project has, or these
    issue_hashes: bool = True  # read each changed issue's grouping hashes (a request per changed issue)
    concurrency: int = 4
    refresh_per_project: int = 500
    refresh_with_hooks: int = 50  # the same, while the source's integration issue webhooks arrive
    refresh_hours: dict[str, float] = field(default_factory=dict)  # slowly changing stream -> hours (default 24)
    origins: dict[str, str] = field(default_factory=dict, repr=False)  # setting -> where its value came from
    only_orgs: frozenset[str] = frozenset()  # with org = "*": the organizations `--source NAME/SLUG` picked
    listed: bool = False  # one organization of a source with org = "*" (running/allorgs.py)


@dataclass
class Config:
    db: str = DEFAULT_DB
    sources: list[Source] = field(default_factory=list)
    schedule: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    origins: dict[str, str] = field(default_factory=dict)


def read_config_file(path: str | os.PathLike) -> tuple[dict[str, Any], str]:
    """The parsed file and its text; a file that cannot be read or parsed is a one-line error."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {path} does not exist", hint="see config.example.toml")
    try:
        text = p.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    return data, text


def load_config_file(path: str | os.PathLike, *, flag_token: str | None = None) -> dict[str, Any]:
    data, text = read_config_file(path)
    problems = check_config(data, text, flag_token=flag_token)
    if problems:
        more = f"; {len(problems) - 1} more: run 'sentry-mirror config check'" if len(problems) > 1 else ""
        raise ConfigError(f"config file {path}: {problems[0]}{more}")
    _warn_if_exposed(Path(path), data)
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


RC_NAMES = (".sentryclirc", "sentrycli.ini")  # what sentry-cli looks for in each folder, in this order


def sentryclirc() -> dict[str, tuple[str, str]]:
    """sentry-cli's files, as it reads them: `~/.sentryclirc` (or `$SENTRYCLIRC`), then the
    `.sentryclirc` nearest the working directory over it, key by key. [auth] token, [defaults] url
    and org, each with the file it came from."""
    home = Path(os.environ.get("SENTRYCLIRC") or Path.home() / ".sentryclirc")
    nearest = project_sentryclirc()
    found = {key: (value, _shown(home)) for key, value in _read_sentryclirc(home).items()}
    if nearest is not None and not _same_file(nearest, home):
        found.update({key: (value, str(nearest)) for key, value in _read_sentryclirc(nearest).items()})
    return found


def project_sentryclirc() -> Path | None:
    """The first `.sentryclirc` (or `sentrycli.ini`) from the working directory upwards: sentry-cli
    reads that one only, not every one above it. The home folder's is the home file, which
    $SENTRYCLIRC replaces, so the walk passes it by."""
    try:
        here, home = Path.cwd(), Path.home().resolve()
    except (OSError, RuntimeError):  # the working directory was removed; no home
        return None
    for folder in (here, *here.parents):
        if folder == home:
            continue
        for name in RC_NAMES:
            if (folder / name).is_file():
                return folder / name
    return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _shown(home: Path) -> str:
    """The home file as users know it; a file named by $SENTRYCLIRC by its path."""
    return "~/.sentryclirc" if home == Path.home() / ".sentryclirc" else str(home)


def _read_sentryclirc(path: Path) -> dict[str, str]:
    """One sentry-cli file's token, url and org; an unreadable one is a warning, not an error."""
    if not path.is_file():
        return {}
    parser = configparser.ConfigParser(interpolation=None)  # sentry-cli reads `%` as itself
    found = {}
    try:
        parser.read(path, encoding="utf-8")
        if parser.has_option("auth", "token"):
            found["token"] = parser.get("auth", "token")
            redact.register_token(found["token"])
            warn_if_world_readable(path, True)
        for key in ("url", "org"):
            if parser.has_option("defaults", key):
                found[key] = parser.get("defaults", key)
    except (configparser.Error, OSError, UnicodeDecodeError):
        log.warning("ignoring unreadable %s", path)
        return {}
    return found


def _env(names: tuple[str, ...]) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _selected(sources: list[Source], names: tuple[str, ...]) -> list[Source]:
    """The sources `--source` names. `NAME/SLUG` picks one organization of a source whose `org` is
    "*" (each organization is synced as a source of that name); NAME itself picks them all."""
    by_name = {s.name: s for s in sources}
    whole, orgs = set(), {}
    for name in names:
        parent, _, slug = name.rpartition("/")
        if name in by_name:
            whole.add(name)
        elif slug and parent in by_name and by_name[parent].org == ALL_ORGS:
            orgs.setdefault(parent, set()).add(slug)
        else:
            hint = f"known: {', '.join(by_name)}"
            if any(s.org == ALL_ORGS for s in sources):
                hint += "; one organization of a source with org = \"*\" is NAME/SLUG"
            raise ConfigError(f"no source named {name} in the config", hint=hint)
    return [s if s.name in whole else dataclasses.replace(s, only_orgs=frozenset(orgs[s.name]))
            for s in sources if s.name in whole or s.name in orgs]


def resolve(*, config_path: str | None, url: str | None, org: str | None, token: str | None,
            db: str | None, source_names: tuple[str, ...] = ()) -> Config:
    """Build the effective configuration; flags win over everything else."""
    if token is not None and not token.strip():  # `--token ""` (an unset shell variable): not "use the default"
        raise ConfigError("--token is empty", hint="pass the token, or leave --token out to use SENTRY_AUTH_TOKEN "
                                                   "or the config's token_env")
    data = load_config_file(config_path, flag_token=token) if config_path else {}
    cli_rc = sentryclirc()
    schedule = data.get("schedule") or {}
    config = Config(db=store_path(db, data), schedule=dict(schedule), path=config_path,
                    origins={"db": "flag or SENTRY_MIRROR_DB" if db else ("file" if data.get("db") else "default"),
                             **{f"schedule.{k}": "file" for k in schedule}})

    raw_sources = data.get("sources") or []
    if raw_sources:
        for i, raw in enumerate(raw_sources):
            config.sources.append(_source_from_table(raw, i, token))
        if source_names:
            config.sources = _selected(config.sources, source_names)
        if (url or org or token) and len(config.sources) > 1:
            # one token for several sources would reach servers it is not for
            raise ConfigError(f"--url, --org and --token change one source, and the config gives {len(config.sources)}",
                              hint="pick one with --source NAME")
        for source in config.sources:  # a flag wins over the file, for that setting only
            if org and org != source.org and org in names_of(raw_sources):
                raise ConfigError(f"--org {org} is the config's source {org!r}, not a setting of {source.name!r}",
                                  hint=f"sync it with --source {org}")
            if org and org != source.org:
                # Rows, cursors and snapshots are kept per source name: another organization under
                # this source's name would mix with its data and prune its teams and members.
                if source.origins.get("name") == "file":
                    raise ConfigError(f"--org {org} would be stored as source {source.name!r}, which mirrors "
                                      f"{source.org}", hint=f"add a [[sources]] entry for {org}, or drop --org")
                source.name = org
            for field_name, value in (("url", url), ("org", org)):
                if value:
                    setattr(source, field_name, value)
                    source.origins[field_name] = "flag"
    else:
        resolved_org, org_from = _first((org, "flag"), (_env(ORG_ENV_VARS), _env_name(ORG_ENV_VARS)),
                                        cli_rc.get("org", (None, "")))
        if not resolved_org:
            raise ConfigError("no organization given", hint="pass --org or set SENTRY_ORG")
        resolved_token, token_from = _first((token, "flag"), (_env(TOKEN_ENV_VARS), _env_name(TOKEN_ENV_VARS)),
                                            cli_rc.get("token", (None, "")))
        if not resolved_token:
            raise ConfigError("no auth token given",
                              hint="set SENTRY_AUTH_TOKEN (a token with org:read, project:read, event:read)")
        resolved_url, url_from = _first((url, "flag"), _env_url(),
                                        cli_rc.get("url", (None, "")), (DEFAULT_URL, "default"))
        name = _host_name(resolved_url) if resolved_org == ALL_ORGS else resolved_org
        config.sources.append(Source(name=name, url=resolved_url, org=resolved_org, token=resolved_token,
                                     origins={"url": url_from, "org": org_from, "token": token_from}))
        if source_names:  # the one source the flags make (NAME/SLUG picks an organization of org = "*")
            config.sources = _selected(config.sources, source_names)
    for source in config.sources:
        source.token = _clean_secret(source.token, f"the token for {source.name}")
        for name, value in source.headers.items():
            _clean_secret(value, f"header {name} of {source.name}")
        redact.register_token(source.token)
        with contextlib.suppress(ValueError):  # a malformed URL is refused just below
            redact.register(urlsplit(source.url).password)  # https://user:password@host
        from ..fetching.urls import normalise_base_url

        normalise_base_url(source.url)  # a bad URL is a config error now, before any store is touched
    return config


def _servers(raw_sources: list) -> set[str]:
    """The servers [[sources]] tables point at (sentry.io when they give no url)."""
    return {normalise_url(r["url"]) if isinstance(r.get("url"), str) else normalise_url(DEFAULT_URL)
            for r in raw_sources if isinstance(r, dict)}


def names_of(raw_sources: list) -> list[str]:
    """The names [[sources]] tables go by (their org when they give none)."""
    return [source_name(r) for r in raw_sources if isinstance(r, dict)]


def source_name(raw: dict) -> str:
    """A [[sources]] table's name: its own, else its org; one for every organization (`org = "*"`)
    is named after its server's host, so its organizations are stored as `sentry.io/<slug>`."""
    if raw.get("name") or raw.get("org") != ALL_ORGS:
        return str(raw.get("name") or raw.get("org"))
    return _host_name(raw.get("url") if isinstance(raw.get("url"), str) else DEFAULT_URL)


def _host_name(url: str) -> str:
    with contextlib.suppress(ValueError):
        return urlsplit(url.strip()).hostname or ALL_ORGS
    return ALL_ORGS


def all_orgs_of(config: Config) -> None:
    """`sync --all-orgs`: the source mirrors every organization its token sees. One source only:
    two sources' tokens would each mirror the organizations both see."""
    if len(config.sources) > 1:
        raise ConfigError(f"--all-orgs makes one source mirror every organization, and the config gives "
                          f"{len(config.sources)}", hint="pick one with --source NAME, or set org = \"*\" in it")
    for source in config.sources:
        source.org, source.origins["org"] = ALL_ORGS, "flag --all-orgs"


def normalise_url(url: str) -> str:
    return url.strip().rstrip("/").removesuffix("/api/0").lower()


def _first(*candidates: tuple[Any, str]) -> tuple[Any, str]:
    """The first value that is set, and where it came from."""
    for value, origin in candidates:
        if value:
            return value, origin
    return None, ""


def _env_url() -> tuple[str | None, str]:
    """The server the environment names: SENTRY_URL as given, else SENTRY_HOST, which sentry-cli's
    environment gives as a bare host (`sentry.io`: https:// it)."""
    from ..fetching.urls import host_as_url

    for name in URL_ENV_VARS:
        value = os.environ.get(name)
        if value and name == "SENTRY_HOST" and "://" not in value:
            return host_as_url(value), f"env {name} (a host: https://)"
        if value:
            return value, f"env {name}"
    return None, ""


def _env_name(names: tuple[str, ...]) -> str:
    return "env " + next((n for n in names if os.environ.get(n)), names[0])


def _clean_secret(value: str | None, what: str) -> str | None:
    """Tokens pasted with a newline are common; control characters inside one are not usable."""
    if value is None:
        return None
    value = value.strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in value) or not value.isascii():
        redact.register(value)
        raise ConfigError(f"{what} contains control or non-ASCII characters", hint="check how it was copied")
    return value


def _source_from_table(raw: dict, index: int, flag_token: str | None) -> Source:
    """A source from its validated [[sources]] table (check_config has checked every value)."""
    token_env = raw.get("token_env")
    token, token_from = _first((flag_token, "flag"),
                               (os.environ.get(str(token_env)) if token_env else None, f"env {token_env} (token_env)"),
                               (_env(TOKEN_ENV_VARS), _env_name(TOKEN_ENV_VARS)),
                               sentryclirc().get("token", (None, "")))
    if not token:
        raise ConfigError(f"config: sources[{index}]: no token", hint="set token_env, or SENTRY_AUTH_TOKEN")
    # A source without url is sentry.io. But a token from the environment or ~/.sentryclirc comes
    # with their url: sending it elsewhere (or this source's token_env one to a left-over
    # SENTRY_URL) is what must not happen, so a url set there asks for the source's own.
    url, url_from = (raw["url"], "file") if raw.get("url") else (DEFAULT_URL, "default")
    if not raw.get("url"):
        elsewhere = next(((u, w) for u, w in (_env_url(),
                                             sentryclirc().get("url", (None, ""))) if u), None)
        if elsewhere and normalise_url(elsewhere[0]) != normalise_url(DEFAULT_URL):
            raise ConfigError(f"config: sources[{index}] has no url, and {elsewhere[1]} names {elsewhere[0]}",
                              hint="set url in the source (https://sentry.io, or that server), so that no token "
                                   "goes to a server it is not for")
    defaults = Source(name="", url=DEFAULT_URL, org="")
    values = {key: raw.get(key, getattr(defaults, key)) for key in SOURCE_RULES if key not in ("token_env", "name", "url")}
    source = Source(name=source_name(raw), token=token, url=url, **values)
    source.timeout, source.overlap_minutes = float(source.timeout), float(source.overlap_minutes)
    if isinstance(source.verify, str):
        source.verify = os.path.expanduser(source.verify)
    source.headers, source.project_events = dict(source.headers), dict(source.project_events)
    source.headers_env, source.projects = dict(source.headers_env), list(source.projects)
    for header, variable in source.headers_env.items():  # check_config has found each set
        source.headers[header] = os.environ.get(variable) or ""
        redact.register(source.headers[header])  # never logged
    source.refresh_hours = {k: float(v) for k, v in source.refresh_hours.items()}
    source.origins = {key: ("file" if key in raw else "default") for key in SOURCE_RULES if key != "token_env"}
    source.origins["url"] = url_from
    source.origins["token"] = token_from
    return source
