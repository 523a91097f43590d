"""A faithful, deterministic emulator of Sentry's Web API (`/api/0/`) for one organization.

    from sentry_mirror.emulator import Emulator
    with Emulator(seed=1, scale="tiny") as emu:
        requests.get(f"{emu.url}/api/0/organizations/{emu.org_slug}/issues/?query=",
                     headers={"Authorization": f"Bearer {emu.token}"})
        emu.truth()          # ground truth, same as GET /_emulator/truth
        emu.advance(24)      # let a day pass, same as POST /_emulator/advance
        emu.faults.add(kind="503", route="*/issues/*", rate=0.2)

Modules: world (data model, generation, clock), render (JSON shapes), search (windows, issue
query), pagination (cursors, Link), api (endpoints), faults (fault injection), server (HTTP).
"""

from .faults import FaultRegistry, FaultRule, parse_spec
from .server import DEFAULT_TOKEN, Emulator, run_emulator, serve_forever
from .world import SCALES, World

__all__ = [
    "DEFAULT_TOKEN", "SCALES", "Emulator", "FaultRegistry", "FaultRule", "World", "parse_spec",
    "run_emulator", "serve_forever",
]
