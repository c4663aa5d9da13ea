"""Settlement on the real broker and databases: ledger transfers in, statements out, reconciled with the ledger.

Until the points service publishes TransferPosted itself, the test publishes the transfers as it
would (one event per transfer, `occurred_at` = posting time) and writes the same transfers into a
points-shaped database for the reconciliation.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts.events.ledger import TransferPayload, TransferPosted
from contracts.signing import signed_headers
from contracts.topics import LEDGER_TRANSFERS
from tests.support.kafka import read_all
from tests.support.partner_client import (
    SignedPartnerClient,
    bearer,
    ops_token,
    purchase_item,
    refund_item,
    register_partner,
)
from tests.support.services import http, partners_service, points_service, running
from tests.support.waiting import eventually
from tools.reconcile import ledger_figures, reconcile

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
A, B, C = (uuid.UUID(int=i) for i in (1, 2, 3))


@dataclass(frozen=True)
class Posted:
    debit: str
    credit: str
    amount: int
    reason: str
    at: str
    issuer: str | None = None
    transfer_id: uuid.UUID | None = None

    @property
    def id(self) -> uuid.UUID:
        return self.transfer_id or uuid.uuid5(uuid.NAMESPACE_URL, f"{self.debit}>{self.credit}@{self.at}")

    @property
    def posted_at(self) -> datetime:
        return datetime.fromisoformat(self.at)

    def event(self, event_id: uuid.UUID | None = None) -> TransferPosted:
        cause = uuid.uuid5(self.id, "cause")
        return TransferPosted(
            event_id=event_id or uuid.uuid5(self.id, "posted"),
            occurred_at=self.posted_at,
            source="points",
            correlation_id=cause,
            causation_id=cause,
            payload=TransferPayload(
                transfer_id=self.id,
                debit_account=self.debit,
                credit_account=self.credit,
                amount=self.amount,
                reason=self.reason,
                cause_event_id=cause,
                issuer_account=self.issuer,
            ),
        )

    @property
    def key(self) -> bytes:
        for account in (self.debit, self.credit):
            if account.startswith("partner:"):
                return account.split(":")[1].encode()
        return b"ledger"


def member(m: uuid.UUID) -> str:
    return f"member:{m}"


SKYMALL, SKYAIR, TEASHOP = "partner:skymall:issued", "partner:skyair:issued", "partner:teashop:issued"

SEPTEMBER = [
    Posted(SKYMALL, member(A), 1_001, "partner_purchase", "2026-09-03T10:00:00+00:00"),  # skymall v1
    Posted(SKYMALL, member(A), 2_000, "partner_purchase", "2026-09-20T10:00:00+00:00"),  # skymall v2 from 09-16
    Posted(member(A), SKYMALL, 500, "partner_refund", "2026-09-21T10:00:00+00:00"),
    Posted(member(A), "partner:skyair:redeemed", 700, "redemption", "2026-09-10T10:00:00+00:00"),
    Posted(SKYAIR, member(B), 3_000, "partner_purchase", "2026-09-12T10:00:00+00:00"),
    Posted(member(B), "partner:skymall:redeemed", 333, "redemption", "2026-09-30T23:59:59.999999+00:00"),
    Posted(member(A), member(B), 50, "gift", "2026-09-15T10:00:00+00:00", issuer=SKYMALL),
    Posted("card:issued", member(A), 400, "card_purchase", "2026-09-05T10:00:00+00:00"),
    Posted(member(A), "breakage", 120, "expiry", "2026-09-25T00:00:00+00:00", issuer=SKYMALL),
]
OCTOBER = [
    Posted(TEASHOP, member(C), 800, "partner_purchase", "2026-10-01T00:00:00+00:00"),  # the first instant counts
    Posted(member(B), "breakage", 90, "expiry", "2026-10-05T10:00:00+00:00", issuer=SKYAIR),
    Posted("breakage", SKYAIR, 30, "expired_reversal", "2026-10-06T10:00:00+00:00"),
    Posted(f"receivable:{B}", SKYAIR, 100, "clawback", "2026-10-07T10:00:00+00:00"),
    Posted(member(C), "partner:teashop:redeemed", 250, "redemption", "2026-10-08T10:00:00+00:00"),
    Posted(member(A), "partner:skymall:redeemed", 401, "redemption", "2026-10-09T10:00:00+00:00"),
    Posted("unclaimed:card:tok_1", "breakage", 60, "expiry", "2026-10-10T10:00:00+00:00", issuer="card:issued"),
    Posted("unclaimed:card:tok_2", member(C), 10, "claim", "2026-10-11T10:00:00+00:00"),
    Posted(member(B), member(C), 25, "gift", "2026-10-12T10:00:00+00:00", issuer=SKYAIR),
]
EXPECTED = {
    # partner: (period, contract version) -> (issued, issue amount, redeemed, redemption amount, breakage, rebate)
    "2026-09": {
        "skymall": {
            "2020-01-01": (1_001, 500, 0, 0, 0, 0),  # 1001 x 0.5 = 500.5 -> 500 (half to even)
            "2026-09-16": (1_500, 900, 333, 150, 120, 18),  # 333 x 0.45 = 149.85; 120 x 0.6 x 0.25 = 18
        },
        "skyair": {"2020-01-01": (3_000, 3_600, 700, 700, 0, 0)},
        "teashop": {"2020-01-01": (0, 0, 0, 0, 0, 0)},  # no points: one zero line
    },
    "2026-10": {
        "skymall": {"2026-09-16": (0, 0, 401, 180, 0, 0)},  # 401 x 0.45 = 180.45
        "skyair": {"2020-01-01": (-130, -156, 0, 0, 60, 36)},  # refunds exceed issues; 60 x 1.2 x 0.5
        "teashop": {"2020-01-01": (800, 240, 250, 62, 0, 0)},  # 250 x 0.25 = 62.5 -> 62
    },
}
GIFTED = {"2026-09": 50, "2026-10": 25}


def ledger_totals(transfers: Sequence[Posted]) -> dict[str, int]:
    """The programme's figures straight from the transfers, by the account rules."""
    totals = {"issued": 0, "redeemed": 0, "breakage": 0, "gifted": 0}

    def partner(account: str, side: str) -> bool:
        return account.startswith("partner:") and account.endswith(side)

    for t in transfers:
        totals["issued"] += t.amount * (partner(t.debit, ":issued") - partner(t.credit, ":issued"))
        totals["redeemed"] += t.amount * (partner(t.credit, ":redeemed") - partner(t.debit, ":redeemed"))
        partner_expiry = t.reason == "expiry" and (t.issuer or "").startswith("partner:")
        totals["breakage"] += t.amount * (partner_expiry - (t.reason == "expired_reversal"))
        totals["gifted"] += t.amount * (t.reason == "gift")
    return totals


