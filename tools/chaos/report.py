"""The result of a chaos run: one JSON document, and the table printed from it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from tools.chaos.check import Proof
from tools.chaos.load import Kind, Ledger
from tools.chaos.nemesis import Fault, Injected
from tools.chaos.watch import Stall

COLUMNS = ("accepted", "refused", "applied", "lost", "doubled", "wrong", "ghosts", "unanswered")


def result(
    options: dict[str, Any], schedule: list[Fault], injected: list[Injected], ledger: Ledger, proof: Proof,
    stalls: dict[str, Stall], durations: dict[str, float],
) -> dict[str, Any]:  # fmt: skip
    failures = proof.failures()
    return {
        "verdict": "fail" if failures else "pass",
        "failures": failures,
        "options": options,
        "durations_s": durations,
        "faults": {
            "by_kind": dict(Counter(str(i.fault.kind) for i in injected)),
            "injected": [
                {**i.fault.as_json(), "at_s": i.started, "healed_s": i.healed, "error": i.error} for i in injected
            ],
            "schedule": [f.as_json() for f in schedule],
        },
        "requests": {str(kind): t.as_json() for kind, t in proof.tallies.items()},
        "retries": dict(ledger.retries),
        "orders_ended": proof.order_states,
        "stalls": {name: {"seconds": s.seconds, "at_s": s.started, "during": s.during} for name, s in stalls.items()},
        "checks": {
            "invariants": proof.invariants,
            "settlement": proof.settlement,
            "reconcile": proof.reconcile,
            "reconcile_note": proof.reconcile_note,
            "stuck_partitions": proof.lag,
            "dead_letters": proof.dead_letters,
            "outboxes": proof.outboxes,
            "stock": proof.stock,
            "giveaway": proof.giveaway,
            "server_errors": proof.server_errors[:50],
            "unexpected": proof.unexpected[:50],
            "still_waiting": proof.still_waiting[:50],
        },
    }


def write(document: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def table(document: dict[str, Any]) -> str:
    options, faults = document["options"], document["faults"]
    lines = [
        f"chaos run: seed {options['seed']}, {options['seconds']:.0f} s of load, {options['brokers']} Kafka node(s)",
        "",
        f"faults injected: {len(faults['injected'])}  "
        + ", ".join(f"{kind} {n}" for kind, n in sorted(faults["by_kind"].items())),
    ]
    lines += [
        f"  at {i['at_s']:>6.1f} s  {i['kind']:<15} {i['target']:<11} {fault_span(i)}" for i in faults["injected"]
    ]
    lines += ["", f"{'requests':<10}" + "".join(f"{c:>11}" for c in COLUMNS)]
    for kind in Kind:
        row = document["requests"][str(kind)]
        lines.append(f"{kind!s:<10}" + "".join(f"{row[c]:>11}" for c in COLUMNS))
    ended = ", ".join(f"{state} {n}" for state, n in sorted(document["orders_ended"].items()))
    lines += [f"orders ended: {ended or 'none'}", ""]
    lines += [stall_line(name, stall) for name, stall in document["stalls"].items()]
    lines += [*check_lines(document["checks"]), ""]
    lines.append("verdict: PASS" if document["verdict"] == "pass" else "verdict: FAIL")
    lines += [f"  - {failure}" for failure in document["failures"]]
    return "\n".join(lines)


def fault_span(injected: dict[str, Any]) -> str:
    if injected["healed_s"] is None:
        return f"down {injected['duration']:.1f} s, NOT HEALED: {injected['error']}"
    return f"down {injected['duration']:.1f} s, whole again {injected['healed_s'] - injected['at_s']:.1f} s after"


STALLS = {
    "earn": "longest earn stall (accepted purchases waiting, none applied)",
    "intake": "longest intake stall (purchases sent, none answered)",
}


def stall_line(name: str, stall: dict[str, Any]) -> str:
    what = STALLS.get(name, name)
    if not stall["seconds"]:
        return f"{what}: none"
    during = f", during {stall['during']}" if stall["during"] else ""
    return f"{what}: {stall['seconds']:.1f} s (from {stall['at_s']:.1f} s{during})"


def check_lines(checks: dict[str, Any]) -> list[str]:
    def state(items: list[Any], ok: str) -> str:
        return ok if not items else f"{len(items)} FOUND, e.g. {str(items[0])[:160]}"

    drained = [f"{s}: {n}" for s, n in checks["outboxes"].items() if n]
    return [
        f"ledger invariants: {state(checks['invariants'], 'all hold')}",
        f"settlement vs ledger: {state(checks['settlement'], 'agree')}",
        f"reconciliation: {state(checks['reconcile'], checks['reconcile_note'] or 'agrees')}",
        f"consumer groups: {state(checks['stuck_partitions'], 'every partition read to its end')}",
        f"dead letters: {state(checks['dead_letters'], 'none')}",
        f"outboxes: {state(drained, 'drained')}",
        f"stock and give-away: {state(checks['stock'] + checks['giveaway'], 'consistent')}",
        f"server errors (500): {state(checks['server_errors'], 'none')}",
        f"unexpected answers: {state(checks['unexpected'], 'none')}",
    ]
