"""`make chaos` in short: a seeded run against three Kafka nodes of its own, with faults, proves exactly-once.

The run starts its own platform (tools/chaos, deploy/local/fleet.py) on free ports, so it touches
nothing else; it kills and pauses Kafka nodes, PostgreSQL and the services while partners, the card
system and members' apps keep sending, then checks every accepted request was applied once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SEED = 21  # its first faults: a Kafka node killed, PostgreSQL killed, the partners service killed, ...
KINDS = ("purchase", "refund", "card", "gift", "claim", "order")


def test_a_short_seeded_chaos_run_injects_faults_of_several_kinds_and_loses_or_doubles_nothing(tmp_path: Path):
    home = tmp_path / "chaos"
    command = [sys.executable, "-m", "tools.chaos", "--seed", str(SEED), "--seconds", "60", "--gap", "2-5",
               "--faults", "3", "--home", str(home)]  # fmt: skip

    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)

    assert run.returncode == 0, f"{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    result = json.loads((home / "result.json").read_text())
    assert result["failures"] == []
    assert result["verdict"] == "pass"
    injected = result["faults"]["injected"]
    assert len(injected) >= 3, injected
    assert len({fault["kind"] for fault in injected}) >= 2, injected
    assert all(fault["healed_s"] is not None for fault in injected)
    requests = result["requests"]
    assert all(requests[kind]["accepted"] > 0 for kind in KINDS), requests
    assert all(requests[kind]["applied"] == requests[kind]["accepted"] for kind in KINDS), requests
    assert "verdict: PASS" in run.stdout
    assert not (home / "kafka").exists(), "without --keep the run leaves only its logs and result"
