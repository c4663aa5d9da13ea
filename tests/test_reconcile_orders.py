"""tools.reconcile_orders: which disagreements between orders and the ledger's holds it reports."""

from __future__ import annotations

import uuid

from tools.reconcile_orders import mismatches_of


def order(state: str, unit_points: int = 3_000, quantity: int = 2) -> dict[str, object]:
    return {"order_id": uuid.uuid4(), "hold_id": uuid.uuid4(), "state": state, "quantity": quantity,
            "unit_points": unit_points}  # fmt: skip


def test_orders_captured_for_their_own_price_agree_and_every_other_case_is_reported():
    fine, cheap, unheld, captured_cancel, released = (order("fulfilled"), order("fulfilled"), order("fulfilled"),
                                                      order("cancelled"), order("cancelled"))  # fmt: skip
    holds = {
        fine["hold_id"]: {"status": "posted", "amount": 6_000},
        cheap["hold_id"]: {"status": "posted", "amount": 8_000},
        unheld["hold_id"]: {"status": "voided", "amount": 6_000},
        captured_cancel["hold_id"]: {"status": "posted", "amount": 6_000},
        released["hold_id"]: {"status": "voided", "amount": 6_000},
    }
    found = mismatches_of([fine, cheap, unheld, captured_cancel, released], holds)  # type: ignore[arg-type]
    assert found == [
        f"order {cheap['order_id']}: 6000 points ordered, the ledger captured 8000",
        f"order {unheld['order_id']} is fulfilled but its hold is voided",
        f"order {captured_cancel['order_id']} is cancelled but the ledger captured its hold",
    ]
