"""A faithful, deterministic emulator of Sentry's Web API (`/api/0/`) for one organization.

    from sentry_mirror.emulator import Emulator
    with Emulator(seed=1, scale="tiny") as emu:
        requests.get(f"{emu.url}/api/0/organizations/{emu.org_slug}/issues/?query=",
                     headers={"Authorization": f"Bearer {emu.token}"})
        emu.truth()          # ground truth, same as GET /_emulator/truth
        emu.advance(24)      # let a day pass, same as POST /_emulator/advance
        emu.faults.add(kind="503", route="*/issues/*", rate=0.2)

Options: `flavor="glitchtip"` serves the same world with GlitchTip's deviations (glitchtip.py);
`deletions=True` lets advance() delete issues; `merges=True` lets it merge issues (also
`emu.merge_issues(primary_id, [other_ids])`, POST /_emulator/merge); `concurrent_limit=N` enforces a per-token
concurrency limit (429); `strict_limits=True` adds Sentry's per-route limit on project events
(60 requests / 60 s). Ground truth also lists teams, members, environments, deploys, releases by
status, assignees, deleted issues, project stats totals, tag values and users.

Modules, lowest first: catalog (names, platforms), model (records, constants, scales), codec (seeded
hash, event ids), clock (virtual time), served (per-event attributes, issue aggregates, lookups),
generate (the world a seed makes), mutations (changes made through the API), advance (new events,
deletions, merges, status changes, releases, deploys, invites as time passes), aggregates (tag
values, users, outcome counts), render (JSON shapes), truth (ground truth), world (World, composed
of the above), search (windows, issue query), pagination (cursors, Link), stats (project stats,
stats_v2), glitchtip (GlitchTip's deviations), api (endpoints), faults (fault injection), server
(HTTP, auth, rate limits).
"""

from .faults import FaultRegistry, FaultRule, parse_spec
from .model import SCALES
from .server import DEFAULT_TOKEN, Emulator, run_emulator, serve_forever
from .world import World

__all__ = [
    "DEFAULT_TOKEN", "SCALES", "Emulator", "FaultRegistry", "FaultRule", "World", "parse_spec",
    "run_emulator", "serve_forever",
]