async def publish(kafka: str, topic: str, items: Sequence[tuple[bytes, TransferPosted]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for key, event in items:
            await producer.send_and_wait(topic, event.model_dump_json().encode(), key=key)
    finally:
        await producer.stop()


async def read_only(dsn: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def consumed(dsn: str, records: int) -> bool:
    done = await read_only(dsn, "SELECT coalesce(sum(next_offset), 0) FROM ledger_partitions")
    return done == records


async def fill_points_ledger(dsn: str, transfers: Sequence[Posted]) -> None:
    """The same transfers in a database with the points service's schema, as its ledger would hold them."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            accounts = {a for t in transfers for a in (t.debit, t.credit)} - {"breakage", "card:issued"}
            for account in sorted(accounts):
                prefix, _, rest = account.partition(":")
                owner = uuid.UUID(rest) if prefix in ("member", "receivable") else None
                if owner is not None:
                    await conn.execute("INSERT INTO members (member_id) VALUES ($1) ON CONFLICT DO NOTHING", owner)
                kind = {"member": "member", "receivable": "receivable", "unclaimed": "unclaimed"}.get(prefix)
                kind = kind or ("partner_issued" if account.endswith(":issued") else "partner_redeemed")
                await conn.execute(
                    "INSERT INTO accounts (account_id, kind, member_id) VALUES ($1, $2, $3)", account, kind, owner
                )
            for t in transfers:
                await add_points_transfer(conn, t)
    finally:
        await conn.close()


async def add_points_transfer(conn: asyncpg.Connection, t: Posted) -> None:
    await conn.execute(
        "INSERT INTO transfers (transfer_id, debit_account, credit_account, amount, reason, cause_event_id,"
        " occurred_at, posted_at, memo) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8::jsonb)",
        t.id,
        t.debit,
        t.credit,
        t.amount,
        t.reason,
        uuid.uuid5(t.id, "cause"),
        t.posted_at,
        json.dumps({"issuer": t.issuer} if t.issuer else {}),
    )


def figures(statements: dict[str, Any]) -> dict[str, dict[str, tuple[int, ...]]]:
    return {
        s["partner_id"]: {
            line["contract_valid_from"]: (
                line["points_issued"],
                line["issue_amount_minor"],
                line["points_redeemed"],
                line["redemption_amount_minor"],
                line["breakage_points"],
                line["breakage_rebate_minor"],
            )
            for line in s["lines"]
        }
        for s in statements["statements"]
    }


async def run_reconcile_cli(points_dsn: str, partners_dsn: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tools.reconcile",
        "--points-db",
        points_dsn,
        "--partners-db",
        partners_dsn,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_statements_for_several_partners_over_two_months_reconcile_with_the_ledger(infra, topic_prefix, database):
    partners_dsn, points_dsn = await database("partners"), await database("points")
    service = partners_service(infra.kafka, partners_dsn, topic_prefix)
    settings = service.settings
    topic = LEDGER_TRANSFERS.qualified(topic_prefix)
    ops = bearer(ops_token(settings.jwt_secret))
    async with running(service) as shell, http(shell) as api:
        token = ops_token(settings.jwt_secret)
        skymall = await register_partner(api, token, "skymall", breakage_rebate_share="0.25")
        skyair = await register_partner(
            api, token, "skyair", issue_price_minor_per_point="1.2", redemption_price_minor_per_point="1.0",
            breakage_rebate_share="0.5",
        )  # fmt: skip
        await register_partner(
            api, token, "teashop", currency="HKD", issue_price_minor_per_point="0.3",
            redemption_price_minor_per_point="0.25",
        )  # fmt: skip
        # A second version of skymall's terms, loaded as history (the API only starts new versions from today).
        await read_only(
            partners_dsn,
            "INSERT INTO earn_contracts (partner_id, valid_from, currency, points_per_unit,"
            " issue_price_minor_per_point, redemption_price_minor_per_point, breakage_rebate_share)"
            " VALUES ('skymall', '2026-09-16', 'CNY', 1, 0.6, 0.45, 0.25)",
        )

        # Every transfer once, one delivered twice, one carried again by another event, one the service refuses.
        mix = [*SEPTEMBER, *OCTOBER]
        unreadable = Posted("partner:Not_A_Partner:issued", member(A), 5, "partner_purchase", "2026-10-02T00:00:00Z")
        records = [(t.key, t.event()) for t in mix]
        records += [(mix[0].key, mix[0].event()), (mix[1].key, mix[1].event(uuid.uuid4()))]
        records += [(b"ledger", unreadable.event())]
        await publish(infra.kafka, topic, records)
        await eventually(lambda: consumed(partners_dsn, len(records)), what="the consumer to read every record")
        [dead] = await read_all(infra.kafka, topic_prefix + LEDGER_TRANSFERS.dead_letter, expected=1)
        assert "not a partner account" in dict(dead.headers)["dlq-reason"].decode()

        # Provisional statements are computed from what arrived; September cannot be finalised yet.
        provisional = await api.get("/v1/ops/statements", params={"period": "2026-09"}, headers=ops)
        assert provisional.status_code == 200, provisional.text
        assert provisional.json()["status"] == "provisional"
        assert figures(provisional.json()) == EXPECTED["2026-09"]
        early = await api.post("/v1/ops/settlement-runs", json={"period": "2026-10"}, headers=ops)
        assert early.status_code == 409
        assert "newest transfer consumed was posted 2026-10-12T10:00:00Z" in early.json()["detail"]
        unfinished = await api.post("/v1/ops/settlement-runs", json={"period": "2099-01"}, headers=ops)
        assert unfinished.status_code == 409
        assert "ends 2099-02-01T00:00:00Z" in unfinished.json()["detail"]

        # The ledger moves on: a transfer posted now proves that nothing posted in October is still on its way.
        tick = Posted("card:issued", member(A), 1, "card_purchase", datetime.now(UTC).isoformat())
        await publish(infra.kafka, topic, [(tick.key, tick.event())])
        await eventually(lambda: consumed(partners_dsn, len(records) + 1), what="the consumer to read the tick")

        finals: dict[str, dict[str, Any]] = {}
        for month in ("2026-09", "2026-10"):
            run = await api.post("/v1/ops/settlement-runs", json={"period": month}, headers=ops)
            assert run.status_code == 201, run.text
            finals[month] = run.json()
            assert (finals[month]["status"], finals[month]["finalised_by"], finals[month]["forced"]) == (
                "final",
                "ops-test",
                False,
            )
            assert figures(finals[month]) == EXPECTED[month]
            again = await api.post("/v1/ops/settlement-runs", json={"period": month, "force": True}, headers=ops)
            assert again.status_code == 200
            assert again.json() == finals[month]

        # The sum over all partners is the ledger's total of the transfers published, month by month.
        for month, transfers in (("2026-09", SEPTEMBER), ("2026-10", OCTOBER)):
            statements = finals[month]["statements"]
            expected = ledger_totals(transfers)
            assert sum(s["points_issued"] for s in statements) == expected["issued"]
            assert sum(s["points_redeemed"] for s in statements) == expected["redeemed"]
            assert sum(s["breakage_points"] for s in statements) == expected["breakage"]
            programme = finals[month]["programme"]
            assert (programme["points_issued"], programme["points_redeemed"], programme["gifted_points"]) == (
                expected["issued"],
                expected["redeemed"],
                GIFTED[month],
            )
        october = {s["partner_id"]: s for s in finals["2026-10"]["statements"]}
        assert [(t["currency"], t["net_minor"]) for t in october["teashop"]["totals"]] == [("HKD", 62 - 240)]
        assert october["skyair"]["totals"][0]["net_minor"] == 156 + 36, "the programme owes skyair for its refunds"
        assert "no partner money" in october["skymall"]["gifts"]

        # Finalised statements never change: not through the API (above), not in the database.
        conn = await asyncpg.connect(partners_dsn)
        try:
            with pytest.raises(asyncpg.RaiseError, match="immutable"):
                await conn.execute("UPDATE settlement_lines SET net_minor = 0 WHERE period = '2026-09'")
            with pytest.raises(asyncpg.RaiseError, match="immutable"):
                await conn.execute("DELETE FROM settlement_runs WHERE period = '2026-09'")
        finally:
            await conn.close()

        # A partner reads its own statements, signed; never another partner's.
        partner = SignedPartnerClient(api, skymall)
        own = await partner.send("GET", "/statements?period=2026-09")
        assert own.status_code == 200, own.text
        assert own.json() == next(s for s in finals["2026-09"]["statements"] if s["partner_id"] == "skymall")
        anonymous = await api.get("/v1/partners/skymall/statements", params={"period": "2026-09"})
        assert anonymous.status_code == 401
        stamp = int(datetime.now(UTC).timestamp())
        path = "/v1/partners/skymall/statements"
        signed_by_skyair = signed_headers(skyair.key_id, skyair.secret, "GET", path, b"", stamp)
        foreign = await api.get(path, params={"period": "2026-09"}, headers=signed_by_skyair)
        assert foreign.status_code == 403, foreign.text
        by_ops = await api.get("/v1/partners/skyair/statements", params={"period": "2026-10"}, headers=ops)
        assert by_ops.status_code == 200
        assert by_ops.json()["points_issued"] == -130

        # An arbitrary range is computed from the transfers, priced per version, never final.
        ranged = await partner.send("GET", "/statements?from=2026-09-16T00:00:00Z&to=2026-10-01T00:00:00Z")
        assert ranged.status_code == 200, ranged.text
        assert ranged.json()["status"] == "provisional"
        assert [(line["contract_valid_from"], line["points_issued"]) for line in ranged.json()["lines"]] == [
            ("2026-09-16", 1_500)
        ]

        # Ops export: one row per statement line, amounts as integers in minor units with the currency.
        exported = await api.get("/v1/ops/statements.csv", params={"period": "2026-10"}, headers=ops)
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        lines = [(s["partner_id"], line) for s in finals["2026-10"]["statements"] for line in s["lines"]]
        assert len(rows) == len(lines) == 3
        for row, (partner_id, line) in zip(rows, lines, strict=True):
            assert (row["period"], row["status"], row["partner_id"]) == ("2026-10", "final", partner_id)
            assert row["currency"] == line["currency"]
            for column in ("points_issued", "issue_amount_minor", "redemption_amount_minor", "net_minor"):
                assert int(row[column]) == line[column]
        assert sum(int(r["net_minor"]) for r in rows if r["currency"] == "CNY") == 180 + 156 + 36

    # The reconciliation recomputes every finalised statement from the ledger's own transfers table.
    await fill_points_ledger(points_dsn, [*SEPTEMBER, *OCTOBER, tick])
    report = await reconcile(points_dsn, partners_dsn)
    assert (report.periods, report.statements, report.mismatches) == (2, 6, [])
    code, out = await run_reconcile_cli(points_dsn, partners_dsn)
    assert (code, "6 finalised statement(s) in 2 month(s)" in out) == (0, True), out

    # A statement altered behind the service's back, and a transfer the service never received, are reported.
    conn = await asyncpg.connect(partners_dsn)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")  # deliberately past the trigger
            await conn.execute(
                "UPDATE settlement_statements SET points_redeemed = points_redeemed + 1"
                " WHERE period = '2026-10' AND partner_id = 'teashop'"
            )
    finally:
        await conn.close()
    conn = await asyncpg.connect(points_dsn)
    try:
        await add_points_transfer(conn, Posted(SKYAIR, member(B), 7, "partner_purchase", "2026-09-29T12:00:00+00:00"))
    finally:
        await conn.close()
    report = await reconcile(points_dsn, partners_dsn)
    assert sorted(str(m) for m in report.mismatches) == [
        "2026-09 skyair: points issued is 3000, the ledger says 3007",
        "2026-10 teashop: points redeemed is 251, the ledger says 250",
        "2026-10 teashop: points redeemed summed over its lines is 250, the statement says 251",
    ]
    code, out = await run_reconcile_cli(points_dsn, partners_dsn)
    assert code == 1
    assert "FAIL  2026-10 teashop: points redeemed is 251, the ledger says 250" in out


async def test_transfers_the_points_service_posts_reach_the_statements_exactly(infra, topic_prefix, database):
    """End to end: signed purchases and a refund, the real ledger, its TransferPosted events, a statement."""
    partners_dsn, points_dsn = await database("partners"), await database("points")
    service = partners_service(infra.kafka, partners_dsn, topic_prefix)
    settings = service.settings
    now = datetime.now(UTC)
    window = {"from": (now - timedelta(hours=1)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()}
    async with (
        running(points_service(infra.kafka, points_dsn, topic_prefix)),
        running(service) as shell,
        http(shell) as api,
    ):
        skymall = await register_partner(api, ops_token(settings.jwt_secret), "skymall", valid_from="2026-01-01")
        partner = SignedPartnerClient(api, skymall)
        at = now.isoformat()
        bought = await partner.purchases_batch(
            [purchase_item(f"k-{i}", 10_001 + i, customer_ref=f"c-{i % 2}", occurred_at=at) for i in range(5)]
        )
        assert bought.status_code == 202, bought.text
        refunded = await partner.refund(refund_item("r-0", "order-k-0", 5_000, customer_ref="c-0", occurred_at=at))
        assert refunded.status_code == 202, refunded.text

        async def ledger_posted_everything() -> bool:
            found = await read_only(
                points_dsn, "SELECT count(*) FROM transfers WHERE reason IN ('partner_purchase', 'partner_refund')"
            )
            return found == 6

        await eventually(ledger_posted_everything, what="the ledger to post 5 purchases and a refund")
        conn = await asyncpg.connect(points_dsn)
        try:
            ledger = await ledger_figures(conn, now - timedelta(hours=1), now + timedelta(hours=1))
            posted = {r["transfer_id"]: r["posted_at"] for r in await conn.fetch("SELECT * FROM transfers")}
            reversed_points = await conn.fetchval("SELECT amount FROM transfers WHERE reason = 'partner_refund'")
        finally:
            await conn.close()
        issued = ledger[("skymall", "issued")]
        assert reversed_points > 0
        assert issued == sum(p["points"] for p in bought.json()["accepted"]) - reversed_points

        async def statement() -> dict[str, Any] | None:
            answer = await partner.send(
                "GET", f"/statements?from={window['from']}&to={window['to']}".replace("+", "%2B")
            )
            assert answer.status_code == 200, answer.text
            return answer.json() if answer.json()["points_issued"] == issued else None

        settled = await eventually(statement, what="the statement to show every transfer the ledger posted")
        assert [(line["points_issued"], line["issue_amount_minor"]) for line in settled["lines"]] == [
            (issued, round(Decimal(issued) * Decimal("0.5")))
        ]
        # The events' occurred_at is each transfer's posting time in the ledger, to the microsecond.
        conn = await asyncpg.connect(partners_dsn)
        try:
            received = {r["transfer_id"]: r["posted_at"] for r in await conn.fetch("SELECT * FROM ledger_transfers")}
        finally:
            await conn.close()
        assert received
        assert {t: posted[t] for t in received} == received
