"""Dependencies that run on the event loop.

FastAPI runs a plain `def` dependency in a worker thread: for the bearer token check and the store
factories that is a thread hop per request (a queue, a GIL hand-over and a wake-up back), which cost
the order route more CPU than its own SQL. They never block, so they run inline instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def on_loop(dependency: Callable[P, T]) -> Callable[P, Coroutine[Any, Any, T]]:
    """`dependency` as a coroutine function with the same parameters (FastAPI reads them through `__wrapped__`)."""

    @functools.wraps(dependency)
    async def inline(*args: P.args, **kwargs: P.kwargs) -> T:
        return dependency(*args, **kwargs)

    return inline
