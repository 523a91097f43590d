"""The secrets the receiver checks signatures with: one per service hook, looked up by the hook's
GUID (Sentry's hook id), and the client secret of each internal integration.

They live in a JSON file only its owner can read (mode 0600), never in the store, the logs or a
message. An entry may name an environment variable (`secret_env`) instead of holding the secret.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass

from ...errors import ConfigError


@dataclass(frozen=True)
class Secret:
    value: str
    source: str | None  # the config source whose store rows the deliveries become
    project: str | None = None

    def __repr__(self) -> str:  # never printed, not even by a traceback's locals
        return f"Secret(source={self.source!r}, project={self.project!r})"


class HookSecrets:
    """The secrets file: {"hooks": {GUID: {...}}, "integrations": {NAME: {...}}}."""

    def __init__(self, path: str):
        self.path = path
        self._seen: tuple | None = None  # the file's (inode, size, mtime) when it was last read
        self._data: dict | None = None

    def _current(self) -> dict:
        """The file as the receiver checks each delivery with: read again only when it changed (a
        stat, not a read and a JSON parse, per delivery; `hooks install` renames a new file in)."""
        try:
            st = os.stat(self.path)
            seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            seen = None
        if self._data is None or seen != self._seen:
            self._data, self._seen = self.read(), seen
        return self._data

    def read(self) -> dict:
        try:
            with open(self.path, encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            return {"hooks": {}, "integrations": {}}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the hook secrets file {self.path}: {exc.__class__.__name__}",
                              hint="it must be the JSON file `hooks install` writes") from None
        if not isinstance(data, dict):
            raise ConfigError(f"the hook secrets file {self.path} is not a JSON object")
        data.setdefault("hooks", {})
        data.setdefault("integrations", {})
        return data

    def hook(self, guid: str) -> Secret | None:
        entry = self._current()["hooks"].get(guid)
        return _secret(entry)

    def unset(self, guid: str | None = None) -> list[tuple[str, str | None, str]]:
        """(guid, project, variable) of each hook (or of `guid`) whose secret is to be read from an
        environment variable that is not set: its deliveries cannot be checked, so they are refused."""
        hooks = self._current()["hooks"]
        entries = [(guid, hooks.get(guid))] if guid is not None else sorted(hooks.items())
        return [(g, e.get("project"), e["secret_env"]) for g, e in entries
                if isinstance(e, dict) and not e.get("secret") and e.get("secret_env")
                and not os.environ.get(e["secret_env"])]

    def integrations(self) -> list[Secret]:
        return [s for s in (_secret(e) for e in self._current()["integrations"].values()) if s]

    def add_hook(self, guid: str, secret: str, *, source: str, project: str, url: str) -> None:
        data = self.read()
        data["hooks"][guid] = {"secret": secret, "source": source, "project": project, "url": url}
        self._write(data)

    def add_hook_env(self, guid: str, env_name: str, *, source: str, project: str, url: str) -> None:
        data = self.read()
        data["hooks"][guid] = {"secret_env": env_name, "source": source, "project": project, "url": url}
        self._write(data)

    def remove_hook(self, guid: str) -> bool:
        data = self.read()
        if data["hooks"].pop(guid, None) is None:
            return False
        self._write(data)
        return True

    def _write(self, data: dict) -> None:
        """Written whole to a 0600 file beside it, then renamed over it: never half a file, never
        readable by anyone else, even for an instant."""
        folder = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(prefix=".hook-secrets-", dir=folder)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def _secret(entry) -> Secret | None:
    if not isinstance(entry, dict):
        return None
    value = entry.get("secret") or (os.environ.get(entry["secret_env"]) if entry.get("secret_env") else None)
    return Secret(value, entry.get("source"), entry.get("project")) if value else None
