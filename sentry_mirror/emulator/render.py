"""JSON shapes of the Sentry Web API, rendered lazily from the compact world.

Field lists follow ENDPOINTS.md (listOrganizationIssues, getOrganizationIssue,
listOrganizationIssueEvents, getProjectEvent, listOrganizationReleases, listOrganizationProjects,
getOrganization). Everything derived per event comes from World.event_hash so repeated requests
give identical payloads.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left

from . import catalog
from .model import DAY_MS, HOUR_MS, Deploy, Issue, Member, Project, Release, Team, iso
from .served import Served

STATS_BUCKETS = {"24h": (24, HOUR_MS), "14d": (14, DAY_MS), "30d": (30, DAY_MS)}


# ----- organization, projects, releases ---------------------------------------------------------
def organization(world: Served, base_url: str, detailed: bool = True) -> dict:
    out = {
        "id": world.org_id, "slug": world.org_slug, "name": world.org_name,
        "status": {"id": "active", "name": "active"},
        "dateCreated": iso(world.org_created_ms), "isEarlyAdopter": False, "require2FA": False,
        "avatar": {"avatarType": "letter_avatar", "avatarUuid": None, "avatarUrl": None},
        "links": {"organizationUrl": base_url, "regionUrl": base_url},
        "hasAuthProvider": False, "allowMemberInvite": True, "allowMemberProjectCreation": True,
        "allowSuperuserAccess": False,
        "features": ["advanced-search", "issue-platform", "onboarding", "session-replay"],
    }
    if detailed:
        out.update({
            "access": ["org:read", "project:read", "event:read", "team:read", "member:read"],
            "extraOptions": {}, "onboardingTasks": [],
            "teams": [team(slug, name) for slug, name in catalog.TEAMS],
            "projects": [project(world, p) for p in world.projects],
        })
    return out


def team(slug: str, name: str) -> dict:
    return {"id": str(10 + [t for t, _ in catalog.TEAMS].index(slug)), "slug": slug, "name": name}


def project(world: Served, p: Project) -> dict:
    latest = p.releases[-1] if p.releases else None
    first_event = p.ev_times[bisect_left(p.ev_times, world.retention_ms)] if p.ev_times else None
    t = team(p.team, dict(catalog.TEAMS)[p.team])
    flags = ("hasFeedbacks", "hasFlags", "hasMinifiedStackTrace", "hasMonitors", "hasNewFeedbacks",
             "hasProfiles", "hasReplays", "hasSessions", "hasInsightsHttp", "hasInsightsDb",
             "hasInsightsAssets", "hasInsightsAppStart", "hasInsightsScreenLoad", "hasInsightsVitals",
             "hasInsightsCaches", "hasInsightsQueues", "hasInsightsAgentMonitoring", "hasInsightsMCP",
             "hasLogs", "hasTraceMetrics", "hasUserReports")
    out = {
        "id": str(p.id), "slug": p.slug, "name": p.name, "platform": p.platform,
        "dateCreated": iso(p.created_ms), "isBookmarked": False, "isMember": True,
        "features": ["releases", "servicehooks", "similarity-embeddings"],
        "firstEvent": iso(first_event) if first_event is not None else None,
        "firstTransactionEvent": False, "access": ["project:read", "event:read"], "hasAccess": True,
        "team": t, "teams": [t], "platforms": [p.platform], "environments": ["production", "staging"],
        "latestRelease": {"version": latest.version} if latest else None,
        "latestDeploys": None, "options": {}, "stats": None, "transactionStats": None, "sessionStats": None,
    }
    out.update({f: False for f in flags})
    # Fields the legacy /projects/ list and team details carry as well (harmless extras elsewhere).
    out.update({"avatar": dict(_AVATAR), "color": "#" + hashlib.md5(p.slug.encode()).hexdigest()[:6],
                "isInternal": False, "isPublic": False, "status": "active"})
    return out


def project_listed(world: Served, p: Project, base_url: str) -> dict:
    """Legacy `GET /api/0/projects/` item: the project with its organization."""
    return {**project(world, p), "organization": organization(world, base_url, detailed=False)}


def project_detail(world: Served, p: Project, base_url: str) -> dict:
    """getProject: the list fields plus the project's settings and organization."""
    token = hashlib.md5(f"{world.seed}:{p.id}:token".encode()).hexdigest()
    return {
        **project(world, p),
        "organization": organization(world, base_url, detailed=False),
        "options": {"sentry:token": token, "sentry:resolve_age": 0, "sentry:scrub_data": True},
        "digestsMinDelay": 300, "digestsMaxDelay": 1800, "subjectPrefix": "", "allowedDomains": ["*"],
        "resolveAge": 0, "dataScrubber": True, "dataScrubberDefaults": True, "safeFields": [],
        "storeCrashReports": None, "sensitiveFields": [], "subjectTemplate": "$shortID - $title",
        "securityToken": token, "securityTokenHeader": None, "verifySSL": False, "scrubIPAddresses": False,
        "scrapeJavaScript": True, "enableAutoReleaseCreation": False, "highlightTags": [], "highlightContext": {},
        "highlightPreset": {"tags": [], "context": {}}, "groupingConfig": "newstyle:2023-01-11",
        "derivedGroupingEnhancements": "", "groupingEnhancements": "", "secondaryGroupingExpiry": 0,
        "secondaryGroupingConfig": None, "fingerprintingRules": "", "processingIssues": 0,
        "defaultEnvironment": None, "relayPiiConfig": None, "builtinSymbolSources": [],
        "dynamicSamplingBiases": [], "symbolSources": "[]", "isDynamicallySampled": False,
        "tempestFetchScreenshots": False, "autofixAutomationTuning": "off", "seerScannerAutomation": False,
        "seerNightshiftTweaks": None, "scmSourceContextEnabled": False, "debugFilesRole": None,
    }


