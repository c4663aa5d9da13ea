"""The demo's batch import step: the old programme's members, balances and purchase history (deploy/local/samples/)
imported into the running stack's points database as `make import` does, a dry run first; then a migrated member's
balance and lots with their original expiry, read through the API, and the runs as ops list them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from deploy.local import stack
from loyalty_runtime.db import with_database
from points.domain.imports import Kind, legacy_member_id
from points.handlers.imports import Outcome, import_file, inspect
from points.handlers.ledger_events import LedgerEventWriter
from points.settings import Settings

SAMPLES = Path(__file__).resolve().parent / "samples"
FILES = ((Kind.MEMBERS, "members.csv"), (Kind.BALANCES, "balances.csv"), (Kind.PURCHASES, "purchases.jsonl"))


def points_dsn() -> str:
    """The database the stack's points service uses (stack.service_env)."""
    points = next(s for s in stack.SERVICES if s.name == "points")
    return with_database(stack.database_admin_url(), points.database)


def _import(kind: Kind, name: str, dry_run: bool = False) -> Outcome:
    return asyncio.run(import_file(points_dsn(), inspect(SAMPLES / name, kind), actor="demo",
                                   events=LedgerEventWriter(""), dry_run=dry_run, keep_errors=3,
                                   zone=Settings().programme_zone))  # fmt: skip


def batch_import(client: httpx.Client) -> None:
    from deploy.local import demo  # here, not at the top: demo.py imports this module

    demo.step("Ops migrate the old programme: a dry run of its balances first (make import ... DRY_RUN=1)")
    dry = _import(Kind.BALANCES, "balances.csv", dry_run=True)
    for line in dry.report.lines():
        print(f"    {line}")
    print("    (nothing was written; before the members' import every balance row's member is unknown)")

    demo.step("Ops import members, balances and purchase history (make import FILE=... KIND=...)")
    for kind, name in FILES:
        outcome = _import(kind, name)
        print(f"    {name}: {outcome.status}; {outcome.report.lines()[0]}")
        for error in outcome.report.errors[:2]:
            print(f"      line {error.line}: {error.refusal.value}: {error.detail}")
    again = _import(Kind.BALANCES, "balances.csv")
    print(f"    balances.csv again: {again.status} (a rerun changes nothing)")

    member = legacy_member_id("L-1001")
    balance = client.get(f"{demo.POINTS}/v1/members/{member}/balance", headers=demo.OPS)
    if balance.status_code != 200:
        demo.fail(balance, "reading the migrated member's balance")
    lots = client.get(f"{demo.POINTS}/v1/members/{member}/lots", headers=demo.OPS)
    if lots.status_code != 200:
        demo.fail(lots, "reading the migrated member's lots")
    print(f"    Wang Fang (legacy L-1001): {balance.json()['posted']:,} points, lots expiring "
          + ", ".join(f"{lot['remaining']:,} on {lot['expires_at'][:10]}" for lot in lots.json()["items"]))  # fmt: skip
    runs = client.get(f"{demo.POINTS}/v1/ops/imports", headers=demo.OPS)
    if runs.status_code != 200:
        demo.fail(runs, "listing the import runs")
    print(f"    {len(runs.json()['items'])} import runs, in the ops console at {demo.CONSOLE}/ops/imports")
