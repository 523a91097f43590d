"""`config from-gitlab`: a config source made from a GitLab project's error-tracking settings.

GitLab keeps, per project, the Sentry project it shows errors from (`api_url`, e.g.
`https://sentry.io/api/0/projects/ORG/PROJECT/`), but never hands out the Sentry token it holds:
the source printed here names a `token_env` for it instead. GitLab's own integrated backend has
no Sentry read API, so such a project gives no source, only its client keys (DSNs).
"""

from __future__ import annotations

import json
import re
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, unquote, urlsplit

import requests

from .. import __version__, redact
from ..errors import ConfigError
from .config import names_of

TIMEOUT = 15  # seconds per request: GitLab answers these small routes quickly
RETRY_PAUSE = 1.0  # one retry, after this pause, for a dropped connection, 429 or 5xx
PER_PAGE = 100  # GitLab's largest page
SETTINGS_PAGE = "Settings > Monitor > Error Tracking"
API_URL = re.compile(r"^(?P<prefix>.*?)/api/0/projects/(?P<org>[^/]+)/(?P<project>[^/]+)/?$")


@dataclass
class Found:
    """One GitLab project's verdict: a source to write, or why there is none."""

    path: str  # the GitLab project's path (or the id it was asked by)
    url: str | None = None  # the Sentry server
    org: str | None = None
    project: str | None = None
    skipped: str | None = None  # what the setting means and what to do, when there is no source

    @property
    def name(self) -> str:
        """The source's name: the GitLab path, which names the project uniquely in that GitLab."""
        return "gitlab-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", self.path).strip("-").lower()


class GitLab:
    """A few GET requests to GitLab's REST API v4 with a PRIVATE-TOKEN."""

    def __init__(self, base_url: str, token: str, timeout: float = TIMEOUT):
        self.api = api_base(base_url)
        redact.register_token(token)
        self.session = requests.Session()
        self.session.headers.update({"PRIVATE-TOKEN": token, "Accept": "application/json",
                                     "User-Agent": f"sentry-mirror/{__version__}"})
        self.timeout = timeout

    def close(self) -> None:
        self.session.close()

    def get(self, url: str, params: dict | None = None) -> requests.Response:
        """One GET, retried once after a pause for a dropped connection, 429 or 5xx."""
        for attempt in (1, 2):
            try:
                resp = self.session.get(url, params=params, timeout=self.timeout)
            except requests.RequestException as exc:
                if attempt == 2:
                    raise ConfigError(f"cannot reach GitLab at {self.api}: {type(exc).__name__}",
                                      hint="check --gitlab-url and the network") from None
                time.sleep(RETRY_PAUSE)
                continue
            if (resp.status_code == 429 or resp.status_code >= 500) and attempt == 1:
                time.sleep(RETRY_PAUSE)
                continue
            return resp
        raise AssertionError("unreachable")

    def get_json(self, url: str, params: dict | None = None, what: str = "") -> tuple[int, object, requests.Response]:
        """The status and JSON body; 401 and an answer that is not JSON are errors here."""
        resp = self.get(url, params)
        if resp.status_code == 401:
            raise ConfigError(f"GitLab answered 401 Unauthorized for {what or url}",
                              hint="the token is wrong, expired or revoked; it needs the read_api scope")
        try:
            body = resp.json()
        except ValueError:
            raise ConfigError(f"GitLab answered {resp.status_code} for {what or url} with no JSON",
                              hint="check --gitlab-url: it must be the GitLab server, e.g. https://gitlab.com") from None
        return resp.status_code, body, resp

    def project_path(self, project: str) -> str:
        """The project's path (`group/sub/project`), which also tells that it exists."""
        status, body, _ = self.get_json(f"{self.api}/projects/{encode(project)}", what=f"project {project}")
        if status == 404:
            raise ConfigError(f"GitLab knows no project {project} (404)",
                              hint="give its numeric id or full path, e.g. group/sub/project, and check the "
                                   "token can see it")
        if status != 200 or not isinstance(body, dict):
            raise ConfigError(f"GitLab answered {status} for project {project}: {message(body)}")
        return str(body.get("path_with_namespace") or project)

    def setting(self, path: str) -> Found:
        """What the project's error-tracking setting says, as a source or as a reason to skip it."""
        status, body, _ = self.get_json(f"{self.api}/projects/{encode(path)}/error_tracking/settings",
                                        what=f"the error-tracking settings of {path}")
        if status == 404:
            return Found(path, skipped="no error-tracking setting (404): the project is not connected to "
                                       f"Sentry; connect it under {SETTINGS_PAGE}, or pick another project")
        if status == 403:
            return Found(path, skipped="the token may not read its error-tracking settings (403): that "
                                       "needs the Maintainer role on the project")
        if status != 200 or not isinstance(body, dict):
            raise ConfigError(f"GitLab answered {status} for the error-tracking settings of {path}: {message(body)}")
        return found_from(path, body)

    def client_keys(self, path: str) -> list[dict]:
        """The integrated backend's client keys (public key, DSN, active), every page."""
        return list(self.pages(f"{self.api}/projects/{encode(path)}/error_tracking/client_keys",
                               what=f"the client keys of {path}"))

    def group_projects(self, group: str) -> Iterator[dict]:
        """Every project of the group and its subgroups that the token can see."""
        return self.pages(f"{self.api}/groups/{encode(group)}/projects",
                          {"include_subgroups": "true", "per_page": PER_PAGE, "order_by": "id", "sort": "asc"},
                          what=f"the projects of group {group}")

    def pages(self, url: str, params: dict | None = None, what: str = "") -> Iterator[dict]:
        """Follow GitLab's pagination: the Link header's rel="next" (offset or keyset alike), else
        X-Next-Page; neither ends the walk."""
        params = dict(params or {"per_page": PER_PAGE})
        seen = set()
        while url:
            status, body, resp = self.get_json(url, params, what=what)
            if status == 404:
                raise ConfigError(f"GitLab answered 404 for {what}: {message(body)}",
                                  hint="check the group's full path or id")
            if status == 403:
                raise ConfigError(f"GitLab answered 403 for {what}: the token may not read it",
                                  hint="it needs the Maintainer role")
            if status != 200 or not isinstance(body, list):
                raise ConfigError(f"GitLab answered {status} for {what}: {message(body)}")
            yield from (item for item in body if isinstance(item, dict))
            url, params = next_page(resp, params)
            if url in seen:  # a server that points back at a page already read would loop forever
                raise ConfigError(f"GitLab's pagination for {what} came back to a page already read")
            seen.add(url)


