"""The issue's targets for this machine, and DESIGN.md's goals, judged against a run's results."""

from __future__ import annotations

from bench.report import Report, Result, Verdict

EARN_SHARE_OF_COPY = 0.5
P99_AT_1000_MS = 100.0
GROWTH_TOLERANCE = 1.5
"""Balance reads "do not grow" when the 10M-entry member's p50 is within 1.5x (+0.5 ms) of the 1,000-entry one's."""


def _value(report: Report, name: str) -> Result | None:
    return report.find(name)


def evaluate(report: Report) -> list[Verdict]:
    verdicts = [_earn(report), _latency(report), _growth(report)]
    verdicts += _design_goals(report)
    verdicts += [*_issue14_latency(report), _redemption(report), _expiry(report)]
    return verdicts


def _earn(report: Report) -> Verdict:
    target = f"earn ingestion >= {EARN_SHARE_OF_COPY:.0%} of the plain COPY limit"
    row = _value(report, "earn: ingestion vs COPY limit")
    if row is None or row.ratio is None:
        return Verdict(target, None, "not measured in this run")
    needed = EARN_SHARE_OF_COPY * (row.limit or 0)
    checked = _value(report, "earn: ledger invariants broken after the run")
    if checked is not None and checked.value:
        return Verdict(target, False, f"{row.value:,.0f} events/s, but the ledger broke: {checked.note}")
    if row.ratio >= EARN_SHARE_OF_COPY:
        return Verdict(target, True, f"{row.value:,.0f} events/s is {row.ratio:.0%} of {row.limit:,.0f}")
    return Verdict(
        target, False,
        f"{row.value:,.0f} events/s is {row.ratio:.0%} of {row.limit:,.0f}: short by {needed - row.value:,.0f} "
        f"events/s ({EARN_SHARE_OF_COPY / row.ratio:.1f}x needed)",
    )  # fmt: skip


def _latency(report: Report) -> Verdict:
    target = f"p99 end to end < {P99_AT_1000_MS:.0f} ms at 1,000 events/s"
    row = _value(report, "latency @ 1,000/s: p99")
    if row is None:
        return Verdict(target, None, "not measured in this run")
    batched = _value(report, "latency @ 1,000/s in batches of 10: p99")
    also = f"; in batches of 10: p99 {batched.value:.1f} ms" if batched is not None else ""
    if row.value < P99_AT_1000_MS:
        return Verdict(target, True, f"one purchase per request: p99 {row.value:.1f} ms{also}")
    over = row.value - P99_AT_1000_MS
    return Verdict(target, False, f"one purchase per request: p99 {row.value:.1f} ms, {over:.1f} ms over{also}")


def _growth(report: Report) -> Verdict:
    target = "balance reads do not grow with history"
    small = _value(report, "growth: balance read, 1,000 entries, p50")
    big = next((r for r in report.results if r.name.startswith("growth: balance read, ") and r.name.endswith(
        "entries, p50") and r is not small), None)  # fmt: skip
    if small is None or big is None:
        return Verdict(target, None, "not measured in this run")
    allowed = small.value * GROWTH_TOLERANCE + 0.5
    detail = f"p50 {small.value:.2f} ms with 1,000 entries, {big.value:.2f} ms with {big.note or 'the big history'}"
    return Verdict(target, big.value <= allowed, detail + f" (allowed up to {allowed:.2f} ms)")


def _design_goals(report: Report) -> list[Verdict]:
    goals: list[Verdict] = []
    earn = _value(report, "earn: ingestion vs COPY limit")
    if earn is not None:
        goals.append(Verdict("earn sustained at 5,000 events/s", earn.value >= 5_000,
                             f"{earn.value:,.0f} events/s", "DESIGN.md"))  # fmt: skip
    p99 = _value(report, "latency @ 1,000/s: p99")
    if p99 is not None:
        goals.append(Verdict("p99 request to visible balance <= 50 ms at 1,000/s", p99.value <= 50,
                             f"{p99.value:.1f} ms", "DESIGN.md"))  # fmt: skip
    holds = _value(report, "redemption, many members: holds")
    holds_p99 = _value(report, "redemption, many members: order to hold p99")
    if holds is not None and holds_p99 is not None:
        goals.append(Verdict("holds at 1,000/s with p99 <= 50 ms", holds.value >= 1_000 and holds_p99.value <= 50,
                             f"{holds.value:,.0f} holds/s, p99 {holds_p99.value:.1f} ms", "DESIGN.md"))  # fmt: skip
    return goals


