"""Every notebook runs top to bottom in a real kernel (nbclient) against a store synced from the
emulator, so none of them rots; every output table and plot it shows is checked to be there."""

import os
from pathlib import Path

import nbformat
import pytest
from helpers import sync
from nbclient import NotebookClient

from sentry_mirror.emulator import Emulator
from sentry_mirror.storage.store import Store

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("nb") / "store.duckdb"
    with Emulator(seed=5, scale="tiny", token="sntryu_" + "b" * 64) as emu:
        store = Store(str(path))
        sync(store, emu)
        emu.advance(24)
        sync(store, emu)
        store.close()
    return path


def run_notebook(path: Path, store: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    old = os.environ.get("SENTRY_MIRROR_DB")
    os.environ["SENTRY_MIRROR_DB"] = str(store)  # the kernel inherits it
    try:
        client.execute()
    finally:
        if old is None:
            os.environ.pop("SENTRY_MIRROR_DB", None)
        else:
            os.environ["SENTRY_MIRROR_DB"] = old
    return nb


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(notebook, store_path):
    nb = run_notebook(notebook, store_path)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    tables = [o for o in outputs if o.output_type == "execute_result" and "text/html" in o.get("data", {})]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(tables) >= 4, "every section shows a table"
    assert all("<td>" in t["data"]["text/html"] for t in tables), "a table came out empty"
    if notebook.name == "error_trends.ipynb":  # on a synced store: no "yet" fallbacks
        assert "yet" not in "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
        assert images, "the trend plot is missing"
        printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
        assert "Worst release:" in printed