def next_page(resp: requests.Response, params: dict) -> tuple[str | None, dict | None]:
    """The next page's URL (with its query, so no params) or page number; (None, None) at the end."""
    nxt = resp.links.get("next", {}).get("url")
    if nxt:
        return nxt, None
    number = (resp.headers.get("X-Next-Page") or "").strip()
    if number.isdigit():
        return resp.url.split("?", 1)[0], {**(params or {}), "page": number}
    return None, None


def api_base(url: str) -> str:
    """`https://gitlab.example.com[/prefix]` (or with `/api/v4`) as the API's base."""
    url = (url or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--gitlab-url must be an http(s) URL such as https://gitlab.com, not {url!r}")
    return url if url.endswith("/api/v4") else url + "/api/v4"


def encode(project: str) -> str:
    """A numeric id as is, a path URL-encoded whole (`group%2Fsub%2Fproject`), as GitLab asks."""
    project = project.strip().strip("/")
    return project if project.isdigit() else quote(project, safe="")


def message(body: object) -> str:
    """GitLab's error text (`{"message": "404 Project Not Found"}`, or `{"error": ...}`)."""
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or "")
    return ""


def found_from(path: str, setting: dict) -> Found:
    """The Sentry server, organization and project an active external setting points at."""
    if setting.get("integrated"):
        return Found(path, skipped="uses GitLab's integrated error tracking, which has no Sentry API to "
                                   "read: there is nothing to mirror (its DSNs: --client-keys)")
    if not setting.get("active"):
        return Found(path, skipped=f"error tracking is turned off (active: false); turn it on under "
                                   f"{SETTINGS_PAGE}, or leave the project out")
    return Found(path, **sentry_target(str(setting.get("api_url") or ""), path))


def sentry_target(api_url: str, path: str) -> dict:
    """`https://host[:port][/prefix]/api/0/projects/ORG/PROJECT/` -> url, org and project slug."""
    parts = urlsplit(api_url)
    match = API_URL.match(parts.path)
    if parts.scheme not in ("http", "https") or not parts.hostname or not match:
        raise ConfigError(f"the error-tracking setting of {path} has an api_url that is not a Sentry project's: "
                          f"{api_url!r}", hint=f"expected https://HOST/api/0/projects/ORG/PROJECT/; fix it under "
                                               f"{SETTINGS_PAGE}")
    host = parts.netloc.rsplit("@", 1)[-1]  # never credentials in a config file
    return {"url": f"{parts.scheme}://{host}{match['prefix']}", "org": unquote(match["org"]),
            "project": unquote(match["project"])}


