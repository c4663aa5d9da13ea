"""The demo's daily earnings step: Ada's day by source, a share card anyone with its link can see (and nothing
else), revoked; then ops summarise yesterday for the pushes (DailyEarningsSummarised)."""

from __future__ import annotations

from typing import Any

import httpx


def daily_earnings(client: httpx.Client, me: dict[str, str], member_id: str) -> None:
    """`me`: Ada's headers; `member_id`: hers, which her public card must not show."""
    from deploy.local import demo  # here, not at the top: demo.py imports this module

    demo.step("Ada's daily earnings: today by source, and her running totals (days in Asia/Shanghai)")
    answer = client.get(f"{demo.POINTS}/v1/members/me/daily-earnings", params={"days": 2}, headers=me)
    if answer.status_code != 200:
        demo.fail(answer, "reading Ada's daily earnings")
    earnings = answer.json()
    today, yesterday = earnings["days"]
    sources = ", ".join(f"{source} {points:,}" for source, points in today["by_source"].items() if points)
    print(f"    today {today['date']}: {today['earned']:,} earned, {today['taken_back']:,} taken back, "
          f"{today['net']:,} net ({sources or 'nothing yet'})")  # fmt: skip
    totals = earnings["totals"]
    print(f"    this month {totals['month_to_date']:,} points, since she joined {totals['lifetime']:,}")

    step_share_card(client, me, member_id, today["date"])

    demo.step(f"Ops summarise yesterday ({yesterday['date']}) now: one DailyEarningsSummarised per member who earned")
    answer = client.post(f"{demo.POINTS}/v1/ops/daily-summaries", params={"date": yesterday["date"]}, headers=demo.OPS)
    if answer.status_code != 200:
        demo.fail(answer, "the daily summary of yesterday")
    run = answer.json()
    print(f"    {run['emitted']} summaries emitted for {run['members']} members (asking again emits none twice)")


def step_share_card(client: httpx.Client, me: dict[str, str], member_id: str, day: str) -> None:
    from deploy.local import demo

    demo.step("Ada shares today on a card: her points and their sources under a name she chose, nothing else")
    answer = client.post(
        f"{demo.POINTS}/v1/members/me/share-cards", json={"date": day, "display_name": "Ada", "show_sources": True},
        headers=me,
    )  # fmt: skip
    if answer.status_code != 201:
        demo.fail(answer, "making Ada's share card")
    card: dict[str, Any] = answer.json()
    print(f"    {demo.CONSOLE}/share/{card['url_token']}   (the link is shown once; only its hash is kept)")
    public = client.get(f"{demo.POINTS}/v1/share-cards/{card['url_token']}")  # no token: anyone with the link
    if public.status_code != 200:
        demo.fail(public, "reading the card without signing in")
    if member_id in public.text or "balance" in public.text or "available" in public.text:
        demo.fail(public, "the public card must show no balance and no identifier")
    print(f"    anyone with the link reads: {public.json()}")
    revoked = client.delete(f"{demo.POINTS}/v1/members/me/share-cards/{card['card_id']}", headers=me)
    if revoked.status_code != 204:
        demo.fail(revoked, "revoking the card")
    after = client.get(f"{demo.POINTS}/v1/share-cards/{card['url_token']}")
    if after.status_code != 404:
        demo.fail(after, "the revoked card's link")
    print(f"    revoked: the link now answers {after.status_code} ({after.json()['detail']})")
