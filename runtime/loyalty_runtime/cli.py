"""Command line of every service: `python -m <service> migrate|serve|asyncapi`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import uvicorn

from loyalty_runtime import db
from loyalty_runtime.logs import configure_logging
from loyalty_runtime.service import ServiceShell

log = logging.getLogger(__name__)


async def migrate(shell: ServiceShell) -> list[str]:
    """Create the service's database if it is missing, then apply its migrations."""
    database = urlsplit(shell.dsn).path.lstrip("/")
    await db.wait_for_database(db.with_database(shell.dsn, "postgres"))
    if await db.ensure_database(db.with_database(shell.dsn, "postgres"), database):
        log.info("database created", extra={"database": database})
    return await db.migrate(shell.dsn, shell.migrations)


Command = Callable[[ServiceShell], Awaitable[int]]
"""A service's own command, e.g. points' `verify`; returns the exit code."""


def main(
    build: Callable[[], ServiceShell], argv: list[str] | None = None, commands: dict[str, Command] | None = None
) -> int:
    extra = commands or {}
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["migrate", "serve", "asyncapi", *extra])
    args = parser.parse_args(argv)
    shell = build()
    configure_logging(shell.name, shell.settings.log_level)
    if args.command in extra:
        return asyncio.run(extra[args.command](shell))
    if args.command == "asyncapi":
        print(json.dumps(shell.asyncapi(), indent=2, sort_keys=True))
        return 0
    applied = asyncio.run(migrate(shell))
    log.info("migrations up to date", extra={"applied": applied})
    if args.command == "serve":
        uvicorn.run(
            shell.app,
            host=shell.settings.http_host,
            port=shell.settings.http_port,
            log_config=None,
            loop="uvloop",  # both pinned: a faster event loop and HTTP parser than asyncio's and h11
            http="httptools",
            timeout_graceful_shutdown=int(shell.settings.shutdown_grace_seconds),
        )
    return 0
