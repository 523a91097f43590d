"""`config from-gitlab`: a config source made from a GitLab project's error-tracking settings.

GitLab keeps, per project, the Sentry project it shows errors from (`api_url`, e.g.
`https://sentry.io/api/0/projects/ORG/PROJECT/`), but never hands out the Sentry token it holds:
the source printed here names a `token_env` for it instead. GitLab's own integrated backend has
no Sentry read API, so such a project gives no source, only its client keys (DSNs). Projects on
the same Sentry organization make one source, so that its organization-wide streams are read
once. The PRIVATE-TOKEN goes only to --gitlab-url's own origin: a next page or a redirect
elsewhere is refused, since requests would carry that header anywhere.
"""

from __future__ import annotations

import json
import os
import re
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, unquote, urljoin, urlsplit

import requests

from .. import __version__, redact
from ..errors import ConfigError
from .config import ALL_ORGS, DEFAULT_URL, names_of, normalise_url

TIMEOUT = 15  # seconds per request: GitLab answers these small routes quickly
RETRY_PAUSE = 1.0  # one retry, after this pause, for a dropped connection, 429 or 5xx
PER_PAGE = 100  # GitLab's largest page
MAX_REDIRECTS = 5  # same-origin hops followed for one request
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
        return source_name(self.path)


@dataclass
class Source:
    """One [[sources]] table: one Sentry server and organization, the projects GitLab points at there."""

    name: str
    url: str
    org: str
    projects: list[str]  # sorted, unique
    paths: list[str]  # the GitLab projects it comes from


def source_name(path: str) -> str:
    return "gitlab-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", path).strip("-").lower()


