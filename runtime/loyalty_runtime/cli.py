"""Command line of every service: `python -m <service> migrate|serve|asyncapi`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
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
        config = uvicorn.Config(
            shell.app,
            host=shell.settings.http_host,
            port=shell.settings.http_port,
            log_config=None,
            loop="uvloop",  # both pinned: a faster event loop and HTTP parser than asyncio's and h11
            http="httptools",
            timeout_graceful_shutdown=int(shell.settings.shutdown_grace_seconds),
        )
        server = uvicorn.Server(config)
        if shell.settings.http_reuse_port:
            server.run(sockets=[shared_port(shell.settings.http_host, shell.settings.http_port)])
        else:
            server.run()
        if not server.started:
            return 3  # as uvicorn.run: the app failed to start
    return 0


def shared_port(host: str, port: int) -> socket.socket:
    """A listening socket that other processes of the same service may bind too (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock
