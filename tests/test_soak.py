"""A short soak in CI: benchmarks/soak.py's main with a tiny world and five SIGKILLs under random
faults, issue deletions and merges; the final clean sync must leave nothing lost or doubled."""

import importlib.util
import re
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "soak.py"


def load_soak():
    spec = importlib.util.spec_from_file_location("soak", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_five_kills_under_faults_end_level(capsys):
    soak = load_soak()
    code = soak.main(["--seed", "3", "--scale", "tiny", "--kills", "5", "--max-delay", "3", "--max-seconds", "40"])
    out = capsys.readouterr().out
    figures = {k: int(v.replace(",", "")) for k, v in re.findall(r"^  ([a-z ]+): ([\d,]+)$", out, re.M)}
    assert figures["kills"] >= 1 and figures["events in truth"] > 0, out
    assert figures["events lost"] == 0 and figures["events doubled"] == 0, out
    assert code == 0, out
