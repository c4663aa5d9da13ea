"""Watching the run: the earn stall (sampled from the ledger every 250 ms) and a progress line every few seconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from tools.chaos.load import Kind, Ledger, Load, Outcome
from tools.chaos.nemesis import Nemesis, Window

log = logging.getLogger("chaos.watch")

SAMPLE_SECONDS = 0.25
PROGRESS_SECONDS = 5.0
APPLIED_PURCHASES = "SELECT count(*) FROM earnings WHERE source_key LIKE 'partner:%'"


@dataclass
class Stall:
    seconds: float = 0.0
    started: float | None = None
    """Seconds since the load began."""
    during: str | None = None
    """The fault under way when it began, if any."""


class StallMeter:
    """The longest time work was waiting while nothing got done: `total` items so far, `done` of them done.

    Pure bookkeeping over samples. A sample that could not read `done` (None: the database is down or
    paused) counts as no progress.
    """

    def __init__(self) -> None:
        self.longest = Stall()
        self._done = -1
        self._since: float | None = None
        self._during: str | None = None

    def sample(self, at: float, total: int, done: int | None, fault: str | None = None) -> None:
        if done is not None and done > self._done:
            self._done = done
            self._since = None
        if total - max(self._done, 0) <= 0:
            self._since = None
            return
        if self._since is None:
            self._since, self._during = at, fault
        if at - self._since > self.longest.seconds:
            self.longest = Stall(round(at - self._since, 2), round(self._since, 2), self._during)


class StallWatch:
    """Samples every 250 ms how many purchases were answered, accepted and applied (the last from the points
    database, reconnecting when it comes back), for the earn and intake stalls."""

    def __init__(self, dsn: str, ledger: Ledger, nemesis: Nemesis, clock: Callable[[], float] = time.monotonic) -> None:
        self.dsn, self.ledger, self.nemesis, self.clock = dsn, ledger, nemesis, clock
        self.earn = StallMeter()
        """Earn: accepted purchases waiting for the ledger while the number applied does not grow."""
        self.intake = StallMeter()
        """Intake: purchases waiting for an answer while none is answered."""
        self.applied: int | None = None
        self._conn: asyncpg.Connection | None = None

    async def run(self, origin: float, window: Window) -> None:
        try:
            while self.clock() < window.end:
                self.applied = await self._read()
                fault = self.nemesis.current.describe() if self.nemesis.current else None
                purchases = self.ledger.of(Kind.PURCHASE)
                answered = sum(1 for r in purchases if r.outcome is not Outcome.PENDING)
                accepted = sum(1 for r in purchases if r.outcome is Outcome.ACCEPTED)
                at = self.clock() - origin
                self.earn.sample(at, accepted, self.applied, fault)
                self.intake.sample(at, len(purchases), answered, fault)
                await asyncio.sleep(SAMPLE_SECONDS)
        finally:
            await self._close()

    async def _read(self) -> int | None:
        try:
            async with asyncio.timeout(1.0):
                if self._conn is None:
                    self._conn = await asyncpg.connect(self.dsn)
                return int(await self._conn.fetchval(APPLIED_PURCHASES))
        except Exception:  # any failure of a dying or paused server (asyncpg raises several kinds) is "no reading"
            await self._close()
            return None

    async def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.terminate()  # a paused server would never answer a polite close


async def report_progress(load: Load, nemesis: Nemesis, watch: StallWatch, origin: float, window: Window) -> None:
    """One structured line every few seconds: time, faults so far, requests accepted and applied."""
    while time.monotonic() < window.end:
        await asyncio.sleep(PROGRESS_SECONDS)
        log_progress(load, nemesis, watch, origin)


def log_progress(load: Load, nemesis: Nemesis, watch: StallWatch, origin: float) -> None:
    counts = load.ledger.counts()
    with contextlib.suppress(Exception):  # a progress line never stops the run
        log.info(
            "progress",
            extra={
                "t_s": round(time.monotonic() - origin, 1),
                "faults": len(nemesis.injected),
                "fault_now": nemesis.current.describe() if nemesis.current else None,
                "accepted": counts["accepted"],
                "refused": counts["refused"],
                "in_flight": load.in_flight,
                "purchases_accepted": len(load.ledger.accepted(Kind.PURCHASE)),
                "purchases_applied": watch.applied,
                "retries": sum(load.ledger.retries.values()),
                "server_errors": len(load.ledger.server_errors),
                "earn_stall_s": watch.earn.longest.seconds,
                "intake_stall_s": watch.intake.longest.seconds,
            },
        )
