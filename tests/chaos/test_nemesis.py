"""The nemesis' schedule is a function of its seed, and its executor never has two faults (two Kafka nodes) at once."""

from __future__ import annotations

import asyncio

import pytest

from tools.chaos.nemesis import DURATIONS, LOAD_AFTER_HEAL, POSTGRES, Fault, FaultKind, Nemesis, Window, schedule

NODES = ["kafka-1", "kafka-2", "kafka-3"]
SERVICES = ["partners", "points", "redemption"]
KAFKA = (FaultKind.KAFKA_KILL, FaultKind.KAFKA_PAUSE)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class FakePlatform:
    """Records what is broken; healing takes a few (fake) seconds, as restarts do."""

    def __init__(self, time: FakeTime, *, heals: bool = True) -> None:
        self.time = time
        self.heals = heals
        self.down: set[str] = set()
        self.most_down = 0
        self.most_kafka_down = 0
        self.broken: list[str] = []

    def break_target(self, kind: FaultKind, target: str) -> bool:
        self.down.add(target)
        self.broken.append(target)
        self.most_down = max(self.most_down, len(self.down))
        self.most_kafka_down = max(self.most_kafka_down, len({t for t in self.down if t.startswith("kafka")}))
        return True

    async def heal_target(self, kind: FaultKind, target: str) -> None:
        await self.time.sleep(3.0)
        if not self.heals:
            raise RuntimeError(f"{target} did not come back")
        self.down.discard(target)

    async def wait_whole(self, timeout: float) -> None:
        assert not self.down, f"still down: {self.down}"


def test_the_same_seed_gives_the_same_faults_and_another_seed_other_faults():
    first = schedule(42, 600, NODES, SERVICES)
    assert schedule(42, 600, NODES, SERVICES) == first
    assert schedule(43, 600, NODES, SERVICES) != first
    assert [f.number for f in first] == list(range(1, len(first) + 1))


def test_a_schedule_covers_its_window_with_calms_and_durations_in_their_ranges():
    faults = schedule(7, 300, NODES, SERVICES, gap=(5, 20))
    assert sum(f.calm_before + f.duration for f in faults) >= 300
    for fault in faults:
        assert 5 <= fault.calm_before <= 20
        low, high = DURATIONS[fault.kind]
        assert low <= fault.duration <= high
        expected = NODES if fault.kind in KAFKA else [POSTGRES] if fault.kind.value.startswith("postgres") else SERVICES
        assert fault.target in expected
    assert {f.kind for f in schedule(7, 3600, NODES, SERVICES)} == set(FaultKind), "a long schedule has every kind"


def test_a_platform_without_kafka_nodes_to_break_gets_no_kafka_faults():
    assert not [f for f in schedule(3, 600, [], SERVICES) if f.kind in KAFKA]


def test_a_gap_that_is_not_min_max_is_refused():
    with pytest.raises(ValueError, match="MIN-MAX"):
        schedule(1, 60, NODES, SERVICES, gap=(10, 5))


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_the_nemesis_never_has_two_faults_and_so_never_two_kafka_nodes_down_at_once(seed: int):
    time = FakeTime()
    platform = FakePlatform(time)
    faults = schedule(seed, 900, NODES, SERVICES, gap=(0.1, 1.0))
    nemesis = Nemesis(platform, faults, clock=time.clock, sleep=time.sleep)

    await nemesis.run(Window(900))

    assert sum(1 for f in faults if f.kind in KAFKA) >= 10, "the schedule should stress Kafka"
    assert platform.most_down == 1
    assert platform.most_kafka_down == 1
    assert not platform.down, "everything broken was healed"
    assert [i.fault for i in nemesis.injected] == faults[: len(nemesis.injected)]
    assert all(i.healed is not None for i in nemesis.injected)


async def test_the_nemesis_stops_before_a_fault_that_would_outlast_the_window():
    time = FakeTime()
    faults = [
        Fault(1, FaultKind.SERVICE_KILL, "points", calm_before=5.0, duration=2.0),
        Fault(2, FaultKind.POSTGRES_KILL, POSTGRES, calm_before=5.0, duration=3.0),
    ]
    nemesis = Nemesis(FakePlatform(time), faults, clock=time.clock, sleep=time.sleep)

    await nemesis.run(Window(12.0))  # the first ends (healed) at 10 s; the second would end at 18 s

    assert [i.fault.number for i in nemesis.injected] == [1]


async def test_faults_still_owed_stretch_the_window_and_the_rest_do_not():
    time = FakeTime()
    faults = [Fault(n, FaultKind.SERVICE_KILL, "points", calm_before=5.0, duration=2.0) for n in (1, 2, 3)]
    nemesis = Nemesis(FakePlatform(time), faults, at_least=2, clock=time.clock, sleep=time.sleep)
    window = Window(8.0)  # heals take 3 s: the first fault heals at 10 s, the second (still owed) at 20 s

    await nemesis.run(window)

    assert [i.fault.number for i in nemesis.injected] == [1, 2]
    assert window.end == 20.0 + LOAD_AFTER_HEAL, "load goes on a little after the last owed fault healed"


async def test_a_fault_that_does_not_heal_is_recorded_and_no_further_fault_is_injected():
    time = FakeTime()
    nemesis = Nemesis(FakePlatform(time, heals=False), schedule(9, 600, NODES, SERVICES), clock=time.clock,
                      sleep=time.sleep)  # fmt: skip

    await nemesis.run(Window(600))

    [only] = nemesis.injected
    assert only.healed is None
    assert "did not come back" in str(only.error)
    assert nemesis.unhealed() == [only]


async def test_a_fault_interrupted_midway_is_still_healed():
    time = FakeTime()
    platform = FakePlatform(time)
    started = asyncio.Event()

    async def sleep(seconds: float) -> None:
        if platform.down:
            started.set()
            await asyncio.Event().wait()  # the run is interrupted while the target is down
        await time.sleep(seconds)

    nemesis = Nemesis(platform, [Fault(1, FaultKind.KAFKA_PAUSE, "kafka-2", 1.0, 5.0)], clock=time.clock, sleep=sleep)
    running = asyncio.create_task(nemesis.run(Window(100)))
    await started.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    assert platform.broken == ["kafka-2"]
    assert not platform.down
