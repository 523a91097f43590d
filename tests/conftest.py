import json
from pathlib import Path

import pytest
from helpers import TOKEN

from sentry_mirror.emulator import Emulator

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(name):
    return json.loads((FIXTURES / name).read_text())


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False, help="also run the slow variants")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow variant: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def fixture():
    return load_fixture


@pytest.fixture
def clean_sentry_env(monkeypatch, tmp_path):
    """No Sentry settings leak in from the environment or a real ~/.sentryclirc."""
    for name in ("SENTRY_AUTH_TOKEN", "SENTRY_TOKEN", "SENTRY_URL", "SENTRY_HOST", "SENTRY_ORG",
                 "SENTRY_MIRROR_DB", "SENTRY_MIRROR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SENTRYCLIRC", str(tmp_path / "none"))


# The emulator of the command-line tests (one a module), serving with the token they check is never
# printed; a module with an emulator of its own defines its own `emu`, which wins over this one.
@pytest.fixture(scope="module")
def emu():
    with Emulator(seed=12, scale="tiny", token=TOKEN) as e:
        yield e
