"""The points service's own commands: `python -m points verify`."""

from __future__ import annotations

import json
import sys

import asyncpg

from loyalty_runtime.cli import Command
from loyalty_runtime.db import redact, wait_for_database
from loyalty_runtime.service import ServiceShell
from points.adapters.invariants import CHECKS
from points.handlers.verify import verify_ledger


async def verify(shell: ServiceShell) -> int:
    """Check every ledger invariant; print the offending rows and exit 1 when one fails."""
    try:
        await wait_for_database(shell.dsn, timeout=5)
        violations = await verify_ledger(shell.dsn)
    except ConnectionError as error:
        print(f"cannot verify: {error}", file=sys.stderr)
        return 2
    except asyncpg.UndefinedTableError:
        print(f"cannot verify: {redact(shell.dsn)} has no ledger yet; start the system with `make up`", file=sys.stderr)
        return 2
    for check in CHECKS:
        broken = next((v for v in violations if v.check == check.name), None)
        print(f"{'FAIL' if broken else 'ok  '}  {check.name}: {check.rule}")
        if broken:
            for row in broken.rows:
                print("        " + json.dumps(row, default=str))
    if violations:
        print(f"\n{len(violations)} invariant(s) broken; the rows above show where.", file=sys.stderr)
        return 1
    print(f"\nall {len(CHECKS)} ledger invariants hold")
    return 0


COMMANDS: dict[str, Command] = {"verify": verify}
