"""The bench leans on deploy/local: a rename there must fail here, not an hour into `make bench`."""

from __future__ import annotations

import re

from bench.harness import infrastructure_pids
from bench.machine import kafka_version


def test_the_machine_record_reads_kafkas_version_and_the_stacks_processes():
    assert re.fullmatch(r"\d+\.\d+\.\d+", kafka_version())  # `make test` fetched the jars before pytest runs
    assert set(infrastructure_pids()) <= {"kafka", "postgres"}
