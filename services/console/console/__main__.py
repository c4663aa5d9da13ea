"""`python -m console migrate|serve`."""

from __future__ import annotations

import argparse
import asyncio
import logging

import uvicorn

from console.app import DATABASE, MIGRATIONS, build
from console.settings import Settings
from loyalty_runtime import db
from loyalty_runtime.logs import configure_logging

log = logging.getLogger("console")


async def migrate(settings: Settings) -> list[str]:
    dsn = settings.dsn(DATABASE)
    admin = db.with_database(dsn, "postgres")
    await db.wait_for_database(admin)
    await db.ensure_database(admin, DATABASE if not settings.database_url else dsn.rsplit("/", 1)[-1].split("?")[0])
    return await db.migrate(dsn, MIGRATIONS)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m console")
    parser.add_argument("command", choices=["migrate", "serve"])
    args = parser.parse_args()
    settings = Settings()
    configure_logging("console", settings.log_level)
    applied = asyncio.run(migrate(settings))
    log.info("migrations up to date", extra={"applied": applied})
    if args.command == "serve":
        uvicorn.run(
            build(settings), host=settings.http_host, port=settings.http_port, log_config=None,
            loop="uvloop", http="httptools", timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        )  # fmt: skip
    return 0


raise SystemExit(main())
