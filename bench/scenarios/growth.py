"""Growth: balance reads with a short and a very long history (the expiry run has a scenario of its own: expiry).

Two members are written straight into the bench points database, one with `small_history` transfers and
one with `big_history` (10,000,000 by default): earns and redemptions in turn, the newest earns with live
lots, every balance consistent. GET /v1/members/{id}/balance is then read one request
at a time with the member's token.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from bench import seed
from bench.clients import member_headers
from bench.harness import PROGRESS, Run, Stack
from bench.httpclient import Pool
from bench.report import Report, Result
from bench.stats import summary

NAME = "growth"
WARMUP_READS = 50


async def run(run: Run, report: Report) -> None:
    plan = run.plan
    details: dict[str, Any] = report.details.setdefault(NAME, {})
    # The scheduled expiry job stays out of the way: the benchmark runs it on demand.
    env = {"points": {"EXPIRY_INTERVAL_SECONDS": "86400"}}
    async with Stack(run, NAME, services=("points",), env=env) as stack:
        conn = await asyncpg.connect(stack.dsn("points"))
        pool: Pool | None = None
        try:
            await stack.start()
            pool = Pool(stack.url("points"), 1)
            members = await seed.members(conn, 2)
            histories = {members.ids[0]: plan.small_history, members.ids[1]: plan.big_history}
            for member, entries in histories.items():
                written = Written(entries)
                async with PROGRESS.phase(f"growth: writing a history of {entries:,} transfers", written.status):
                    await seed.history(conn, member, entries, on_progress=written.set)
            await conn.execute("ANALYZE transfers; ANALYZE lots; ANALYZE accounts")
            for member, entries in histories.items():
                path = f"/v1/members/{member}/balance"
                timings = await reads(pool, member, path, plan.balance_reads, f"balance read, {entries:,} entries")
                stats = summary(timings)
                label = f"growth: balance read, {entries:,} entries"
                report.add(
                    [
                        Result(f"{label}, p50", stats["p50"], "ms", note=f"{entries:,} entries"),
                        Result(f"{label}, p99", stats["p99"], "ms"),
                    ]
                )
                details[label] = stats
        finally:
            if pool is not None:
                pool.close()
            await conn.close()


@dataclass
class Written:
    total: int
    done: int = 0

    def set(self, done: int) -> None:
        self.done = done

    def status(self) -> str:
        return f"{self.done:,}/{self.total:,} transfers (INSERT ... SELECT, a million at a time)"


async def reads(pool: Pool, member: uuid.UUID, path: str, count: int, label: str) -> list[float]:
    headers = member_headers(member)
    timings: list[float] = []
    async with PROGRESS.phase(f"growth: {label}", lambda: f"{len(timings):,}/{count:,} requests"):
        for n in range(WARMUP_READS + count):
            sent = time.perf_counter()
            answer = await pool.request("GET", path, b"", headers)
            if answer.status != 200:
                raise RuntimeError(f"GET {path} answered {answer.status}: {answer.body[:200]!r}")
            if n >= WARMUP_READS:
                timings.append((time.perf_counter() - sent) * 1000)
    return timings
