"""File modes: the store is the owner's, what the user asks for is the user's.

`main()` sets umask 077 for the whole process, as the store, its WAL and lock files hold error
data; it keeps the umask it replaced here. A plot or an export is a file the user asked for, to
share as any other: it follows that umask. Outside `main()` (a library call, a test) nothing was
replaced and nothing changes.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

_users: int | None = None  # the umask main() replaced


def keep_user_umask(replaced: int) -> None:
    """Keep the user's umask, the one `main()` replaced with 077 (the first, if it runs twice)."""
    global _users
    if _users is None:
        _users = replaced


@contextlib.contextmanager
def user_umask() -> Iterator[None]:
    """The user's umask while a file the user asked for is written. The umask is the process's:
    only for writing with no other thread creating store files meanwhile."""
    if _users is None:
        yield
        return
    ours = os.umask(_users)
    try:
        yield
    finally:
        os.umask(ours)


def give_to_user(root: Path) -> None:
    """The modes the user's umask gives, on a folder and all it holds, once it is written: for
    files written by DuckDB, which may spill the store's data beside it while it writes them."""
    if _users is None:
        return
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod((0o777 if path.is_dir() else 0o666) & ~_users)
