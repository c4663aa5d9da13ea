"""The final proof: every accepted request applied exactly once, as answered; nothing refused applied.

`tally` is pure accounting of the load's ledger against the databases' evidence, one request at a
time, by kind:

- purchase: one earning under its purchase id with the points the 202 answered, moved by one transfer;
- card payment: one earning under its transaction id and event id, moved by one transfer;
- refund: its purchase's refunded amount is the refund's amount (one refund per purchase);
- gift: one gift row with its sender, recipient and amount, and exactly that many points moved;
- claim: one grant of the points answered; the give-away never past its quantity;
- order: one order per idempotency key, ended fulfilled (its hold captured for its points) or
  cancelled / payment_failed (nothing captured), and the offers' stock agrees with the orders.

A request accepted and not applied is *lost*, one applied twice *doubled*, one applied once but not
as answered *wrong*, one refused and applied anyway a *ghost*. `Proof.failures` lists every reason to
fail the run, the ledger invariants, stuck partitions and dead letters included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tools.chaos.evidence import Evidence, Order
from tools.chaos.load import Kind, Ledger, Outcome, Request

FINAL_ORDER_STATES = ("fulfilled", "cancelled", "payment_failed")
MAX_EXAMPLES = 10


@dataclass
class Tally:
    accepted: int = 0
    refused: int = 0
    unanswered: int = 0
    applied: int = 0
    """Accepted, and applied exactly once, as answered."""
    lost: int = 0
    doubled: int = 0
    wrong: int = 0
    ghosts: int = 0
    problems: list[str] = field(default_factory=list)

    def note(self, problem: str) -> None:
        if len(self.problems) < MAX_EXAMPLES:
            self.problems.append(problem)

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


Application = tuple[int, str | None]
"""How many times the platform applied a request, and what differs from its answer (None: nothing)."""


def tally(ledger: Ledger, evidence: Evidence) -> dict[Kind, Tally]:
    tallies = {kind: Tally() for kind in Kind}
    for request in ledger.requests:
        times, detail = APPLICATIONS[request.kind](request, evidence)
        count(tallies[request.kind], request, times, detail)
    return tallies


def count(t: Tally, r: Request, times: int, detail: str | None) -> None:
    name = f"{r.kind} {r.key}"
    if r.outcome is Outcome.ACCEPTED:
        t.accepted += 1
        if times == 0:
            t.lost += 1
            t.note(f"{name} was accepted ({r.status}) but never applied")
        elif times > 1:
            t.doubled += 1
            t.note(f"{name} was applied {times} times")
        elif detail:
            t.wrong += 1
            t.note(f"{name}: {detail}")
        else:
            t.applied += 1
    elif r.outcome is Outcome.REFUSED:
        t.refused += 1
        if times:
            t.ghosts += 1
            t.note(f"{name} was refused ({r.status}) but applied {times} time(s)")
    else:
        t.unanswered += 1
        t.note(f"{name} never got a definite answer ({r.attempts} attempts)")
        if times > 1:
            t.doubled += 1


def purchase_applied(r: Request, ev: Evidence) -> Application:
    item = r.fields["item"]
    return earned(r, ev, f"partner:{r.fields['partner_id']}:{item['purchase_id']}")


def card_applied(r: Request, ev: Evidence) -> Application:
    return earned(r, ev, f"card:{r.key}")


def earned(r: Request, ev: Evidence, source_key: str) -> Application:
    found = ev.earnings.get(source_key)
    if found is None:
        return 0, None
    times = found.transfers if found.points > 0 else 1
    if r.outcome is not Outcome.ACCEPTED:
        return times, None
    answer = r.answer or {}
    if "points" in answer and found.points != answer["points"]:
        return times, f"earned {found.points} points, the answer said {answer['points']}"
    if found.event_id != str(answer.get("event_id")):
        return times, f"applied as event {found.event_id}, the answer said {answer.get('event_id')}"
    if found.points > 0 and found.moved != found.points:
        return times, f"earned {found.points} points but its transfer moved {found.moved}"
    return times, None


def refund_applied(r: Request, ev: Evidence) -> Application:
    found = ev.earnings.get(f"partner:{r.fields['partner_id']}:{r.fields['purchase_id']}")
    if found is None or found.refunded_minor == 0:
        return 0, None
    amount = int(r.fields["item"]["amount_minor"])
    times, rest = divmod(found.refunded_minor, amount)
    detail = f"its purchase shows {found.refunded_minor} refunded for a refund of {amount}" if rest else None
    return max(times, 1), detail


def gift_applied(r: Request, ev: Evidence) -> Application:
    body = r.fields["body"]
    amount = int(body["amount"])
    row, moved = ev.gifts.get(r.key), ev.gift_moved.get(r.key, 0)
    if row is None:
        return (0, None) if moved == 0 else (1, f"{moved} points moved without a gift record")
    times, rest = divmod(moved, amount)
    if (row.sender, row.recipient, row.amount) != (str(r.fields["sender"]), body["to_member_id"], amount):
        return max(times, 1), f"recorded as {row.amount} from {row.sender} to {row.recipient}"
    if rest or times == 0:
        return max(times, 1), f"moved {moved} points for a gift of {amount}"
    return times, None


def claim_applied(r: Request, ev: Evidence) -> Application:
    found = ev.grants.get((str(r.fields["member"]), r.key))
    if found is None:
        return 0, None
    answered = (r.answer or {}).get("points")
    if r.outcome is Outcome.ACCEPTED and found.points != answered:
        return found.grants, f"granted {found.points} points, the answer said {answered}"
    return found.grants, None


def order_applied(r: Request, ev: Evidence) -> Application:
    found = ev.orders.get((str(r.fields["member"]), r.key))
    if found is None:
        return 0, None
    if r.outcome is Outcome.ACCEPTED and str((r.answer or {}).get("order_id")) != found.order_id:
        return 1, f"stored as order {found.order_id}, the answer said {(r.answer or {}).get('order_id')}"
    return 1, order_problem(found)


def order_problem(order: Order) -> str | None:
    if order.state not in FINAL_ORDER_STATES:
        return f"order {order.order_id} is still {order.state}"
    captured = order.hold_status == "posted"
    if order.state == "fulfilled" and (not captured or order.hold_amount != order.points):
        return f"order {order.order_id} is fulfilled but its hold is {order.hold_status} ({order.hold_amount} points)"
    if order.state != "fulfilled" and captured:
        return f"order {order.order_id} is {order.state} but its {order.hold_amount} points were captured"
    return None


APPLICATIONS: dict[Kind, Callable[[Request, Evidence], Application]] = {
    Kind.PURCHASE: purchase_applied,
    Kind.CARD: card_applied,
    Kind.REFUND: refund_applied,
    Kind.GIFT: gift_applied,
    Kind.CLAIM: claim_applied,
    Kind.ORDER: order_applied,
}


def stock_problems(ev: Evidence) -> list[str]:
    """Each offer: nothing left reserved, units sold = units of its fulfilled orders, never beyond its stock."""
    problems = []
    for (partner_id, offer_id), stock in sorted(ev.stock.items()):
        fulfilled = sum(
            o.quantity for o in ev.orders.values()
            if (o.partner_id, o.offer_id) == (partner_id, offer_id) and o.state == "fulfilled"
        )  # fmt: skip
        name = f"{partner_id}/{offer_id}"
        if stock.reserved:
            problems.append(f"{name}: {stock.reserved} units still reserved")
        if stock.sold != fulfilled:
            problems.append(f"{name}: {stock.sold} units sold, {fulfilled} in fulfilled orders")
        if stock.sold > stock.stock:
            problems.append(f"{name}: {stock.sold} units sold of a stock of {stock.stock}")
    return problems


def giveaway_problems(ev: Evidence, cap: int) -> list[str]:
    granted = sum(g.grants for g in ev.grants.values())
    problems = []
    if granted > cap:
        problems.append(f"the give-away granted {granted} claims, past its quantity of {cap}")
    if ev.activity.get("grants_count") != granted:
        problems.append(f"the give-away counts {ev.activity.get('grants_count')} grants, {granted} exist")
    return problems


def still_pending(ledger: Ledger, ev: Evidence) -> list[str]:
    """What an accepted request still waits for (empty once the platform has applied everything)."""
    waiting: list[str] = []
    for r in ledger.requests:
        if r.outcome is not Outcome.ACCEPTED or r.kind not in (Kind.PURCHASE, Kind.CARD, Kind.REFUND, Kind.ORDER):
            continue
        times, detail = APPLICATIONS[r.kind](r, ev)
        if times == 0 or (r.kind is Kind.ORDER and detail and "still" in detail):
            waiting.append(f"{r.kind} {r.key}")
    waiting += [f"{n} rows in the outbox of {service}" for service, n in ev.outboxes.items() if n]
    return waiting


@dataclass
class Proof:
    """Everything the run found; `failures` is empty when it passed."""

    tallies: dict[Kind, Tally]
    stock: list[str] = field(default_factory=list)
    giveaway: list[str] = field(default_factory=list)
    invariants: list[str] = field(default_factory=list)
    settlement: list[str] = field(default_factory=list)
    reconcile: list[str] = field(default_factory=list)
    reconcile_note: str = ""
    lag: list[str] = field(default_factory=list)
    dead_letters: list[str] = field(default_factory=list)
    outboxes: dict[str, int] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    unhealed: list[str] = field(default_factory=list)
    still_waiting: list[str] = field(default_factory=list)
    order_states: dict[str, int] = field(default_factory=dict)

    def failures(self) -> list[str]:
        found = []
        for kind, t in self.tallies.items():
            for what in ("lost", "doubled", "wrong", "ghosts", "unanswered"):
                if getattr(t, what):
                    found.append(f"{getattr(t, what)} {kind} request(s) {WORDS[what]}")
        checks = {
            "server errors (500)": self.server_errors, "unexpected answers": self.unexpected,
            "ledger invariants broken": self.invariants, "stock mismatches": self.stock,
            "give-away problems": self.giveaway, "settlement disagrees with the ledger": self.settlement,
            "reconciliation mismatches": self.reconcile, "stuck partitions": self.lag,
            "dead letters": self.dead_letters, "faults that did not heal": self.unhealed,
            "outboxes not drained": [f"{s}: {n}" for s, n in self.outboxes.items() if n],
        }  # fmt: skip
        found += [f"{len(items)} {what}" for what, items in checks.items() if items]
        return found


WORDS = {
    "lost": "accepted but never applied",
    "doubled": "applied more than once",
    "wrong": "applied, but not as answered",
    "ghosts": "refused, yet applied",
    "unanswered": "never got a definite answer",
}
