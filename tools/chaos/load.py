"""The mixed load of a chaos run, and its ledger of what the platform accepted and refused.

Every client behaves as a partner's system, the bank's card system or a member's app does: it
sends a request with its idempotency key (purchase and refund keys, card event ids, gift, claim and
order ids) and sends the very same request again until it gets a definite answer. A 2xx is
"accepted", a 4xx "refused"; no answer, 503 (and 408, 429, 502, 504) mean "retry later". A 500 is
a finding: it is recorded, and the request is retried like any other failure, so that its fate is
still known at the end.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from contracts.events.cards import CardPurchasePayload, CardPurchasePosted
from contracts.money import Money
from tools.cardfeed import MERCHANTS, SOURCE
from tools.chaos.api import Answer, CardSystem, Partner, Platform, Unavailable
from tools.chaos.nemesis import Window
from tools.chaos.setup import Cast, Member

log = logging.getLogger("chaos.load")


class Kind(StrEnum):
    PURCHASE = "purchase"
    REFUND = "refund"
    CARD = "card"
    GIFT = "gift"
    CLAIM = "claim"
    ORDER = "order"


class Outcome(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    UNANSWERED = "unanswered"
    """Still no definite answer when the run stopped waiting."""


class Expect(StrEnum):
    """What the load meant: a valid request the platform must accept, an invalid one it must refuse, or either."""

    ACCEPT = "accept"
    REFUSE = "refuse"
    EITHER = "either"


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    RETRY = "retry"
    SERVER_ERROR = "server-error"


# Requests per second of each kind at --rate 1: about fifteen in all.
RATES: dict[Kind, float] = {
    Kind.PURCHASE: 6.0,
    Kind.CARD: 4.0,
    Kind.GIFT: 2.0,
    Kind.ORDER: 1.5,
    Kind.REFUND: 0.5,
    Kind.CLAIM: 0.5,
}
ACCEPTED: dict[Kind, frozenset[int]] = {
    Kind.PURCHASE: frozenset({202}),
    Kind.REFUND: frozenset({202}),
    Kind.CARD: frozenset({202}),  # the card system's "the in-sync replicas have it"
    Kind.GIFT: frozenset({200, 201}),
    Kind.CLAIM: frozenset({200, 201}),
    Kind.ORDER: frozenset({200, 202}),
}
REFUSALS: dict[Kind, frozenset[int]] = {
    Kind.PURCHASE: frozenset({409, 422}),
    Kind.REFUND: frozenset({409, 422}),
    Kind.CARD: frozenset(),
    Kind.GIFT: frozenset({409, 422}),
    Kind.CLAIM: frozenset({409}),
    Kind.ORDER: frozenset({409}),
}
"""The documented refusals; any other 4xx is refused too, and reported as unexpected."""
RETRY_LATER = frozenset({408, 425, 429, 502, 503, 504})
MAX_IN_FLIGHT = 64
"""Per kind: a client waits before sending more when this many of its requests have no answer yet."""
STARTING_POINTS_MINOR = 300_000  # 3,000 CNY at one point per yuan
WRONG_CURRENCY_SHARE = 0.04


def verdict(kind: Kind, status: int) -> Verdict:
    if status in ACCEPTED[kind]:
        return Verdict.ACCEPTED
    if status in RETRY_LATER:
        return Verdict.RETRY
    if status >= 500:
        return Verdict.SERVER_ERROR
    if 400 <= status < 500:
        return Verdict.REFUSED
    return Verdict.SERVER_ERROR  # a 1xx/3xx or an unlisted 2xx is no answer a client can act on


@dataclass
class Request:
    kind: Kind
    key: str
    """The request's own idempotency key (purchase id, refund id, card transaction id, gift id, ...)."""
    fields: dict[str, Any]
    expect: Expect = Expect.EITHER
    phase: str = "load"
    outcome: Outcome = Outcome.PENDING
    status: int | None = None
    answer: Any = None
    attempts: int = 0
    decided_at: float | None = None


