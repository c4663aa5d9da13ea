"""Every ledger move an ops request makes is in the audit log, in the transaction that moves the points.

`post_changes` calls this for every transfer batch; outside an ops request (consumers, the scheduler, members'
own requests) it does nothing, and so it does when the route wrote its own entries (an adjustment says
`adjustment.posted` itself). The request's generic entry (loyalty_runtime/audit_http.py) still says what was asked.
"""

from __future__ import annotations

from loyalty_runtime import audit
from points.adapters.store import Transaction
from points.domain.ledger import Changes

MAX_LISTED = 20


async def audit_ops_move(tx: Transaction, changes: Changes) -> None:
    if not changes.transfers or audit.current_request() is None:
        return
    accounts = [a for t in changes.transfers for a in (t.credit_account, t.debit_account)]
    subject = next((a for a in accounts if a.startswith("member:")), accounts[0])
    listed = [
        {"transfer_id": str(t.transfer_id), "debit": t.debit_account, "credit": t.credit_account, "amount": t.amount,
         "reason": t.reason}
        for t in changes.transfers[:MAX_LISTED]
    ]  # fmt: skip
    after = {"transfers": len(changes.transfers), "points": sum(t.amount for t in changes.transfers)}
    await audit.record_in_request(tx.conn, "ledger.posted", subject, after=after, details={"transfers": listed})