HOLDS_PER_S = 1_000
HOLD_P99_MS = 50.0
OPEN_LOOP_RATE = 500


def _redemption(report: Report) -> Verdict:
    """Issue 14: holds at 1,000/s (closed loop, many members), and p99 order to hold <= 50 ms at 500 orders/s."""
    target = f"redemption: >= {HOLDS_PER_S:,} holds/s; p99 order to hold <= {HOLD_P99_MS:.0f} ms at {OPEN_LOOP_RATE}/s"
    holds = _value(report, "redemption, many members: holds")
    p99 = _value(report, f"redemption, open loop @ {OPEN_LOOP_RATE}/s: order to hold p99")
    if holds is None or p99 is None:
        return Verdict(target, None, "not measured in this run", "issue 14")
    short = []
    if holds.value < HOLDS_PER_S:
        short.append(f"{HOLDS_PER_S / holds.value:.1f}x the holds needed" if holds.value else "no holds")
    if p99.value > HOLD_P99_MS:
        short.append(f"p99 {p99.value - HOLD_P99_MS:.1f} ms over")
    detail = f"{holds.value:,.0f} holds/s; p99 {p99.value:.1f} ms at {OPEN_LOOP_RATE}/s"
    return Verdict(target, not short, detail + (f" ({', '.join(short)})" if short else ""), "issue 14")


LATENCY_P99_MS = (
    ("latency @ 100/s: p99", 25.0, "p99 <= 25 ms at 100 single purchases/s"),
    ("latency @ 1,000/s in batches of 10: p99", 50.0, "p99 <= 50 ms at 1,000/s in batches of 10"),
    ("latency @ 1,000/s: p99", 100.0, "p99 <= 100 ms at 1,000 single purchases/s, every one accepted"),
)
EXPIRY_LOTS = 100_000
EXPIRY_S = 5.0
NOT_BLOCKED_MS = 250.0
"""Earn is "not blocked" by a run when its longest latency meanwhile is within this of its longest one alone."""


def _issue14_latency(report: Report) -> list[Verdict]:
    """Each p99 within its limit, with no request unanswered, lost or refused (the p50 row's note names those)."""
    verdicts = []
    for name, limit, target in LATENCY_P99_MS:
        row, p50 = _value(report, name), _value(report, name.replace(": p99", ": p50"))
        if row is None or p50 is None:
            verdicts.append(Verdict(target, None, "not measured in this run", "issue 14"))
            continue
        accepted, *shortfalls = (p50.note or "").split("; ")
        detail = f"p99 {row.value:.1f} ms" + ("" if row.value <= limit else f", {row.value - limit:.1f} ms over")
        detail += f"; {accepted}" + "".join(f"; {s}" for s in shortfalls)
        verdicts.append(Verdict(target, row.value <= limit and not shortfalls, detail, "issue 14"))
    return verdicts


def _expiry(report: Report) -> Verdict:
    target = f"expiry: {EXPIRY_LOTS:,} lots in <= {EXPIRY_S:.0f} s without blocking earn"
    run = _value(report, f"expiry: run, {EXPIRY_LOTS:,} expiring lots")
    during = _value(report, f"expiry: earn latency during the {EXPIRY_LOTS:,}-lot run, max")
    alone = _value(report, "expiry: earn latency with no run, max")
    if run is None or during is None or alone is None:
        return Verdict(target, None, "not measured in this run", "issue 14")
    blocked = during.value > alone.value + NOT_BLOCKED_MS
    detail = f"{run.value:.1f} s; earn latency max {during.value:.0f} ms during the run, {alone.value:.0f} ms alone" + (
        " (blocked)" if blocked else ""
    )
    return Verdict(target, run.value <= EXPIRY_S and not blocked, detail, "issue 14")
