"""Every notebook runs top to bottom in a real kernel (nbclient) against a store synced from the
emulator, so none of them rots; every output table and plot it shows is checked to be there."""

import contextlib
import os
from pathlib import Path

import nbformat
import pytest
from helpers import sync
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

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


def run_notebook(path: Path, store: Path | None, env: dict | None = None) -> nbformat.NotebookNode:
    """Run it as Jupyter would: the kernel in the notebook's folder, inheriting our environment
    (SENTRY_MIRROR_DB set to `store`, and `env`)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    with environment({"SENTRY_MIRROR_DB": str(store) if store else "", "SENTRY_MIRROR_CONFIG": "", **(env or {})}):
        client.execute()  # the kernel inherits it
    return nb


@contextlib.contextmanager
def environment(values: dict):
    old = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


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


def test_a_relative_store_path_is_taken_from_where_jupyter_was_started(store_path, tmp_path):
    """`cd project && SENTRY_MIRROR_DB=store.duckdb jupyter lab notebooks/`: the kernel runs in
    notebooks/, and still reads the store beside the folder Jupyter was started in (its PWD)."""
    notebook = NOTEBOOKS[0]
    nb = run_notebook(notebook, None, env={"SENTRY_MIRROR_DB": store_path.name, "PWD": str(store_path.parent)})
    printed = "".join(o.get("text", "") for o in nb.cells[1].outputs if o.output_type == "stream")
    assert f"Reading {store_path}" in printed


def test_with_no_store_the_first_cell_says_how_to_point_at_one(tmp_path):
    with pytest.raises(CellExecutionError) as caught:
        run_notebook(NOTEBOOKS[0], None, env={"PWD": str(tmp_path)})
    message = str(caught.value)
    assert "StoreError" in message and f"no store at {tmp_path / 'sentry.duckdb'}" in message
    assert "SENTRY_MIRROR_DB=" in message and "sentry-mirror demo" in message
