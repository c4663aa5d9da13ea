"""Apply a batch in order; when it fails for good, find the records that cause it and apply the rest.

The rules (DESIGN.md, Reliability: "a partition never stops on one record"):
- The batch is applied whole first: one transaction, the fast path.
- A transient failure (see `failures.is_transient`) retries the same records with capped
  exponential backoff. When the failures outlast `patience`, `TransientFailureError` is raised:
  the consumer rewinds the batch and reads it again; nothing is dead-lettered for it.
- A permanent failure splits the records in two halves, applied one after the other (so the
  records of one partition keep their order), and so on down to single records. A single record
  that still fails is guilty: it is returned with its error, and everything else is applied.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from loyalty_runtime.failures import Backoff, TransientFailureError, is_transient

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Guilty(Generic[T]):
    """A record that fails on its own, and why."""

    item: T
    error: Exception


class Isolator:
    def __init__(
        self,
        *,
        backoff: Backoff | None = None,
        patience: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backoff = backoff or Backoff()
        self._patience = patience
        self._sleep = sleep
        self._clock = clock

    async def apply(self, items: Sequence[T], apply: Callable[[Sequence[T]], Awaitable[None]]) -> list[Guilty[T]]:
        """Apply `items` through `apply` (one transaction per call); returns the records that fail on their own."""
        guilty: list[Guilty[T]] = []
        if items:
            await self._split_until_applied(list(items), apply, guilty)
        return guilty

    async def _split_until_applied(
        self, items: list[T], apply: Callable[[Sequence[T]], Awaitable[None]], guilty: list[Guilty[T]]
    ) -> None:
        error = await self._attempt(items, apply)
        if error is None:
            return
        if len(items) == 1:
            guilty.append(Guilty(items[0], error))
            return
        log.info(
            "batch refused; splitting it to find the records that cause it",
            extra={"records": len(items), "error": f"{type(error).__name__}: {error}"[:300]},
        )
        middle = len(items) // 2
        await self._split_until_applied(items[:middle], apply, guilty)
        await self._split_until_applied(items[middle:], apply, guilty)

    async def _attempt(self, items: list[T], apply: Callable[[Sequence[T]], Awaitable[None]]) -> Exception | None:
        """None once applied, or the error when it fails for good."""
        try:
            await self.retry(lambda: apply(items))
        except TransientFailureError:
            raise
        except Exception as error:
            return error
        return None

    async def retry(self, call: Callable[[], Awaitable[R]]) -> R:
        """`call()`, again after each transient failure (with backoff) until it outlasts patience.

        A permanent failure is raised at once; transient ones for longer than `patience` raise
        `TransientFailureError`.
        """
        attempt = 0
        started = self._clock()
        while True:
            try:
                return await call()
            except Exception as error:
                if not is_transient(error):
                    raise
                if self._clock() - started >= self._patience:
                    raise TransientFailureError(
                        f"still failing after {self._patience:.0f} s: {type(error).__name__}: {error}"
                    ) from error
                delay = self._backoff.delay(attempt)
                log.warning(
                    "transient failure; retrying",
                    extra={"attempt": attempt + 1, "retry_in_s": round(delay, 3),
                           "error": f"{type(error).__name__}: {error}"[:300]},
                )  # fmt: skip
                attempt += 1
                await self._sleep(delay)
