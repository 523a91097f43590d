"""Every notebook's code cells run, in order, against a store synced from the emulator."""

import json
from pathlib import Path

import pandas as pd
import pytest

from sentry_mirror.client import SentryClient
from sentry_mirror.emulator import Emulator
from sentry_mirror.store import Store
from sentry_mirror.sync import Syncer

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("nb") / "store.duckdb"
    with Emulator(seed=5, scale="tiny", token="sntryu_" + "b" * 64) as emu:
        store = Store(str(path))
        Syncer(store, SentryClient(emu.url, emu.token), emu.org_slug).run()
        store.close()
    return path


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(notebook, store_path, monkeypatch):
    monkeypatch.setenv("SENTRY_MIRROR_DB", str(store_path))
    cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    assert cells
    namespace: dict = {}
    frames = 0
    for cell in cells:
        source = "".join(cell["source"])
        *body, last = source.strip().splitlines() or [""]
        exec(compile("\n".join(body), f"{notebook.name}", "exec"), namespace)
        value = eval(last, namespace) if last and not last.startswith(("con.close", "import", "from")) else exec(last, namespace)
        if isinstance(value, pd.DataFrame):
            frames += 1
            assert len(value) > 0, f"empty result in cell:\n{source}"
    assert frames >= 4