def toml_block(found: Found, token_env: str, gitlab_url: str) -> str:
    """One [[sources]] table for the project (TOML's basic strings take JSON's escapes)."""
    text = json.dumps
    return (f"# from GitLab project {found.path} ({gitlab_url}): its error-tracking settings\n"
            f"[[sources]]\nname = {text(found.name)}\nurl = {text(found.url)}\norg = {text(found.org)}\n"
            f"token_env = {text(token_env)}  # the Sentry token: GitLab does not hand out the one it holds\n"
            f"projects = [{text(found.project)}]\n")


def existing_names(path: Path) -> set[str]:
    """The source names a config file already has (none when it does not exist yet)."""
    if not path.exists():
        return set()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot add to {path}: {exc}", hint="fix the file, or write to another one") from None
    sources = data.get("sources") if isinstance(data.get("sources"), list) else []
    return set(names_of(sources))


def append_blocks(path: Path, blocks: list[str]) -> None:
    """Add the tables to the end of the file, never changing what is there; the whole is checked
    to parse first, so a file is never left half written or broken."""
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    joiner = "" if not before else ("\n" if before.endswith("\n") else "\n\n")
    added = joiner + "\n".join(blocks)
    try:
        tomllib.loads(before + added)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"adding the source would break {path}: {exc}", hint="nothing was written") from None
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(added)


def gitlab_token(env_name: str, environ: dict) -> str:
    """The GitLab token from its environment variable; never echoed."""
    token = (environ.get(env_name) or "").strip()
    if not token:
        raise ConfigError(f"environment variable {env_name} is not set",
                          hint="export a GitLab token with the read_api scope (Maintainer role on the "
                               "projects), or name another variable with --token-env")
    redact.register_token(token)
    return token


def from_gitlab(*, gitlab_url: str, project: str, token: str, sentry_token_env: str, write: str | None,
                every: bool, client_keys: bool, say) -> None:
    """The command's work: `say(text, to_stderr)` prints; a user error raises ConfigError."""
    from .config import SOURCE_RULES

    if not SOURCE_RULES["token_env"][0](sentry_token_env):
        raise ConfigError(f"--sentry-token-env must be {SOURCE_RULES['token_env'][1]}")
    if client_keys and every:
        raise ConfigError("--client-keys lists one project's keys", hint="drop --all, or name one project")
    gl = GitLab(gitlab_url, token)
    try:
        if client_keys:
            path = gl.project_path(project)
            keys = gl.client_keys(path)
            say(f"{len(keys)} client key{'s' * (len(keys) != 1)} of GitLab project {path}"
                + ("" if keys else " (keys exist only with GitLab's integrated error tracking)"), False)
            for key in keys:
                say(f"{key.get('public_key')}  {'active' if key.get('active') else 'inactive'}  "
                    f"{key.get('sentry_dsn')}", False)
            return
        found = _group(gl, project, say) if every else [_single(gl, project)]
    finally:
        gl.close()
    _emit(found, sentry_token_env, gl.api.removesuffix("/api/v4"), write, every, say)


def _single(gl: GitLab, project: str) -> Found:
    path = gl.project_path(project)
    found = gl.setting(path)
    if found.skipped:
        raise ConfigError(f"GitLab project {path}: {found.skipped}")
    return found


def _group(gl: GitLab, group: str, say) -> list[Found]:
    """Every project of the group: those with an active external Sentry; the rest said skipped."""
    found, total = [], 0
    for item in gl.group_projects(group):
        total += 1
        verdict = gl.setting(str(item.get("path_with_namespace") or item.get("id")))
        if verdict.skipped:
            say(f"skipped {verdict.path}: {verdict.skipped}", True)
        else:
            found.append(verdict)
    if not found:
        raise ConfigError(f"no project of GitLab group {group} has an active external Sentry "
                          f"({total} project{'s' * (total != 1)} read)",
                          hint=f"connect one under {SETTINGS_PAGE}")
    return found


def _emit(found: list[Found], token_env: str, gitlab_url: str, write: str | None, every: bool, say) -> None:
    """Print the tables, or append them to the file: a name the file has already is refused (one
    project) or skipped (--all), so that running it again adds only the new projects."""
    if not write:
        say("\n".join(toml_block(f, token_env, gitlab_url) for f in found), False)
        return
    path = Path(write)
    taken = existing_names(path)
    fresh = [f for f in found if f.name not in taken]
    for f in found:
        if f.name in taken and not every:
            raise ConfigError(f"{path} already has a source named {f.name!r}; nothing was written",
                              hint="remove or rename that source first")
        if f.name in taken:
            say(f"skipped {f.path}: {path} already has a source named {f.name!r}", True)
    if fresh:
        append_blocks(path, [toml_block(f, token_env, gitlab_url) for f in fresh])
    say(f"added {len(fresh)} source{'s' * (len(fresh) != 1)} to {path}"
        + (f": {', '.join(f.name for f in fresh)}" if fresh else ""), False)
