"""`hooks serve`: the receiver and the writer thread, wired to a store and its sources."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from ...errors import MirrorError
from ...storage import sidefiles
from ...storage.store import check_store_path
from ..config import Config
from .drain import Drainer, Refresher
from .receiver import Checker, Limits, Receiver, listen
from .secrets import HookSecrets, Secret
from .spool import HookSpool

log = logging.getLogger(__name__)


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8085
    secrets_path: str | None = None
    limits: Limits = None
    integration_secret_envs: tuple[str, ...] = ()
    refresh_after: float = 1.0


def secrets_path(config: Config, given: str | None) -> str:
    """--secrets, else beside the store."""
    return given or sidefiles.hook_secrets(config.db)


class HookService:
    """Started by `hooks serve` (and in-process by tests and the benchmark)."""

    def __init__(self, config: Config, options: ServeOptions, clients: dict | None = None,
                 stop: threading.Event | None = None):
        if config.db != ":memory:":
            check_store_path(config.db)
        # bound first: a port in use or a bad --host leaves nothing started (no spool folder, no client)
        sock = listen(options.host, options.port)
        try:
            self._build(config, options, clients, stop, sock)
        except BaseException:
            sock.close()
            for client, _ in getattr(self, "clients", {}).values():
                client.close()
            raise

    def _build(self, config: Config, options: ServeOptions, clients: dict | None, stop: threading.Event | None,
               sock) -> None:
        self.stop = stop or threading.Event()
        self.spool = HookSpool(sidefiles.hook_spool(config.db))
        default = config.sources[0].name if len(config.sources) == 1 else None
        if clients is None:
            from ..runner import client_for  # requests, only when serving for real

            clients = {s.name: (client_for(s), s.org) for s in config.sources if s.token}
        self.clients = clients
        self.refresher = Refresher(clients, refresh_after=options.refresh_after)
        self.drainer = Drainer(config.db, self.spool, self.refresher, default_source=default, stop=self.stop)
        integrations = [Secret(os.environ[name], default) for name in options.integration_secret_envs
                        if os.environ.get(name)]
        missing = [name for name in options.integration_secret_envs if not os.environ.get(name)]
        if missing:
            log.warning("no integration client secret in %s: those webhooks are refused", ", ".join(missing))
        secrets = HookSecrets(secrets_path(config, options.secrets_path))
        try:
            for guid, project, variable in secrets.unset():
                log.warning("service hook %s (project %s): its secret variable %s is not set: its deliveries are "
                            "refused", guid, project or "?", variable)
        except MirrorError as exc:  # a malformed secrets file: each delivery is 503 (and logged) until it is fixed
            log.warning("%s", exc)
        self.checker = Checker(secrets, self.spool, options.limits or Limits(), default, integrations,
                               on_spooled=self.drainer.wake.set)
        self.receiver = Receiver(sock, self.checker)

    @property
    def port(self) -> int:
        return self.receiver.server_address[1]

    @property
    def url(self) -> str:
        """Where the receiver listens, as a URL (`hooks serve` prints it)."""
        host, port = self.receiver.server_address[:2]
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    def start(self) -> "HookService":
        waiting = len(self.spool.pending())
        if waiting:
            log.info("%d deliveries were waiting in the spool; writing them first", waiting)
        set_aside = len(self.spool.quarantined())
        if set_aside:
            log.warning("%d deliveries the store refused are kept in %s/quarantine", set_aside, self.spool.folder)
        self.drainer.start()
        self.receiver.start()
        log.debug("receiving Sentry webhooks on %s", self.url)  # `hooks serve` prints it
        return self

    def close(self) -> None:
        """Stop answering (deliveries in flight answered first), then write what the spool holds
        (or leave it for the next start)."""
        self.receiver.stop()
        if not self.spool.flush(10.0):
            log.warning("the spool is still writing; what it keeps is stored at the next start")
        self.stop.set()
        self.drainer.wake.set()
        self.drainer.join(30)
        self.spool.close()
        for client, _ in self.clients.values():
            client.close()

    def __enter__(self) -> "HookService":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