def service_hook(world: Served, p: Project) -> dict:
    """Each project has one service hook, created with the project."""
    h = hashlib.md5(f"{world.seed}:{p.id}:hook".encode()).hexdigest()
    return {"id": h[:32], "url": f"https://hooks.acme.example/sentry/{p.slug}", "dateCreated": iso(p.created_ms),
            "events": ["event.alert", "event.created"], "status": "active", "secret": h + h[:32]}


def release(world: Served, r: Release) -> dict:
    p = r.project
    start, end = p.release_window(r)
    lo = bisect_left(p.ev_times, max(start, world.retention_ms))
    hi = bisect_left(p.ev_times, end)
    major, minor, patch = r.semver
    raw = f"{major}.{minor}.{patch}"
    last = r.last_deploy
    return {
        "id": r.id, "version": r.version, "shortVersion": r.version, "status": r.status,
        "versionInfo": {
            "package": p.package,
            "version": {"raw": raw, "major": major, "minor": minor, "patch": patch, "pre": None,
                        "buildCode": None, "components": 3},
            "description": raw, "buildHash": None,
        },
        "ref": None, "url": None,
        "dateReleased": iso(r.released_ms) if r.released_ms else None,
        "dateCreated": iso(r.created_ms), "dateStarted": None, "data": {},
        "newGroups": r.new_groups, "owner": None, "commitCount": r.commit_count, "lastCommit": None,
        "deployCount": r.deploy_count, "lastDeploy": deploy(last) if last else None, "authors": [],
        "projects": [{"id": p.id, "slug": p.slug, "name": p.name, "newGroups": r.new_groups,
                      "platform": p.platform, "platforms": [p.platform], "hasHealthData": False}],
        "firstEvent": iso(p.ev_times[lo]) if lo < hi else None,
        "lastEvent": iso(p.ev_times[hi - 1]) if lo < hi else None,
        "currentProjectMeta": {}, "userAgent": None,
    }


def deploy(d: Deploy) -> dict:
    return {"id": d.id, "environment": d.environment,
            "dateStarted": iso(d.started_ms) if d.started_ms is not None else None,
            "dateFinished": iso(d.finished_ms), "name": d.name, "url": d.url}