@dataclass
class Ledger:
    """Every request the load made and what became of it, plus the findings met on the way."""

    requests: list[Request] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    retries: Counter[str] = field(default_factory=Counter)

    def add(self, request: Request) -> Request:
        self.requests.append(request)
        return request

    def of(self, kind: Kind) -> list[Request]:
        return [r for r in self.requests if r.kind is kind]

    def accepted(self, kind: Kind) -> list[Request]:
        return [r for r in self.requests if r.kind is kind and r.outcome is Outcome.ACCEPTED]

    def counts(self) -> Counter[str]:
        return Counter(str(r.outcome) for r in self.requests)

    def settle(self, request: Request, answer: Answer, at: float) -> bool:
        """Record a definite answer; False when the request must be sent again."""
        judged = verdict(request.kind, answer.status)
        if judged is Verdict.SERVER_ERROR:
            self.server_errors.append(f"{answer.status} on {request.kind} {request.key}: {answer.detail()}")
            log.error("server error", extra={"kind": str(request.kind), "key": request.key, "status": answer.status,
                                             "detail": answer.detail()})  # fmt: skip
        if judged in (Verdict.RETRY, Verdict.SERVER_ERROR):
            self.retries[str(answer.status)] += 1
            return False
        request.outcome = Outcome.ACCEPTED if judged is Verdict.ACCEPTED else Outcome.REFUSED
        request.status, request.answer, request.decided_at = answer.status, answer.body, at
        self._note_unexpected(request, answer)
        return True

    def _note_unexpected(self, request: Request, answer: Answer) -> None:
        documented = answer.status in ACCEPTED[request.kind] | REFUSALS[request.kind]
        meant = {Expect.ACCEPT: Outcome.ACCEPTED, Expect.REFUSE: Outcome.REFUSED}.get(request.expect)
        if documented and meant in (None, request.outcome):
            return
        self.unexpected.append(
            f"{request.kind} {request.key} (meant: {request.expect}) was answered {answer.status}: {answer.detail()}"
        )