class GitLab:
    """A few GET requests to GitLab's REST API v4 with a PRIVATE-TOKEN."""

    def __init__(self, base_url: str, token: str, timeout: float = TIMEOUT):
        self.api = api_base(base_url)
        self.shown = without_userinfo(self.api)  # what messages and files say: never user:password
        self.origin = origin(self.api)
        redact.register(urlsplit(self.api).password)
        redact.register_token(token)
        self.session = requests.Session()
        self.session.headers.update({"PRIVATE-TOKEN": token, "Accept": "application/json",
                                     "User-Agent": f"sentry-mirror/{__version__}"})
        self.timeout = timeout

    def close(self) -> None:
        self.session.close()

    def get(self, url: str, params: dict | None = None, what: str = "") -> requests.Response:
        """One GET; a redirect is followed only within GitLab's own origin, as requests would carry
        the PRIVATE-TOKEN header to any other server."""
        for _ in range(MAX_REDIRECTS + 1):
            resp = self.get_once(url, params)
            if not resp.is_redirect:
                return resp
            target = urljoin(resp.url, resp.headers["Location"])
            resp.close()
            self.same_origin(target, f"GitLab redirected the request for {what or 'it'} to",
                             hint="if GitLab moved, give its new address as --gitlab-url")
            url, params = target, None
        raise ConfigError(f"GitLab redirected the request for {what or url} more than {MAX_REDIRECTS} times")

    def same_origin(self, url: str, said: str, hint: str) -> None:
        """Refuse a URL on another origin than --gitlab-url's: the token is never sent there."""
        if origin(url) != self.origin:
            raise ConfigError(f"{said} {origin_text(url)}, not {origin_text(self.api)}; the GitLab token is "
                              f"sent only to --gitlab-url's server, so nothing was asked there", hint=hint)

    def get_once(self, url: str, params: dict | None = None) -> requests.Response:
        """One GET (redirects not followed), retried once after a pause for a dropped connection,
        429 or 5xx."""
        for attempt in (1, 2):
            try:
                resp = self.session.get(url, params=params, timeout=self.timeout, allow_redirects=False)
            except requests.RequestException as exc:
                if attempt == 2:
                    raise ConfigError(f"cannot reach GitLab at {self.shown}: {type(exc).__name__}",
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
        resp = self.get(url, params, what)
        return resp.status_code, self.body(resp, what or url), resp

    def body(self, resp: requests.Response, what: str) -> object:
        """The answer's JSON; 401 and an answer that is not JSON are errors."""
        if resp.status_code == 401:
            raise ConfigError(f"GitLab answered 401 Unauthorized for {what}",
                              hint="the token is wrong, expired or revoked; it needs the read_api scope")
        try:
            return resp.json()
        except ValueError:
            raise ConfigError(f"GitLab answered {resp.status_code} for {what} with no JSON",
                              hint="check --gitlab-url: it must be the GitLab server, e.g. https://gitlab.com") from None

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
        """What the project's error-tracking setting says, as a source or as a reason to skip it (so
        that one project GitLab cannot answer for does not stop --all)."""
        what = f"the error-tracking settings of {path}"
        resp = self.get(f"{self.api}/projects/{encode(path)}/error_tracking/settings", what=what)
        status = resp.status_code
        if status == 429 or status >= 500:  # HTML from a proxy, often: not read as JSON
            return Found(path, skipped=f"GitLab answered {status} for its error-tracking settings, again after "
                                       "a retry; try again later")
        body = self.body(resp, what)
        if status == 404:
            return Found(path, skipped="no error-tracking setting (404): the project is not connected to "
                                       f"Sentry; connect it under {SETTINGS_PAGE}, or pick another project")
        if status == 403:
            return Found(path, skipped="the token may not read its error-tracking settings (403): that "
                                       "needs the Maintainer role on the project")
        if status != 200 or not isinstance(body, dict):
            return Found(path, skipped=f"GitLab answered {status} for its error-tracking settings: {message(body)}")
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
            page = requests.Request("GET", url, params=params).prepare().url  # with its query: page=3 is not page=2
            if page in seen:  # a server that points back at a page already read would loop forever
                raise ConfigError(f"GitLab's pagination for {what} came back to a page already read")
            seen.add(page)
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
            if url:
                self.same_origin(url, f"GitLab's next page of {what} is at",
                                 hint="GitLab's external_url or a proxy in front of it names another address; "
                                      "give that one as --gitlab-url if it is GitLab's own")


def next_page(resp: requests.Response, params: dict) -> tuple[str | None, dict | None]:
    """The next page's URL (with its query, so no params) or page number; (None, None) at the end."""
    nxt = resp.links.get("next", {}).get("url")
    if nxt:
        return urljoin(resp.url, nxt), None
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


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port (the scheme's default when none is given): where a token may go."""
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        port = None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def origin_text(url: str) -> str:
    """`scheme://host[:port]` of a URL, without user:password."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def without_userinfo(url: str) -> str:
    """The URL with no `user:password@`, to be printed or written."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl()


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
    try:
        return Found(path, **sentry_target(str(setting.get("api_url") or ""), path))
    except ConfigError as exc:
        return Found(path, skipped=str(exc))


def sentry_target(api_url: str, path: str) -> dict:
    """`https://host[:port][/prefix]/api/0/projects/ORG/PROJECT/` -> url, org and project slug."""
    parts = urlsplit(api_url)
    match = API_URL.match(parts.path)
    if parts.scheme not in ("http", "https") or not parts.hostname or not match:
        raise ConfigError(f"its api_url is not a Sentry project's: {without_userinfo(api_url)!r}",
                          hint=f"expected https://HOST/api/0/projects/ORG/PROJECT/; fix it under {SETTINGS_PAGE}")
    host = parts.netloc.rsplit("@", 1)[-1]  # never credentials in a config file
    return {"url": f"{parts.scheme}://{host}{match['prefix']}", "org": unquote(match["org"]),
            "project": unquote(match["project"])}


def merged(found: list[Found], group: str | None = None) -> list[Source]:
    """One source per Sentry server and organization, holding every project GitLab points at
    there: named after the project alone, else after the group (and the organization, when the
    group's projects point at several)."""
    by_org: dict[tuple[str, str], list[Found]] = {}
    for f in found:
        by_org.setdefault((normalise_url(f.url), f.org), []).append(f)
    sources: list[Source] = []
    for (_, org), same in sorted(by_org.items()):
        name = same[0].name if group is None else source_name(group if len(by_org) == 1 else f"{group}-{org}")
        while name in {s.name for s in sources}:  # one organization's slug on two Sentry servers
            name += "-2"
        sources.append(Source(name, same[0].url, org, sorted({f.project for f in same}), [f.path for f in same]))
    return sources


def toml_block(source: Source, token_env: str, gitlab_url: str) -> str:
    """One [[sources]] table (TOML's basic strings take JSON's escapes)."""
    text = json.dumps
    origin_line = (f"# from GitLab project {source.paths[0]} ({gitlab_url}): its error-tracking settings\n"
                   if len(source.paths) == 1 else
                   f"# from GitLab projects {', '.join(source.paths)} ({gitlab_url}): their error-tracking settings\n")
    return (origin_line
            + f"[[sources]]\nname = {text(source.name)}\nurl = {text(source.url)}\norg = {text(source.org)}\n"
            f"token_env = {text(token_env)}  # the Sentry token: GitLab does not hand out the one it holds\n"
            f"projects = [{', '.join(text(p) for p in source.projects)}]\n")


def existing_sources(path: Path) -> list[dict]:
    """The [[sources]] tables a config file already has (none when it does not exist yet)."""
    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot add to {path}: {exc}", hint="fix the file, or write to another one") from None
    sources = data.get("sources") if isinstance(data.get("sources"), list) else []
    return [s for s in sources if isinstance(s, dict)]


def covered(existing: list[dict], source: Source, path: Path) -> str | None:
    """Why the file needs no new source for this organization (a source there mirrors it already,
    and which projects to add to it by hand), or None."""
    for raw in existing:
        url = raw.get("url") if isinstance(raw.get("url"), str) else DEFAULT_URL
        if normalise_url(url) != normalise_url(source.url) or raw.get("org") not in (source.org, ALL_ORGS):
            continue
        said = f"source {names_of([raw])[0]!r} in {path} already mirrors {source.org} at {source.url}"
        has = raw.get("projects") if isinstance(raw.get("projects"), list) else []
        if raw.get("org") == ALL_ORGS or not has:
            return said + ", every project of it"
        missing = sorted(set(source.projects) - set(has))
        return said + (f"; add to its projects by hand: {', '.join(missing)}" if missing else ", these projects too")
    return None


def check_writable(path: Path) -> None:
    """Before GitLab is asked anything: a file that cannot be written to is said at once."""
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(f"the folder {folder} does not exist", hint="create it, or choose another --write file")
    if not os.access(path if path.exists() else folder, os.W_OK):
        raise ConfigError(f"cannot write to {path}: permission denied", hint="choose another --write file")


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
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(added)
    except OSError as exc:
        raise ConfigError(f"cannot write to {path}: {exc.strerror or exc}", hint="choose another --write file") from None


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
    if not project.strip():
        raise ConfigError("--project is empty", hint="a GitLab project's numeric id or full path (group/project)")
    if write:
        check_writable(Path(write))
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
        sources = merged(*_group(gl, project, say)) if every else merged([_single(gl, project)])
    finally:
        gl.close()
    _emit(sources, sentry_token_env, gl.shown.removesuffix("/api/v4"), write, every, say)


def _single(gl: GitLab, project: str) -> Found:
    path = gl.project_path(project)
    found = gl.setting(path)
    if found.skipped:
        raise ConfigError(f"GitLab project {path}: {found.skipped}")
    return found


def _group(gl: GitLab, group: str, say) -> tuple[list[Found], str]:
    """Every project of the group: those with an active external Sentry; the rest said skipped;
    and the group's path, to name the source after."""
    found, paths = [], []
    for item in gl.group_projects(group):
        paths.append(str(item.get("path_with_namespace") or item.get("id")))
        verdict = gl.setting(paths[-1])
        if verdict.skipped:
            say(f"skipped {verdict.path}: {verdict.skipped}", True)
        else:
            found.append(verdict)
    total = len(paths)
    if not found:
        raise ConfigError(f"no project of GitLab group {group} has an active external Sentry "
                          f"({total} project{'s' * (total != 1)} read)",
                          hint=f"connect one under {SETTINGS_PAGE}")
    return found, group_path(group, paths)


def group_path(group: str, paths: list[str]) -> str:
    """The group as a path: as given, or for a numeric id the folders its projects share."""
    if not group.strip().isdigit():
        return group.strip().strip("/")
    shared = []
    for parts in zip(*(p.split("/")[:-1] for p in paths)):
        if len(set(parts)) > 1:
            break
        shared.append(parts[0])
    return "/".join(shared) or group.strip()


def _emit(sources: list[Source], token_env: str, gitlab_url: str, write: str | None, every: bool, say) -> None:
    """Print the tables, or append them to the file: a name the file has already, or an
    organization one of its sources mirrors already, is refused (one project) or skipped (--all),
    so that running it again adds only the new ones."""
    if not write:
        say("\n".join(toml_block(s, token_env, gitlab_url) for s in sources), False)
        return
    path = Path(write)
    existing = existing_sources(path)
    taken = set(names_of(existing))
    fresh = []
    for s in sources:
        why = (f"{path} already has a source named {s.name!r}" if s.name in taken
               else covered(existing, s, path))
        if why and not every:
            raise ConfigError(f"{why}; nothing was written",
                              hint="remove or rename that source first" if s.name in taken else None)
        if why:
            say(f"skipped {s.name}: {why}", True)
        else:
            fresh.append(s)
    if fresh:
        append_blocks(path, [toml_block(f, token_env, gitlab_url) for f in fresh])
    say(f"added {len(fresh)} source{'s' * (len(fresh) != 1)} to {path}"
        + (f": {', '.join(f.name for f in fresh)}" if fresh else ""), False)
