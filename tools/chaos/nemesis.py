"""The nemesis: a seeded schedule of faults, and the executor that injects and heals them one at a time.

The schedule is a pure function of the seed and the platform's shape (how many Kafka nodes, which
services): the same seed always gives the same faults, in the same order, with the same pauses and
durations. It is a list of faults, each with the calm to keep before it (counted from the moment the
previous fault healed) and how long its target stays down or paused. The executor injects them in
order while the load window lasts, heals each one (restart, resume, then waits until the platform
is whole again: every service ready, every Kafka partition fully replicated) before the calm of the
next one begins. So there is never more than one fault at a time, and never more than one Kafka node
down: a three-node cluster with min.insync.replicas 2 keeps taking writes through every fault.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Protocol

log = logging.getLogger("chaos.nemesis")

POSTGRES = "postgres"
DEFAULT_GAP = (5.0, 20.0)
LOAD_AFTER_HEAL = 3.0
"""Seconds of load the window keeps after a fault it was stretched for has healed."""


class FaultKind(StrEnum):
    KAFKA_KILL = "kafka-kill"
    KAFKA_PAUSE = "kafka-pause"
    SERVICE_KILL = "service-kill"
    SERVICE_PAUSE = "service-pause"
    POSTGRES_KILL = "postgres-kill"
    POSTGRES_PAUSE = "postgres-pause"

    @property
    def signal(self) -> signal.Signals:
        return signal.SIGKILL if self.value.endswith("-kill") else signal.SIGSTOP


# How often each kind is drawn, and how long (seconds) its target stays down or paused.
WEIGHTS: dict[FaultKind, int] = {
    FaultKind.KAFKA_KILL: 3,
    FaultKind.KAFKA_PAUSE: 2,
    FaultKind.SERVICE_KILL: 3,
    FaultKind.SERVICE_PAUSE: 2,
    FaultKind.POSTGRES_KILL: 1,
    FaultKind.POSTGRES_PAUSE: 1,
}
DURATIONS: dict[FaultKind, tuple[float, float]] = {
    FaultKind.KAFKA_KILL: (2.0, 6.0),
    FaultKind.KAFKA_PAUSE: (2.0, 8.0),
    FaultKind.SERVICE_KILL: (1.0, 4.0),
    FaultKind.SERVICE_PAUSE: (2.0, 8.0),
    FaultKind.POSTGRES_KILL: (1.0, 3.0),
    FaultKind.POSTGRES_PAUSE: (2.0, 6.0),
}


@dataclass(frozen=True)
class Fault:
    number: int
    kind: FaultKind
    target: str
    """A Kafka node's name (kafka-2), a service (points), or postgres."""
    calm_before: float
    """Seconds without any fault before this one, counted from the moment the previous one healed."""
    duration: float
    """Seconds the target stays down (killed) or paused before it is healed."""

    def describe(self) -> str:
        return f"#{self.number} {self.kind} {self.target} for {self.duration:.1f} s after {self.calm_before:.1f} s calm"

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "kind": str(self.kind)}


def schedule(
    seed: int,
    window_seconds: float,
    kafka_nodes: Sequence[str],
    services: Sequence[str],
    gap: tuple[float, float] = DEFAULT_GAP,
) -> list[Fault]:
    """Faults for a load window: more than can fit (heals take time too); the executor stops at the window's end."""
    if not 0 < gap[0] <= gap[1]:
        raise ValueError(f"the gap between faults must be MIN-MAX seconds with 0 < MIN <= MAX, not {gap}")
    rng = random.Random(seed)
    kinds = [kind for kind in WEIGHTS if kafka_nodes or not kind.value.startswith("kafka")]
    targets: dict[FaultKind, Sequence[str]] = {
        FaultKind.KAFKA_KILL: kafka_nodes,
        FaultKind.KAFKA_PAUSE: kafka_nodes,
        FaultKind.SERVICE_KILL: services,
        FaultKind.SERVICE_PAUSE: services,
        FaultKind.POSTGRES_KILL: [POSTGRES],
        FaultKind.POSTGRES_PAUSE: [POSTGRES],
    }
    faults: list[Fault] = []
    planned = 0.0
    while planned < window_seconds:
        kind = rng.choices(kinds, weights=[WEIGHTS[k] for k in kinds])[0]
        fault = Fault(
            number=len(faults) + 1,
            kind=kind,
            target=rng.choice(list(targets[kind])),
            calm_before=round(rng.uniform(*gap), 1),
            duration=round(rng.uniform(*DURATIONS[kind]), 1),
        )
        faults.append(fault)
        planned += fault.calm_before + fault.duration
    return faults


