"""Dead letters of every service: list, show, replay after a fix (`make dlq`).

    python -m tools.dlq                       # per topic: how many, how many wait for a replay; then the newest
    python -m tools.dlq list --topic loyalty.partner-purchases.v1 --reason currency --since 2026-12-01
    python -m tools.dlq show points:17
    python -m tools.dlq replay points:17 points:18
    python -m tools.dlq replay --topic loyalty.partner-purchases.v1   # every one not replayed yet

It talks to each service's ops API (`/v1/ops/dead-letters`) with an ops token minted from JWT_SECRET
(the local default unless set); PARTNERS_URL, POINTS_URL and REDEMPTION_URL override where they listen.
A replay writes the record back to its original topic with its key and event id: the consumer's inbox
applies an event at most once, so replaying twice is harmless.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx

from loyalty_runtime.auth import Role, TokenAuthority
from loyalty_runtime.settings import LOCAL_JWT_SECRET

SERVICES = {"partners": 8101, "points": 8102, "redemption": 8103}


class DlqError(Exception):
    """Something the user must fix; the message says what."""


def base_url(service: str) -> str:
    return os.environ.get(f"{service.upper()}_URL", f"http://127.0.0.1:{SERVICES[service]}")


def client(transport: httpx.BaseTransport | None = None) -> httpx.Client:
    token = TokenAuthority(os.environ.get("JWT_SECRET", LOCAL_JWT_SECRET)).issue(
        "ops-dlq", Role.OPS, timedelta(hours=1)
    )
    return httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=10, transport=transport)


def call(http: httpx.Client, service: str, method: str, path: str, **kwargs: Any) -> Any:
    url = base_url(service) + "/v1/ops/dead-letters" + path
    try:
        answer = http.request(method, url, **kwargs)
    except httpx.TransportError as error:
        raise DlqError(
            f"{service} does not answer at {base_url(service)} ({error}); is it running (`make up`)?"
        ) from None
    if answer.status_code >= 400:
        raise DlqError(f"{service} answered {answer.status_code}: {answer.text[:500]}")
    return answer.json()


def split_id(letter_id: str) -> tuple[str, int]:
    service, _, number = letter_id.partition(":")
    if service not in SERVICES or not number.isdigit():
        raise DlqError(f"{letter_id!r} is not a dead letter id; they look like points:17 (see `make dlq`)")
    return service, int(number)


def summary(http: httpx.Client) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for service in SERVICES:
        try:
            found = call(http, service, "GET", "/summary")
        except DlqError as error:
            rows.append({"service": service, "topic": f"(unavailable: {error})", "total": "?", "waiting": "?"})
            continue
        rows += [{"service": service, **topic} for topic in found["topics"]]
    return rows


def print_summary(rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        print("no dead letters")
        return
    print(f"{'service':<11} {'topic':<48} {'total':>6} {'waiting':>8}  newest")
    for r in rows:
        print(f"{r['service']:<11} {r['topic']:<48} {r['total']!s:>6} {r['waiting']!s:>8}  {r.get('newest', '')}")


def list_letters(http: httpx.Client, options: argparse.Namespace) -> list[dict[str, Any]]:
    params = {k: v for k, v in {"topic": options.topic, "reason": options.reason, "since": options.since,
                                "waiting": "true" if options.waiting else None, "limit": options.limit}.items()
              if v is not None}  # fmt: skip
    services = [options.service] if options.service else list(SERVICES)
    letters: list[dict[str, Any]] = []
    for service in services:
        letters += call(http, service, "GET", "", params=params)["items"]
    return sorted(letters, key=lambda letter: letter["dead_at"], reverse=True)[: options.limit]


def print_letters(letters: Sequence[dict[str, Any]]) -> None:
    if not letters:
        print("no dead letters match")
        return
    print(f"{'id':<16} {'dead at':<20} {'topic @ partition:offset':<52} {'error':<24} reason")
    for d in letters:
        place = f"{d['topic']} @ {d['partition']}:{d['offset']}"
        replayed = f" (replayed {d['replays']}x)" if d["replays"] else ""
        print(f"{d['id']:<16} {d['dead_at'][:19]:<20} {place:<52} {d['error_class'][:24]:<24} "
              f"{d['reason'][:100]}{replayed}")  # fmt: skip


def replay(http: httpx.Client, options: argparse.Namespace) -> list[str]:
    if options.topic:
        done: list[str] = []
        for row in summary(http):
            if row["topic"] == options.topic:
                body = {"topic": options.topic, "include_replayed": options.include_replayed}
                done += call(http, row["service"], "POST", "/replay", json=body)["replayed"]
        return done
    if not options.ids:
        raise DlqError("name the dead letters to replay (points:17 ...) or a --topic")
    done = []
    for letter_id in options.ids:
        service, number = split_id(letter_id)
        done += call(http, service, "POST", f"/{number}/replay")["replayed"]
    return done


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command")
    listing = commands.add_parser("list", help="dead letters, newest first")
    listing.add_argument("--service", choices=list(SERVICES))
    listing.add_argument("--topic")
    listing.add_argument("--reason", help="part of the reason or the error class")
    listing.add_argument("--since", help="ISO date-time with a zone, e.g. 2026-12-01T00:00:00Z")
    listing.add_argument("--waiting", action="store_true", help="only those never replayed")
    listing.add_argument("--limit", type=int, default=50)
    show = commands.add_parser("show", help="one dead letter with its value and headers")
    show.add_argument("id", help="e.g. points:17")
    again = commands.add_parser("replay", help="write dead letters back to their original topics")
    again.add_argument("ids", nargs="*", help="e.g. points:17 points:18")
    again.add_argument("--topic", help="every dead letter of this topic not replayed yet")
    again.add_argument("--include-replayed", action="store_true", help="with --topic: also those replayed before")
    commands.add_parser("summary", help="per topic: total and waiting")
    return top


def main(argv: list[str] | None = None, transport: httpx.BaseTransport | None = None) -> int:
    options = parser().parse_args(argv)
    try:
        with client(transport) as http:
            if options.command in (None, "summary"):
                print_summary(summary(http))
                if options.command is None:
                    print()
                    print_letters(list_letters(http, parser().parse_args(["list", "--limit", "10"])))
            elif options.command == "list":
                print_letters(list_letters(http, options))
            elif options.command == "show":
                service, number = split_id(options.id)
                print(json.dumps(call(http, service, "GET", f"/{number}"), indent=2))
            elif options.command == "replay":
                done = replay(http, options)
                print(f"replayed {len(done)}: {' '.join(done)}" if done else "nothing to replay")
    except DlqError as error:
        print(f"[dlq] {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