class Workload:
    """What each kind of request looks like; the same seed builds the same requests, in the same order."""

    def __init__(self, seed: int, cast: Cast, ledger: Ledger) -> None:
        self.seed, self.cast, self.ledger = seed, cast, ledger
        self.rng = {kind: random.Random(f"{seed}:{kind}") for kind in Kind}
        self.numbers: Counter[Kind] = Counter()
        self._refunded: set[str] = set()
        self._makers: dict[Kind, Callable[[random.Random, int], Request | None]] = {
            Kind.PURCHASE: self.purchase, Kind.REFUND: self.refund, Kind.CARD: self.card,
            Kind.GIFT: self.gift, Kind.CLAIM: self.claim, Kind.ORDER: self.order,
        }  # fmt: skip

    def build(self, kind: Kind) -> Request | None:
        """The next request of this kind, recorded in the ledger; None when there is nothing to send."""
        self.numbers[kind] += 1
        made = self._makers[kind](self.rng[kind], self.numbers[kind])
        return self.ledger.add(made) if made is not None else None

    def purchase(self, rng: random.Random, n: int, *, partner: Partner | None = None, member: Member | None = None,
                 amount: int | None = None, phase: str = "load") -> Request:  # fmt: skip
        partner = partner or rng.choice(self.cast.partners)
        member = member or rng.choice(self.cast.members)
        wrong_currency = phase == "load" and rng.random() < WRONG_CURRENCY_SHARE
        item = {
            "idempotency_key": f"k-{self.seed}-{phase}-{n}", "customer_ref": member.customer_ref,
            "purchase_id": f"p-{self.seed}-{phase}-{n}", "amount_minor": amount or rng.randint(10, 500) * 100,
            "currency": "USD" if wrong_currency else "CNY", "occurred_at": now(),
        }  # fmt: skip
        fields = {"partner": partner, "partner_id": partner.partner_id, "member": member.member_id, "item": item}
        expect = Expect.REFUSE if wrong_currency else Expect.ACCEPT
        return Request(Kind.PURCHASE, str(item["purchase_id"]), fields, expect, phase)

    def refund(self, rng: random.Random, n: int) -> Request | None:
        """Part or all of a purchase accepted earlier, once per purchase."""
        refundable = [
            r for r in self.ledger.accepted(Kind.PURCHASE) if r.phase == "load" and r.key not in self._refunded
        ]
        if not refundable:
            return None
        purchase = rng.choice(refundable)
        self._refunded.add(purchase.key)
        bought = purchase.fields["item"]
        item = {
            "idempotency_key": f"rk-{self.seed}-{n}", "customer_ref": bought["customer_ref"],
            "refund_id": f"r-{self.seed}-{n}", "purchase_id": bought["purchase_id"],
            "amount_minor": max(1, bought["amount_minor"] // rng.choice((1, 2, 4))), "currency": "CNY",
            "occurred_at": now(),
        }  # fmt: skip
        fields = {"partner": purchase.fields["partner"], "partner_id": purchase.fields["partner_id"], "item": item,
                  "purchase_id": bought["purchase_id"]}  # fmt: skip
        return Request(Kind.REFUND, str(item["refund_id"]), fields, Expect.ACCEPT)

    def card(self, rng: random.Random, n: int) -> Request:
        member = rng.choice(self.cast.members)
        mcc, names, low, high = rng.choice(MERCHANTS)
        event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        event = CardPurchasePosted(
            event_id=event_id, occurred_at=datetime.now(UTC), source=SOURCE, correlation_id=event_id,
            payload=CardPurchasePayload(
                card_token=member.card_token, transaction_id=f"ctx-{self.seed}-{n}",
                amount=Money(amount_minor=rng.randint(low, min(high, 100_000)), currency="CNY"),
                merchant_category_code=mcc, merchant_name=rng.choice(names),
            ),
        )  # fmt: skip
        return Request(Kind.CARD, event.payload.transaction_id, {"event": event, "member": member.member_id},
                       Expect.ACCEPT)  # fmt: skip

    def gift(self, rng: random.Random, n: int) -> Request:
        sender, recipient = rng.sample(self.cast.members, 2)
        gift_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        body = {"gift_id": gift_id, "to_member_id": str(recipient.member_id), "amount": rng.randint(5, 40)}
        return Request(Kind.GIFT, gift_id, {"sender": sender.member_id, "body": body})

    def claim(self, rng: random.Random, n: int) -> Request:
        member = rng.choice(self.cast.members)
        claim_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        return Request(Kind.CLAIM, claim_id, {"member": member.member_id, "activity_id": self.cast.activity_id})

    def order(self, rng: random.Random, n: int) -> Request:
        member = rng.choice(self.cast.members)
        offer = rng.choice(self.cast.offers)
        body = {"partner_id": offer.partner_id, "offer_id": offer.offer_id, "idempotency_key": f"o-{self.seed}-{n}"}
        return Request(Kind.ORDER, body["idempotency_key"], {"member": member.member_id, "body": body})

    def starting_points(self) -> list[Request]:
        """One purchase per member at the first partner, so that every member can give and redeem."""
        first = self.cast.partners[0]
        rng = random.Random(f"{self.seed}:start")
        return [
            self.ledger.add(self.purchase(rng, n, partner=first, member=m, amount=STARTING_POINTS_MINOR, phase="start"))
            for n, m in enumerate(self.cast.members)
        ]


class Load:
    """Sends the workload at a steady rate per kind, each request until it has a definite answer."""

    def __init__(
        self, platform: Platform, cards: CardSystem, workload: Workload, *, rate: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.platform, self.cards, self.workload = platform, cards, workload
        self.ledger = workload.ledger
        self.rate = rate
        self.clock = clock
        self.give_up_at = math.inf
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run(self, window: Window) -> None:
        """Start requests until the window ends; the ones without an answer yet go on (see `drain`)."""
        await asyncio.gather(*(self._ticker(kind, rate * self.rate, window) for kind, rate in RATES.items()))

    async def send_all(self, requests: list[Request]) -> None:
        await asyncio.gather(*(self.deliver(r) for r in requests))

    async def drain(self, timeout: float) -> None:
        """Wait for every request to get its answer; those still without one after `timeout` are unanswered."""
        self.give_up_at = self.clock() + timeout
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def deliver(self, request: Request) -> None:
        backoff = 0.2
        while True:
            request.attempts += 1
            try:
                answer = await self._send(request)
            except Unavailable as why:
                self.ledger.retries[str(why).split(":")[0]] += 1
            else:
                if self.ledger.settle(request, answer, self.clock()):
                    return
            if self.clock() + backoff > self.give_up_at:
                request.outcome = Outcome.UNANSWERED
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 1.5, 2.0)

    async def _ticker(self, kind: Kind, per_second: float, window: Window) -> None:
        if per_second <= 0:
            return
        gate = asyncio.Semaphore(MAX_IN_FLIGHT)
        next_at = self.clock()
        while True:
            next_at += 1.0 / per_second
            if next_at > window.end:
                return
            await asyncio.sleep(max(0.0, next_at - self.clock()))
            request = self.workload.build(kind)
            if request is None:
                continue
            await gate.acquire()  # the client holds back while its earlier requests wait for answers
            next_at = max(next_at, self.clock() - 1.0)
            self._spawn(request, gate)

    def _spawn(self, request: Request, gate: asyncio.Semaphore) -> None:
        task = asyncio.create_task(self.deliver(request), name=f"{request.kind} {request.key}")
        self._tasks.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            self._tasks.discard(done)
            gate.release()

        task.add_done_callback(finished)

    async def _send(self, request: Request) -> Answer:
        f = request.fields
        if request.kind is Kind.PURCHASE:
            return await self.platform.purchase(f["partner"], f["item"])
        if request.kind is Kind.REFUND:
            return await self.platform.refund(f["partner"], f["item"])
        if request.kind is Kind.CARD:
            await self.cards.publish(f["event"])
            return Answer(202, {"event_id": str(f["event"].event_id)})
        if request.kind is Kind.GIFT:
            return await self.platform.gift(f["sender"], f["body"])
        if request.kind is Kind.CLAIM:
            return await self.platform.claim(f["member"], f["activity_id"], request.key)
        return await self.platform.order(f["member"], f["body"])


def now() -> str:
    return datetime.now(UTC).isoformat()
