"""Isolating the records a batch cannot apply, and telling transient failures from permanent ones."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, UnknownTopicOrPartitionError

from loyalty_runtime.failures import Backoff, TransientFailureError, is_transient
from loyalty_runtime.isolation import Isolator


class Refused(Exception):
    pass


class Ledger:
    """Applies batches of ints, one 'transaction' each; refuses any batch that holds a poison value."""

    def __init__(self, poison: set[int], outages: int = 0) -> None:
        self.poison = poison
        self.outages = outages
        self.applied: list[int] = []
        self.calls = 0

    async def apply(self, items: Sequence[int]) -> None:
        self.calls += 1
        if self.outages:
            self.outages -= 1
            raise ConnectionRefusedError("database gone")
        bad = self.poison & set(items)
        if bad:
            raise Refused(f"cannot apply {sorted(bad)}")
        self.applied.extend(items)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def isolator(clock: FakeClock, patience: float = 60.0) -> Isolator:
    return Isolator(backoff=Backoff(first=0.1, cap=2.0), patience=patience, sleep=clock.sleep, clock=clock)


async def test_a_good_batch_is_one_transaction():
    ledger = Ledger(poison=set())
    assert await isolator(FakeClock()).apply(range(500), ledger.apply) == []
    assert (ledger.applied, ledger.calls) == (list(range(500)), 1)


async def test_one_poison_record_is_isolated_and_every_other_record_is_applied_in_order():
    ledger = Ledger(poison={137})
    guilty = await isolator(FakeClock()).apply(list(range(500)), ledger.apply)
    assert [(g.item, type(g.error)) for g in guilty] == [(137, Refused)]
    assert ledger.applied == [n for n in range(500) if n != 137]
    assert ledger.calls <= 2 * 10  # about two attempts per halving of 500 records


async def test_several_poison_records_are_each_isolated():
    ledger = Ledger(poison={0, 250, 251, 499})
    guilty = await isolator(FakeClock()).apply(list(range(500)), ledger.apply)
    assert [g.item for g in guilty] == [0, 250, 251, 499]
    assert ledger.applied == [n for n in range(500) if n not in {0, 250, 251, 499}]


async def test_a_batch_of_only_poison_returns_each_record():
    ledger = Ledger(poison={1, 2, 3})
    guilty = await isolator(FakeClock()).apply([1, 2, 3], ledger.apply)
    assert [g.item for g in guilty] == [1, 2, 3]
    assert ledger.applied == []


async def test_a_transient_failure_is_retried_with_growing_capped_waits_and_never_isolates():
    clock = FakeClock()
    ledger = Ledger(poison=set(), outages=8)
    assert await isolator(clock).apply(list(range(10)), ledger.apply) == []
    assert ledger.applied == list(range(10))
    assert len(clock.slept) == 8
    assert clock.slept[0] <= 0.1
    assert max(clock.slept) <= 2.0
    assert clock.slept[-1] > clock.slept[0]


async def test_transient_failures_that_outlast_the_patience_rewind_instead_of_dead_lettering():
    clock = FakeClock()
    ledger = Ledger(poison={3}, outages=10_000)
    with pytest.raises(TransientFailureError, match="still failing after 30 s"):
        await isolator(clock, patience=30).apply(list(range(10)), ledger.apply)
    assert ledger.applied == []
    assert 30 <= clock.now < 33


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError("refused"),
        TimeoutError(),
        asyncpg.exceptions.SerializationError("could not serialize"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.CannotConnectNowError("starting up"),
        asyncpg.exceptions.ConnectionDoesNotExistError("closed in the middle"),
        asyncpg.exceptions.TooManyConnectionsError("too many"),
        asyncpg.exceptions.QueryCanceledError("statement timeout"),
        asyncpg.exceptions.LockNotAvailableError("lock timeout"),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
        KafkaConnectionError("broker gone"),
        UnknownTopicOrPartitionError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_failures_that_retrying_can_fix_are_transient(error):
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad value"),
        KeyError("missing"),
        asyncpg.exceptions.CheckViolationError("violates check"),
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.NumericValueOutOfRangeError("out of range"),
        asyncpg.exceptions.DataError("invalid input for query argument"),
        Refused("the ledger refuses"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_failures_that_retrying_cannot_fix_are_permanent(error):
    assert not is_transient(error)


def test_an_error_caused_by_a_lost_connection_is_transient():
    error = RuntimeError("the batch failed")
    error.__cause__ = ConnectionResetError("reset by peer")
    assert is_transient(error)