# ----- teams, members, environments -----------------------------------------------------------------
_AVATAR = {"avatarType": "letter_avatar", "avatarUuid": None, "avatarUrl": None}
_TEAM_ACCESS = ["alerts:read", "event:read", "member:read", "org:read", "project:read", "project:releases",
                "team:read"]


def team_detail(world: Served, t: Team, detailed: bool = True) -> dict:
    """OrganizationTeams list item; `detailed=0` drops `projects`."""
    out = {
        "id": t.id, "slug": t.slug, "name": t.name, "dateCreated": iso(t.created_ms), "isMember": False,
        "teamRole": None, "flags": {"idp:provisioned": False}, "access": list(_TEAM_ACCESS), "hasAccess": True,
        "isPending": False, "memberCount": sum(1 for m in world.members if not m.pending and t.slug in m.teams),
        "avatar": dict(_AVATAR), "externalTeams": [],
    }
    if detailed:
        out["projects"] = [project(world, p) for p in world.projects if p.team == t.slug]
    return out


ORG_ROLES = (("member", "Member", ["event:read", "project:read", "org:read", "member:read", "team:read"]),
             ("admin", "Admin", ["event:admin", "project:admin", "org:read", "member:read", "team:admin"]),
             ("manager", "Manager", ["event:admin", "project:admin", "org:write", "member:admin", "team:admin"]),
             ("owner", "Owner", ["event:admin", "project:admin", "org:admin", "member:admin", "team:admin"]))


def member_detail(world: Served, m: Member) -> dict:
    """OrganizationMember detail: the list item plus the roles this member could be given."""
    roles = [{"id": rid, "name": name, "desc": f"{name} of the organization", "scopes": scopes, "allowed": True,
              "isAllowed": True, "isRetired": False, "isGlobal": rid == "owner", "is_global": rid == "owner",
              "isTeamRolesAllowed": True, "minimumTeamRole": "contributor"} for rid, name, scopes in ORG_ROLES]
    team_roles = [{"id": rid, "name": name, "desc": f"{name} of a team", "scopes": scopes, "allowed": True,
                   "isAllowed": True, "isRetired": False, "isTeamRolesAllowed": True, "isMinimumRoleFor": None}
                  for rid, name, scopes in (("contributor", "Contributor", ["event:read", "project:read"]),
                                            ("admin", "Team Admin", ["event:admin", "project:admin"]))]
    owners = [x for x in world.members if x.role == "owner" and not x.pending]
    return {**member(world, m), "invite_link": None, "isOnlyOwner": owners == [m], "orgRoleList": roles,
            "teamRoleList": team_roles}


def member(world: Served, m: Member) -> dict:
    """OrganizationMember list item; a pending invite has no user and its email as name."""
    user = None
    if not m.pending:
        name = m.key.title()
        user = {
            "id": m.user_id, "name": name, "username": m.email, "email": m.email,
            "avatarUrl": gravatar(m.email), "isActive": True, "isSuspended": False, "hasPasswordAuth": True,
            "isManaged": False, "dateJoined": iso(m.created_ms), "lastLogin": iso(m.created_ms + DAY_MS),
            "has2fa": False, "lastActive": iso(max(m.created_ms, world.now_ms - (int(m.user_id) % 9) * HOUR_MS)),
            "isSuperuser": False, "isStaff": False, "experiments": {},
            "emails": [{"id": str(int(m.user_id) * 3), "email": m.email, "is_verified": True}],
            "avatar": dict(_AVATAR), "canReset2fa": True,
        }
    role_names = {"owner": "Owner", "manager": "Manager", "admin": "Admin", "member": "Member"}
    return {
        "id": m.id, "email": m.email, "name": user["name"] if user else m.email, "user": user,
        "role": m.role, "roleName": role_names[m.role], "orgRole": m.role, "pending": m.pending,
        "expired": False,
        "flags": {"idp:provisioned": False, "idp:role-restricted": False, "sso:linked": False,
                  "sso:invalid": False, "member-limit:restricted": False, "partnership:restricted": False},
        "dateCreated": iso(m.created_ms), "inviteStatus": "approved",
        "inviterName": None if m.role == "owner" else f"{world.members[0].email}",
        "teams": list(m.teams), "teamRoles": [{"teamSlug": s, "role": None} for s in m.teams],
        "externalUsers": [],
    }


