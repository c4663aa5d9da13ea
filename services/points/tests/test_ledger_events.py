"""The ledger's outbox events are valid contract messages (they are built without validation)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts.events.ledger import PointsCredited, PointsDebited, TransferPosted
from contracts.topics import LEDGER_EVENTS, LEDGER_TRANSFERS
from points.domain.ledger import Transfer
from points.handlers.ledger_events import LedgerEventWriter

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def test_every_event_written_for_a_transfer_decodes_under_its_contract():
    member, other = uuid.uuid4(), uuid.uuid4()
    gift = Transfer(
        uuid.uuid4(), f"member:{member}", f"member:{other}", 42, "gift", uuid.uuid4(), NOW,
        {"issuer": "partner:skymall:issued"}, NOW,
    )  # fmt: skip
    writer = LedgerEventWriter("pfx.")
    messages = writer.for_transfers([gift], NOW, {gift.cause_event_id: uuid.UUID(int=7)})

    decoded = [
        (LEDGER_TRANSFERS if m.topic == writer.transfers_topic else LEDGER_EVENTS).decode(m.payload) for m in messages
    ]
    assert [type(e) for e in decoded] == [TransferPosted, PointsCredited, PointsDebited]
    posted, credited, debited = decoded
    assert posted.payload.issuer_account == "partner:skymall:issued"
    assert posted.occurred_at == NOW
    assert (credited.payload.member_id, debited.payload.member_id) == (other, member)
    assert all(e.correlation_id == uuid.UUID(int=7) for e in decoded)
    assert [m.key for m in messages] == ["ledger", str(other), str(member)]


def test_event_ids_are_stable_and_distinct_per_transfer_and_kind():
    from points.handlers.ledger_events import _CREDITED, _DEBITED, _POSTED, event_id

    transfers = [uuid.uuid4() for _ in range(1_000)]
    ids = [event_id(t, k) for t in transfers for k in (_POSTED, _CREDITED, _DEBITED)]
    assert len(set(ids)) == len(ids)
    assert not set(ids) & set(transfers)
    assert event_id(transfers[0], _POSTED) == event_id(transfers[0], _POSTED)
    assert {i.version for i in ids} == {8}


def test_ids_read_from_the_database_serialise_too():
    from asyncpg.pgproto.pgproto import UUID as DatabaseUUID

    lot = DatabaseUUID(str(uuid.uuid4()))  # an expiry's cause is a lot id, as asyncpg returns it
    expiry = Transfer(uuid.uuid4(), f"member:{uuid.uuid4()}", "breakage", 5, "expiry", lot, NOW, {}, None)
    [posted, debited] = LedgerEventWriter("").for_transfers([expiry], NOW)
    assert LEDGER_TRANSFERS.decode(posted.payload).payload.cause_event_id == uuid.UUID(str(lot))
    assert LEDGER_EVENTS.decode(debited.payload).causation_id == uuid.UUID(str(lot))