class Platform(Protocol):
    """What the nemesis needs of the platform it breaks (deploy.local.fleet.Fleet through FleetTargets)."""

    def break_target(self, kind: FaultKind, target: str) -> bool: ...

    async def heal_target(self, kind: FaultKind, target: str) -> None: ...

    async def wait_whole(self, timeout: float) -> None: ...


@dataclass
class Window:
    """The load window. It ends at `end`, and the nemesis moves that end later while it still owes faults."""

    end: float

    def stretch_to(self, at: float) -> None:
        self.end = max(self.end, at)


@dataclass
class Injected:
    fault: Fault
    started: float
    """Seconds since the load began."""
    healed: float | None = None
    error: str | None = None


@dataclass
class Nemesis:
    """Injects the schedule's faults one at a time until the window ends; always heals what it broke.

    It owes `at_least` faults: until that many are injected, a fault that would outlast the window
    stretches it instead, so that slow heals on a busy machine never make a run with fewer faults.
    """

    platform: Platform
    faults: Sequence[Fault]
    at_least: int = 0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    heal_timeout: float = 120.0
    injected: list[Injected] = field(default_factory=list)
    current: Fault | None = None
    origin: float = 0.0

    async def run(self, window: Window) -> None:
        self.origin = self.clock()
        for fault in self.faults:
            owed = len(self.injected) < self.at_least
            ends_at = self.clock() + fault.calm_before + fault.duration
            if ends_at > window.end and not owed:
                log.info("nemesis done: the next fault would outlast the load window", extra={"next": fault.describe()})
                return
            if owed:
                window.stretch_to(ends_at + LOAD_AFTER_HEAL)
            await self.sleep(fault.calm_before)  # the calm is part of the schedule, not a wait for a condition
            if not await self._inject(fault):
                return
            if owed:
                window.stretch_to(self.clock() + LOAD_AFTER_HEAL)

    async def _inject(self, fault: Fault) -> bool:
        """Break, wait, heal; False when the platform did not heal (then no further fault is injected)."""
        record = Injected(fault, round(self.clock() - self.origin, 1))
        self.injected.append(record)
        self.current = fault
        log.info("fault", extra={"fault": fault.describe(), "at_s": record.started})
        try:
            if not self.platform.break_target(fault.kind, fault.target):
                log.warning("fault target was not running", extra={"fault": fault.describe()})
            await self.sleep(fault.duration)
        finally:
            healed = await self._heal(fault, record)
            self.current = None
        return healed

    async def _heal(self, fault: Fault, record: Injected) -> bool:
        try:
            await self.platform.heal_target(fault.kind, fault.target)
            await self.platform.wait_whole(self.heal_timeout)
        except Exception as error:
            record.error = f"{type(error).__name__}: {error}"
            log.error("fault did not heal", extra={"fault": fault.describe(), "error": record.error})
            return False
        record.healed = round(self.clock() - self.origin, 1)
        log.info("healed", extra={"fault": fault.describe(), "took_s": round(record.healed - record.started, 1)})
        return True

    def counts(self) -> Counter[str]:
        return Counter(str(i.fault.kind) for i in self.injected)

    def unhealed(self) -> list[Injected]:
        return [i for i in self.injected if i.healed is None]