def gravatar(email: str) -> str:
    return f"https://secure.gravatar.com/avatar/{hashlib.md5(email.encode()).hexdigest()}?s=32&d=mm"


def environment(name: str, k: int, with_hidden: bool) -> dict:
    out = {"id": str(k + 1), "name": name}
    if with_hidden:
        out["isHidden"] = False
    return out


# ----- tag values, users, hashes --------------------------------------------------------------------
def tag_value(key: str, value: str, entry: list[int], label: str | None = None) -> dict:
    """TagValueSerializer: entry is [count, first_ms, last_ms]."""
    count, first_ms, last_ms = entry
    return {"key": key, "name": label or value, "value": value, "count": count,
            "lastSeen": iso(last_ms), "firstSeen": iso(first_ms)}


def user_fields(u: int) -> dict:
    """The user behind user index u, as events carry it."""
    first = catalog.FIRST_NAMES[u % len(catalog.FIRST_NAMES)]
    last = catalog.LAST_NAMES[(u // len(catalog.FIRST_NAMES)) % len(catalog.LAST_NAMES)]
    return {"id": str(10_000 + u), "email": f"{first}.{last}{u}@example.com", "username": f"{first}{u}",
            "ip_address": f"10.{(u >> 16) & 255}.{(u >> 8) & 255}.{u & 255}",
            "name": f"{first.title()} {last.title()}"}


def project_user(p: Project, u: int, entry: list[int]) -> dict:
    """EventUser as the project users list shows it; `dateCreated` is when it was first seen."""
    f = user_fields(u)
    return {
        "id": str(p.id * 100_000 + u), "tagValue": f"id:{f['id']}", "identifier": f["id"],
        "username": f["username"], "email": f["email"], "name": f["name"], "ipAddress": f["ip_address"],
        "avatarUrl": gravatar(f["email"]), "hash": hashlib.md5(f["id"].encode()).hexdigest(),
        "dateCreated": iso(entry[1]),
    }


def issue_hashes(world: Served, issue: Issue) -> list[str]:
    """1 or 2 grouping hashes per issue; the first is the one events list as `fingerprints`."""
    n = 2 if (issue.id * 0x9E3779B1 >> 7) & 1 else 1
    base = f"{world.seed}:{issue.id}"
    return [hashlib.md5((base if k == 0 else f"{base}:{k}").encode()).hexdigest() for k in range(n)]


def event_hash_index(world: Served, issue: Issue, seq: int, n_hashes: int) -> int:
    """Which of the issue's hashes an event was grouped by (about a quarter go to the second)."""
    return 1 if n_hashes > 1 and (world.event_hash(issue.idx, seq) >> 58) & 3 == 0 else 0


def event_grouping_hash(world: Served, issue: Issue, seq: int) -> str:
    """The hash an event was grouped by: one of the hashes of the issue it was born in. A merge
    moves the event and its hash to the surviving issue, as Sentry moves the GroupHash rows."""
    own = issue_hashes(world, world.event_source(issue, seq))
    return own[event_hash_index(world, issue, seq, len(own))]


def absorbed_hashes(world: Served, issue: Issue) -> list[str]:
    """Every hash an issue holds: its own, then those of the issues merged into it (at any depth)."""
    out = list(issue_hashes(world, issue))
    for other in world.merged:
        survivor = other
        while survivor.merged_into is not None:
            survivor = survivor.merged_into
        if survivor is issue:
            out.extend(h for h in issue_hashes(world, other) if h not in out)
    return out


# ----- issues -------------------------------------------------------------------------------------
def _stats(world: Served, issue: Issue, period: str) -> list[list[int]]:
    """Event counts per bucket ending at the virtual now, as [[bucket_start_sec, n], ...]."""
    n, size = STATS_BUCKETS[period]
    end = world.now_ms - world.now_ms % size + size
    edges = [end - (n - k) * size for k in range(n + 1)]
    floor = world.retention_ms
    idx = [bisect_left(issue.times, max(e, floor)) for e in edges]
    return [[edges[k] // 1000, idx[k + 1] - idx[k]] for k in range(n)]


def assignee(issue: Issue) -> dict | None:
    """`assignedTo`: a team carries no email."""
    if issue.assigned is None:
        return None
    kind, ident, name = issue.assigned
    if kind == "team":
        return {"type": "team", "id": ident, "name": name}
    return {"type": "user", "id": ident, "name": name.title(), "email": f"{name}@acme.example"}


def _metadata(issue: Issue) -> dict:
    return {"type": issue.exc_type, "value": issue.exc_value, "filename": issue.filename,
            "function": issue.function}


def priority(issue: Issue) -> str:
    if issue.priority:  # set through the API
        return issue.priority
    if issue.level == "fatal" or issue.substatus == "escalating":
        return "high"
    return "medium" if issue.level == "error" else "low"


def issue(world: Served, i: Issue, base_url: str, stats_period: str | None = "24h") -> dict:
    """StreamGroupSerializerSnuba shape (org issue list)."""
    a = world.agg(i)
    cut = 1000 if world.seen_in_seconds else 1
    first, last = iso(a.first_ms // cut * cut), iso(a.last_ms // cut * cut)
    stats = {stats_period: _stats(world, i, stats_period)} if stats_period else {}
    return {
        "id": str(i.id), "shareId": None, "shortId": i.short_id, "title": i.title, "culprit": i.culprit,
        "permalink": f"{base_url}/organizations/{world.org_slug}/issues/{i.id}/",
        "logger": None, "level": i.level, "status": i.status, "statusDetails": dict(i.status_details),
        "substatus": i.substatus, "isPublic": bool(i.is_public),
        "platform": catalog.platform_family(i.project.platform).event_platform,
        "priority": priority(i), "priorityLockedAt": None, "seerFixabilityScore": None,
        "seerAutofixLastTriggered": None, "seerExplorerAutofixLastTriggered": None,
        "project": {"id": str(i.project.id), "name": i.project.name, "slug": i.project.slug,
                    "platform": i.project.platform},
        "type": "error", "issueType": "error", "issueCategory": "error", "metadata": _metadata(i),
        "numComments": 0, "assignedTo": assignee(i), "isBookmarked": i.bookmarked,
        "isSubscribed": i.subscribed, "subscriptionDetails": None, "hasSeen": i.has_seen,
        "annotations": [], "isUnhandled": not i.handled,
        "count": str(a.count), "userCount": a.user_count, "firstSeen": first, "lastSeen": last,
        "stats": stats,
        "lifetime": {"count": str(a.count), "userCount": a.user_count, "firstSeen": first,
                     "lastSeen": last, "stats": None},
        "filtered": None,
        "derivedData": {"blocker": "", "progress": "not_started", "status": "none", "viewCount": 0,
                        "hasOpenFixPr": False, "isAssigned": i.assigned is not None, "hasRootCause": False,
                        "lastCompletedAutofixStep": "", "lastProgressedAt": None},
        "matchingEventId": None, "matchingEventEnvironment": None,
    }


# What `expand=` adds to an issue list item (the schema lists them all as required; the server
# sends each only when asked: FACTS §3, organization_group_index `expand`).
EXPANSIONS = ("inbox", "integrationIssues", "latestEventHasAttachments", "owners", "sentryAppIssues", "sessions")


def issue_expansions(world: Served, i: Issue, expand: set[str]) -> dict:
    out: dict = {}
    if "inbox" in expand:
        out["inbox"] = {"reason": 0 if i.substatus == "new" else 2, "date_added": iso(i.created_ms),
                        "reason_details": {"until": None, "count": None, "window": None, "user_count": None,
                                           "user_window": None}}
    if "owners" in expand:
        out["owners"] = {"type": "ownershipRule", "owner": f"team:{team(i.project.team, '')['id']}",
                         "date_added": iso(i.created_ms)}
    if "integrationIssues" in expand:
        out["integrationIssues"] = []
    if "sentryAppIssues" in expand:
        out["sentryAppIssues"] = []
    if "latestEventHasAttachments" in expand:
        out["latestEventHasAttachments"] = False
    if "sessions" in expand:
        out["sessionCount"] = world.agg(i).count * 40
    return out


def issue_detail(world: Served, i: Issue, base_url: str) -> dict:
    """GroupSerializer detail shape: list fields plus releases, tags, activity."""
    out = issue(world, i, base_url, "24h")
    a = world.agg(i)
    out["stats"]["30d"] = _stats(world, i, "30d")
    last_rel = i.project.release_at(a.last_ms)
    with_user = sum(1 for u in i.users[a.lo:] if u >= 0)
    tag_keys = _event_tag_keys(i)
    out.update({
        "firstRelease": _release_summary(i.first_release),
        "lastRelease": _release_summary(last_rel),
        "tags": [{"key": k, "name": k.replace(".", " ").replace("_", " ").title(),
                  "totalValues": with_user if k == "user" else a.count} for k in tag_keys],
        "activity": [
            {"id": str(i.id * 100 + n), "type": kind, "data": data, "dateCreated": iso(t), "user": None}
            for n, (kind, t, data) in reversed(list(enumerate(i.activity)))
        ],
        "seenBy": [], "userReportCount": 0, "participants": [], "pluginActions": [],
        "pluginContexts": [], "pluginIssues": [],
    })
    if with_user == 0:
        out["tags"] = [t for t in out["tags"] if t["key"] != "user"]
    return out


def _release_summary(r: Release | None) -> dict | None:
    if r is None:
        return None
    return {"version": r.version, "shortVersion": r.version, "dateCreated": iso(r.created_ms),
            "dateReleased": iso(r.released_ms) if r.released_ms else None, "ref": None, "url": None}


# ----- events -------------------------------------------------------------------------------------
def _pick(options: tuple, h: int, shift: int):
    return options[(h >> shift) % len(options)] if options else None


def _user(world: Served, issue: Issue, seq: int) -> dict | None:
    u = issue.users[seq]
    if u < 0:
        return None
    return {**user_fields(u), "geo": None, "data": None}


def date_received_ms(t: int, h: int) -> int:
    """Ingest lag of an event: 50 ms to about a second after it happened."""
    return t + 50 + (h >> 40) % 900


def _event_tag_keys(issue: Issue) -> list[str]:
    fam = catalog.platform_family(issue.project.platform)
    keys = ["environment", "handled", "level", "mechanism", "os", "os.name", "release", "user"]
    if fam.browsers:
        keys += ["browser", "browser.name", "url"]
    if fam.runtime:
        keys += ["runtime", "server_name"]
    return sorted(keys)


def event_tags(world: Served, issue: Issue, seq: int) -> list[dict]:
    return _tags(world, issue, seq, world.event_hash(issue.idx, seq))


def _tags(world: Served, issue: Issue, seq: int, h: int) -> list[dict]:
    fam = catalog.platform_family(issue.project.platform)
    os_name, os_ver = _pick(fam.os_choices, h, 16)
    rel = issue.project.release_at(issue.times[seq])
    user = _user(world, issue, seq)
    values = {
        "environment": world.environment(issue, seq), "handled": "yes" if issue.handled else "no",
        "level": world.event_level(issue, seq), "mechanism": fam.mechanism, "os": f"{os_name} {os_ver}", "os.name": os_name,
        "release": rel.version if rel else None, "user": f"id:{user['id']}" if user else None,
    }
    if fam.browsers:
        b_name, b_ver = _pick(fam.browsers, h, 20)
        values.update({"browser": f"{b_name} {b_ver}", "browser.name": b_name,
                       "url": f"https://app.acme.example/{issue.module.rsplit('/', 1)[-1].lower()}"})
    if fam.runtime:
        values.update({"runtime": " ".join(fam.runtime), "server_name": f"{issue.project.slug}-{(h >> 24) % 6}"})
    return [{"key": k, "value": v} for k, v in sorted(values.items()) if v is not None]


def event_simple(world: Served, issue: Issue, seq: int) -> dict:
    """SimpleEventSerializer: the default event list item."""
    eid = world.event_id(issue, seq)
    h = world.event_hash(issue.idx, seq)
    return {
        "id": eid, "event.type": "error", "groupID": str(issue.id), "eventID": eid,
        "projectID": str(issue.project.id), "message": issue.title, "title": issue.title,
        "location": issue.filename, "culprit": issue.culprit, "user": _user(world, issue, seq),
        "tags": _tags(world, issue, seq, h),
        "platform": catalog.platform_family(issue.project.platform).event_platform,
        "dateCreated": iso(issue.times[seq]), "crashFile": None, "metadata": _metadata(issue),
    }


def event_full(world: Served, issue: Issue, seq: int) -> dict:
    """EventSerializer: full payload (lists with full=true, and the base of event detail)."""
    fam = catalog.platform_family(issue.project.platform)
    h = world.event_hash(issue.idx, seq)
    eid = world.event_id(issue, seq)
    t = issue.times[seq]
    entries = [_exception_entry(issue, fam, h)]
    if h & 0b11:
        entries.append(_breadcrumbs_entry(t, h))
    if fam.web:
        entries.append(_request_entry(issue, fam, h))
    fingerprint = issue_hashes(world, world.event_source(issue, seq))[0]  # the issue it was born in
    return {
        "id": eid, "groupID": str(issue.id), "eventID": eid, "projectID": str(issue.project.id),
        "message": issue.title, "title": issue.title, "location": issue.filename, "culprit": issue.culprit,
        "user": _user(world, issue, seq), "tags": _tags(world, issue, seq, h),
        "platform": fam.event_platform, "dateCreated": iso(t),
        "dateReceived": iso(date_received_ms(t, h)), "contexts": _contexts(world, issue, fam, h),
        "size": 4_000 + (h >> 8) % 60_000, "entries": entries, "dist": None,
        "sdk": {"name": fam.sdk_name, "version": fam.sdk_version}, "context": {}, "packages": {},
        "type": "error", "metadata": _metadata(issue), "errors": [], "occurrence": None,
        "_meta": {"user": None, "context": None, "entries": {}, "contexts": None, "message": None,
                  "packages": None, "tags": {}, "sdk": None},
        "crashFile": None, "fingerprints": [fingerprint],
        "groupingConfig": {"id": "newstyle:2023-01-11", "enhancements": "KLUv_SAYwQAAkwKRs2xlZ2FjeS4yMDIzLTAxLTEx"},
    }


def event_detail(world: Served, issue: Issue, seq: int, neighbours: tuple[int | None, int | None]) -> dict:
    """Event detail endpoints: full payload plus release, user report and neighbour ids."""
    out = event_full(world, issue, seq)
    rel = issue.project.release_at(issue.times[seq])
    prev_seq, next_seq = neighbours
    out.update({
        "release": release(world, rel) if rel else None, "userReport": None, "sdkUpdates": [],
        "resolvedWith": [],
        "nextEventID": world.event_id(issue, next_seq) if next_seq is not None else None,
        "previousEventID": world.event_id(issue, prev_seq) if prev_seq is not None else None,
    })
    return out


def _contexts(world: Served, issue: Issue, fam: catalog.Platform, h: int) -> dict:
    os_name, os_ver = _pick(fam.os_choices, h, 16)
    ctx = {"os": {"name": os_name, "version": os_ver, "type": "os"}}
    if fam.browsers:
        b_name, b_ver = _pick(fam.browsers, h, 20)
        ctx["browser"] = {"name": b_name, "version": b_ver, "type": "browser"}
    if fam.runtime:
        ctx["runtime"] = {"name": fam.runtime[0], "version": fam.runtime[1], "type": "runtime"}
    if fam.event_platform == "cocoa":
        ctx["device"] = {"family": "iOS", "model": _pick(("iPhone15,2", "iPhone14,5", "iPad13,4"), h, 28),
                         "arch": "arm64e", "type": "device"}
    ctx["trace"] = {"trace_id": f"{mix_hex(h, 1)}{mix_hex(h, 2)}", "span_id": mix_hex(h, 3),
                    "op": "http.server" if fam.web else "default", "status": "internal_error", "type": "trace"}
    return ctx


def mix_hex(h: int, salt: int) -> str:
    """16 hex digits derived from an event hash (trace/span ids)."""
    return hashlib.blake2b(f"{h}:{salt}".encode(), digest_size=8).hexdigest()


def _exception_entry(issue: Issue, fam: catalog.Platform, h: int) -> dict:
    return {"type": "exception", "data": {"values": [{
        "type": issue.exc_type, "value": issue.exc_value, "module": None, "threadId": None,
        "mechanism": {"type": fam.mechanism, "handled": issue.handled},
        "stacktrace": {"frames": _frames(issue, fam), "framesOmitted": None, "registers": None,
                       "hasSystemFrames": True},
        "rawStacktrace": None,
    }], "hasSystemFrames": True, "excOmitted": None}}


def _frames(issue: Issue, fam: catalog.Platform) -> list[dict]:
    """Same stack for every event of an issue (that is what groups them): library frames, then app."""
    js = fam.event_platform == "javascript"
    base = issue.id % 97
    frames = []
    for k, func in enumerate(("dispatch", "run", "call")):
        frames.append(_frame(f"lib/framework/{func}", func, f"framework/{func}{fam.file_ext}",
                             40 + (base + 7 * k) % 300, js, False))
    frames.append(_frame(issue.module, issue.function, issue.filename, issue.lineno, js, True))
    return frames


def _frame(module: str, function: str, filename: str, lineno: int, js: bool, in_app: bool) -> dict:
    context = [[n, f"    step_{n}({function!s})" if n != lineno else f"    raise_error_in({function!s})"]
               for n in range(lineno - 3, lineno + 4)]
    return {
        "function": function, "module": module, "filename": filename,
        "absPath": f"/srv/app/{filename}" if not js else f"webpack:///./{filename}",
        "lineNo": lineno, "colNo": 17 if js else None, "inApp": in_app, "context": context,
        "vars": None, "package": None, "platform": None, "instructionAddr": None, "symbol": None,
        "symbolAddr": None, "trust": None, "errors": None, "rawFunction": None, "lock": None,
    }


def _breadcrumbs_entry(t: int, h: int) -> dict:
    crumbs = []
    for k in range(1 + h % 4):
        category, level, message = catalog.BREADCRUMB_MESSAGES[(h >> (4 * k)) % len(catalog.BREADCRUMB_MESSAGES)]
        crumbs.append({"type": "http" if category == "http" else "default", "category": category,
                       "level": level, "message": message, "timestamp": iso(t - (4 - k) * 1500),
                       "data": None, "event_id": None})
    return {"type": "breadcrumbs", "data": {"values": crumbs}}


def _request_entry(issue: Issue, fam: catalog.Platform, h: int) -> dict:
    path = issue.module.rsplit("/", 1)[-1].rsplit(".", 1)[-1].lower()
    ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
    return {"type": "request", "data": {
        "method": "POST" if h & 4 else "GET", "url": f"https://app.acme.example/{path}/",
        "query": [["page", str(1 + h % 5)]], "fragment": None, "data": None,
        "headers": [["Accept", "application/json"], ["User-Agent", ua]], "cookies": [], "env": None,
        "inferredContentType": None, "apiTarget": None,
    }}
