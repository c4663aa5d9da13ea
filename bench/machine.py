"""What a run ran on: commit, cores, memory, and the versions of Kafka, PostgreSQL and Python."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench.harness import ROOT
from deploy.local.cluster import KAFKA_LIBS


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def memory_gib() -> float:
    for line in open("/proc/meminfo"):  # noqa: SIM115 - a short read of a virtual file
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def kafka_version() -> str:
    """From the broker jar's name in .local/kafka/libs (kafka_2.13-4.1.1.jar: 4.1.1)."""
    for jar in sorted(KAFKA_LIBS.glob("kafka_2.13-*.jar")):
        found = re.fullmatch(r"kafka_2\.13-([\d.]+)\.jar", jar.name)
        if found:
            return found.group(1)
    return "unknown"


async def record(admin_dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(admin_dsn)
    try:
        postgres = await conn.fetchval("SHOW server_version")
        settings = {
            r["name"]: r["setting"]
            for r in await conn.fetch(
                "SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])",
                ["synchronous_commit", "shared_buffers", "max_connections", "wal_compression"],
            )
        }
    finally:
        await conn.close()
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "HEAD") + (" (with uncommitted changes)" if dirty else ""),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib(),
        "kafka": kafka_version(),
        "postgresql": postgres,
        "postgresql_settings": settings,
        "python": platform.python_version(),
        "python_implementation": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def summary(machine: dict[str, Any]) -> str:
    return (
        f"commit {machine['commit']}; {machine['cores']} cores, {machine['memory_gib']} GiB; "
        f"Kafka {machine['kafka']}, PostgreSQL {machine['postgresql']}, Python {machine['python']}; "
        f"load average at start {machine['load_average_at_start']}"
    )
