"""The ledger's invariants (DESIGN.md) as queries that return the rows breaking them."""

from __future__ import annotations

from dataclasses import dataclass

from points.adapters import liability_checks
from points.adapters.daily_earnings import EARNED, MEMBER_CREDITS, MEMBER_DEBITS, TAKEN_BACK, credit_source_sql


@dataclass(frozen=True)
class Check:
    name: str
    rule: str
    sql: str


def _earned_between(summary: str, start: str, end: str) -> str:
    """What the member of row `summary` earned in [start, end) (adapters/daily_earnings.py's rule)."""
    return f"""(SELECT COALESCE(sum(amount), 0) FROM transfers
        WHERE credit_account = 'member:' || {summary}.member_id AND {MEMBER_CREDITS} AND {EARNED}
          AND posted_at >= {start} AND posted_at < {end})"""


def _taken_back_between(summary: str, start: str, end: str) -> str:
    return f"""(SELECT COALESCE(sum(amount), 0) FROM transfers
        WHERE debit_account IN ('member:' || {summary}.member_id, 'receivable:' || {summary}.member_id)
          AND {MEMBER_DEBITS} AND {TAKEN_BACK} AND posted_at >= {start} AND posted_at < {end})"""


_MONTH_START = "(date_trunc('month', s.day::timestamp) AT TIME ZONE d.time_zone)"
"""The start of the month of summary `s`'s day, in the zone its day was summarised in (`d`)."""


def _net_between(summary: str, start: str, end: str) -> str:
    return f"({_earned_between(summary, start, end)} - {_taken_back_between(summary, start, end)})"


CHECKS: tuple[Check, ...] = (
    Check(
        "transfers_balance",
        "the sum of all posted (and of all pending) debits equals the sum of all credits",
        """
        SELECT sum(debits_posted) AS debits_posted, sum(credits_posted) AS credits_posted,
               sum(debits_pending) AS debits_pending, sum(credits_pending) AS credits_pending
        FROM accounts
        HAVING sum(debits_posted) <> sum(credits_posted) OR sum(debits_pending) <> sum(credits_pending)
        """,
    ),
    Check(
        "account_totals_match_transfers",
        "each account's posted totals equal the sum of its transfers",
        """
        WITH d AS (SELECT debit_account AS account_id, sum(amount) AS total FROM transfers GROUP BY 1),
             c AS (SELECT credit_account AS account_id, sum(amount) AS total FROM transfers GROUP BY 1)
        SELECT a.account_id, a.debits_posted, COALESCE(d.total, 0) AS transfer_debits,
               a.credits_posted, COALESCE(c.total, 0) AS transfer_credits
        FROM accounts a LEFT JOIN d USING (account_id) LEFT JOIN c USING (account_id)
        WHERE a.debits_posted <> COALESCE(d.total, 0) OR a.credits_posted <> COALESCE(c.total, 0)
        """,
    ),
    Check(
        "no_negative_available_balance",
        "a member's (or unclaimed identifier's, or red packet's) available balance is never below zero",
        """
        SELECT account_id, credits_posted - debits_posted - debits_pending AS available
        FROM accounts
        WHERE kind IN ('member', 'unclaimed', 'packet') AND credits_posted - debits_posted - debits_pending < 0
        """,
    ),
    Check(
        "live_lots_sum_to_posted_balance",
        "the live lots of a member (or unclaimed identifier, or red packet) sum to its posted balance",
        """
        SELECT a.account_id, a.credits_posted - a.debits_posted AS posted, COALESCE(l.live, 0) AS live_lots
        FROM accounts a
        LEFT JOIN (SELECT account_id, sum(remaining) AS live FROM lots GROUP BY 1) l USING (account_id)
        WHERE a.kind IN ('member', 'unclaimed', 'packet') AND a.credits_posted - a.debits_posted <> COALESCE(l.live, 0)
        """,
    ),
    Check(
        "lots_match_their_debits",
        "what is left of a lot is its amount minus what debits took from it",
        """
        SELECT l.lot_id, l.amount, l.remaining, COALESCE(t.taken, 0) AS taken
        FROM lots l LEFT JOIN (SELECT lot_id, sum(amount) AS taken FROM lot_debits GROUP BY 1) t USING (lot_id)
        WHERE l.remaining <> l.amount - COALESCE(t.taken, 0)
        """,
    ),
    Check(
        "debits_take_lots_in_full",
        "every debit from a member (or unclaimed identifier, or red packet) took lots for exactly its amount",
        """
        SELECT t.transfer_id, t.amount, COALESCE(sum(ld.amount), 0) AS from_lots
        FROM transfers t
        JOIN accounts a ON a.account_id = t.debit_account AND a.kind IN ('member', 'unclaimed', 'packet')
        LEFT JOIN lot_debits ld USING (transfer_id)
        GROUP BY t.transfer_id, t.amount HAVING t.amount <> COALESCE(sum(ld.amount), 0)
        """,
    ),
    Check(
        "credits_create_lots",
        "every credit to a member (or unclaimed identifier, or red packet) created one lot of its amount",
        """
        SELECT t.transfer_id, t.amount, l.amount AS lot_amount
        FROM transfers t
        JOIN accounts a ON a.account_id = t.credit_account AND a.kind IN ('member', 'unclaimed', 'packet')
        LEFT JOIN lots l ON l.lot_id = t.transfer_id
        WHERE l.amount IS DISTINCT FROM t.amount
        """,
    ),
    Check(
        "pending_balances_match_open_holds",
        "each account's pending debits and credits equal the holds still open against it",
        """
        WITH open AS (SELECT debit_account, credit_account, amount FROM holds WHERE status = 'pending'),
             d AS (SELECT debit_account AS account_id, sum(amount) AS total FROM open GROUP BY 1),
             c AS (SELECT credit_account AS account_id, sum(amount) AS total FROM open GROUP BY 1)
        SELECT a.account_id, a.debits_pending, COALESCE(d.total, 0) AS open_hold_debits,
               a.credits_pending, COALESCE(c.total, 0) AS open_hold_credits
        FROM accounts a LEFT JOIN d USING (account_id) LEFT JOIN c USING (account_id)
        WHERE a.debits_pending <> COALESCE(d.total, 0) OR a.credits_pending <> COALESCE(c.total, 0)
        """,
    ),
    Check(
        "captured_holds_posted_once",
        "every captured hold was posted as exactly one transfer of its amount between its accounts",
        """
        SELECT h.hold_id, h.amount, t.amount AS transferred
        FROM holds h LEFT JOIN transfers t ON t.transfer_id = h.transfer_id
        WHERE h.status = 'posted' AND (t.amount IS DISTINCT FROM h.amount OR t.debit_account <> h.debit_account
                                       OR t.credit_account <> h.credit_account)
        """,
    ),
    Check(
        "activities_within_budget_and_quantity",
        "a reward activity never holds out beyond its budget (granted minus reversed, plus what it put in red "
        "packets minus what they returned) or grants beyond its quantity; its counters match its grants and its "
        "packets, and its budget account holds its funding plus what refunds took back and packets returned, minus "
        "what it granted and put in packets",
        """
        SELECT a.activity_id, a.budget_points, a.points_granted, a.points_reversed, a.grants_count, a.quantity_cap,
               COALESCE(g.points, 0) AS granted_points, COALESCE(g.reversed, 0) AS reversed_points,
               COALESCE(g.n, 0) AS grants, b.credits_posted - b.debits_posted AS budget_left,
               a.packet_points, a.packet_points_returned, COALESCE(p.points, 0) AS packets_points,
               COALESCE(p.returned, 0) AS packets_returned
        FROM activities a
        LEFT JOIN (SELECT activity_id, sum(points) AS points, sum(points_reversed) AS reversed, count(*) AS n
                   FROM activity_grants GROUP BY 1) g USING (activity_id)
        LEFT JOIN (SELECT activity_id, sum(points) AS points, sum(returned_points) AS returned
                   FROM red_packets WHERE activity_id IS NOT NULL GROUP BY 1) p USING (activity_id)
        LEFT JOIN accounts b ON b.account_id = 'activity:' || a.activity_id || ':budget'
        WHERE a.points_granted - a.points_reversed + a.packet_points - a.packet_points_returned > a.budget_points
           OR (a.quantity_cap IS NOT NULL AND a.grants_count > a.quantity_cap)
           OR a.points_granted <> COALESCE(g.points, 0) OR a.grants_count <> COALESCE(g.n, 0)
           OR a.points_reversed <> COALESCE(g.reversed, 0)
           OR a.packet_points <> COALESCE(p.points, 0) OR a.packet_points_returned <> COALESCE(p.returned, 0)
           OR b.credits_posted - b.debits_posted < 0
           OR b.credits_posted <> a.budget_points + a.points_reversed + a.packet_points_returned
           OR b.debits_posted <> a.points_granted + a.packet_points
        """,
    ),
    Check(
        "bonus_reversals_match_their_grants",
        "no bonus is taken back beyond what it granted, and what a grant records as taken back is what the "
        "refunds' transfers (taken from the member, or clawed back) moved into its activity's budget",
        """
        WITH moved AS (
            SELECT (memo->>'activity_id')::uuid AS activity_id, (memo->>'grant_cause_id')::uuid AS cause_id,
                   sum(amount) AS total
            FROM transfers
            WHERE reason IN ('bonus_reversal', 'bonus_clawback')
              AND credit_account = 'activity:' || (memo->>'activity_id') || ':budget'
            GROUP BY 1, 2
        )
        SELECT activity_id, cause_id, g.points, g.points_reversed, COALESCE(m.total, 0) AS transferred
        FROM activity_grants g FULL JOIN moved m USING (activity_id, cause_id)
        WHERE g.points_reversed > g.points OR COALESCE(g.points_reversed, -1) <> COALESCE(m.total, 0)
        """,
    ),
    Check(
        "standings_match_grants",
        "a member's standing in an activity counts its grants and the points it holds of them (granted minus "
        "taken back), which its per-member cap bounds",
        """
        WITH g AS (SELECT activity_id, member_id, count(*) AS n, sum(points - points_reversed) AS net
                   FROM activity_grants GROUP BY 1, 2)
        SELECT activity_id, member_id, m.grants, COALESCE(g.n, 0) AS grants_made, m.points,
               COALESCE(g.net, 0) AS net_granted, a.per_member_cap
        FROM activity_members m FULL JOIN g USING (activity_id, member_id)
        JOIN activities a USING (activity_id)
        WHERE COALESCE(m.grants, -1) <> COALESCE(g.n, 0) OR COALESCE(m.points, -1) <> COALESCE(g.net, 0)
           OR m.points > a.per_member_cap
        """,
    ),
    Check(
        "refunds_wait_only_for_unseen_purchases",
        "a refund waits (is parked) only while the ledger has not seen its purchase: the purchase's transaction "
        "applies what waits for it",
        """
        SELECT p.event_id, p.source_key, p.parked_at, e.event_id AS purchase_event_id
        FROM parked_reversals p JOIN earnings e USING (source_key)
        """,
    ),
    Check(
        "events_applied_at_most_once",
        "every source event earned at most once, and only after its inbox entry",
        """
        SELECT e.event_id, e.source_key, count(t.transfer_id) AS earn_transfers, bool_or(i.event_id IS NULL) AS no_inbox
        FROM earnings e LEFT JOIN inbox i USING (event_id)
        LEFT JOIN transfers t ON t.cause_event_id = e.event_id AND t.reason IN ('partner_purchase', 'card_purchase')
        GROUP BY e.event_id, e.source_key
        HAVING count(t.transfer_id) > 1 OR bool_or(i.event_id IS NULL)
        """,
    ),
    Check(
        "earnings_match_their_transfers",
        "a purchase's earn transfer moved exactly the points it earned",
        """
        SELECT e.source_key, e.points, t.amount AS transferred
        FROM earnings e LEFT JOIN transfers t
          ON t.cause_event_id = e.event_id AND t.reason IN ('partner_purchase', 'card_purchase')
        WHERE (e.points > 0 AND t.amount IS DISTINCT FROM e.points) OR (e.points = 0 AND t.amount IS NOT NULL)
        """,
    ),
    Check(
        "tier_bonuses_match_their_earnings",
        "a purchase's tier bonus transfer (programme to its member) moved what its earning records as tier_bonus, "
        "and what refunds took back of it (from the member, or clawed back) is its tier_bonus_reversed, never more",
        """
        WITH moved AS (
            SELECT (memo->>'tier_bonus_of')::uuid AS event_id,
                   COALESCE(sum(amount) FILTER (WHERE reason = 'tier_bonus' AND debit_account = 'programme'), 0)
                       AS granted,
                   COALESCE(sum(amount) FILTER (WHERE reason IN ('tier_bonus_reversal', 'clawback')
                                                AND credit_account = 'programme'), 0) AS reversed,
                   count(*) FILTER (WHERE reason NOT IN ('tier_bonus', 'tier_bonus_reversal', 'clawback')) AS strays
            FROM transfers WHERE memo ? 'tier_bonus_of' GROUP BY 1
        )
        SELECT event_id, e.source_key, e.tier_bonus, e.tier_bonus_reversed, m.granted, m.reversed, m.strays
        FROM earnings e FULL JOIN moved m USING (event_id)
        WHERE (e.tier_bonus > 0 OR m.event_id IS NOT NULL)
          AND (e.event_id IS NULL OR e.tier_bonus <> COALESCE(m.granted, 0)
               OR e.tier_bonus_reversed <> COALESCE(m.reversed, 0) OR COALESCE(m.strays, 0) > 0)
        """,
    ),
    Check(
        "qualifying_days_match_the_earnings",
        "a member's qualifying points of a day are the points minus what refunds reversed of the purchases "
        "credited to it that occurred that day (its earnings with that qualifying_day)",
        """
        WITH earned AS (
            SELECT substr(holder_account, length('member:') + 1)::uuid AS member_id, qualifying_day AS day,
                   sum(points - points_reversed) AS points
            FROM earnings WHERE qualifying_day IS NOT NULL GROUP BY 1, 2
        )
        SELECT member_id, day, q.points AS qualifying_points, e.points AS earned_points
        FROM member_qualifying_days q FULL JOIN earned e USING (member_id, day)
        WHERE COALESCE(q.points, 0) <> COALESCE(e.points, 0)
        """,
    ),
    Check(
        "member_tiers_match_their_history",
        "each member's tier now (member_tiers) is what its latest tier_history change made it, and each member "
        "with a change has a tier row",
        """
        WITH latest AS (
            SELECT DISTINCT ON (member_id) member_id, to_tier, valid_until, tier_set_version, at
            FROM tier_history ORDER BY member_id, seq DESC
        )
        SELECT member_id, t.tier_code, l.to_tier, t.valid_until, l.valid_until AS history_valid_until,
               t.changed_at, l.at
        FROM member_tiers t FULL JOIN latest l USING (member_id)
        WHERE t.member_id IS NULL OR l.member_id IS NULL OR t.tier_code IS DISTINCT FROM l.to_tier
           OR t.valid_until IS DISTINCT FROM l.valid_until OR t.changed_at <> l.at OR t.since > t.changed_at
           OR t.tier_set_version <> l.tier_set_version
        """,
    ),
    Check(
        "daily_summaries_match_the_ledger",
        "each member's summary of a day (DailyEarningsSummarised) says what the ledger posted that day: earned, "
        "taken back, by source summing to the net, the month to date; and a member's latest summary its lifetime",
        f"""
        WITH latest AS (SELECT member_id, max(day) AS day FROM daily_summaries GROUP BY 1)
        SELECT s.day, s.member_id, s.earned, l.earned AS ledger_earned, s.taken_back, l.taken_back AS ledger_taken_back,
               s.month_to_date, l.month_to_date AS ledger_month_to_date, s.lifetime, l.lifetime AS ledger_lifetime,
               s.by_source
        FROM daily_summaries s
        JOIN latest USING (member_id)
        LEFT JOIN daily_summary_days d ON d.day = s.day
        CROSS JOIN LATERAL (
            SELECT {_earned_between("s", "s.starts_at", "s.ends_at")} AS earned,
                   {_taken_back_between("s", "s.starts_at", "s.ends_at")} AS taken_back,
                   {_net_between("s", _MONTH_START, "s.ends_at")} AS month_to_date,
                   CASE WHEN s.day = latest.day THEN {_net_between("s", "'-infinity'", "s.ends_at")} END AS lifetime
        ) l
        WHERE s.earned <> l.earned OR s.taken_back <> l.taken_back
           OR (SELECT sum(value::bigint) FROM jsonb_each_text(s.by_source)) <> s.net
           OR (d.time_zone IS NOT NULL AND s.month_to_date <> l.month_to_date)
           OR (s.day = latest.day AND s.lifetime <> l.lifetime)
        """,
    ),
    Check(
        "share_cards_within_the_days_points",
        "a share card never shows more points than its member earned that day, in all or from any source it names",
        f"""
        SELECT c.card_id, c.day, c.points, e.earned AS day_earned, c.sources, e.by_source AS day_earned_by_source
        FROM share_cards c
        CROSS JOIN LATERAL (
            SELECT COALESCE(sum(points), 0) AS earned, jsonb_object_agg(source, points) AS by_source
            FROM (SELECT {credit_source_sql()} AS source, sum(amount) AS points FROM transfers
                  WHERE credit_account = 'member:' || c.member_id AND {MEMBER_CREDITS} AND {EARNED}
                    AND posted_at >= c.starts_at AND posted_at < c.ends_at
                  GROUP BY 1) per_source
        ) e
        WHERE c.points > e.earned
           OR EXISTS (SELECT 1 FROM jsonb_each_text(COALESCE(c.sources, '{{}}')) shown (source, points)
                      WHERE shown.points::bigint > COALESCE((e.by_source ->> shown.source)::bigint, 0))
        """,
    ),
    Check(
        "red_packet_shares_sum_to_points",
        "a red packet's drawn shares are as many as it has shares, each at least 1, and sum to its points",
        """
        SELECT p.packet_id, p.points, p.shares, COALESCE(s.total, 0) AS shares_total, COALESCE(s.n, 0) AS drawn,
               s.smallest
        FROM red_packets p
        LEFT JOIN (SELECT packet_id, sum(points) AS total, count(*) AS n, min(points) AS smallest
                   FROM red_packet_shares GROUP BY 1) s USING (packet_id)
        WHERE COALESCE(s.total, 0) <> p.points OR COALESCE(s.n, 0) <> p.shares OR s.smallest < 1
        """,
    ),
    Check(
        "red_packet_grabs_once_within_audience",
        "a red packet is grabbed at most once per share and once per member, never by its creator, and (segment "
        "and friends packets) only by members of its audience",
        """
        SELECT p.packet_id, p.shares, count(*) AS grabs, count(DISTINCT s.member_id) AS members,
               bool_or(s.member_id = p.creator_member) AS by_creator,
               bool_or(p.audience <> 'link' AND a.member_id IS NULL) AS outside_audience
        FROM red_packets p
        JOIN red_packet_shares s ON s.packet_id = p.packet_id AND s.member_id IS NOT NULL
        LEFT JOIN red_packet_audience a ON a.packet_id = s.packet_id AND a.member_id = s.member_id
        GROUP BY p.packet_id, p.shares
        HAVING count(*) > p.shares OR count(DISTINCT s.member_id) <> count(*)
            OR COALESCE(bool_or(s.member_id = p.creator_member), false)
            OR bool_or(p.audience <> 'link' AND a.member_id IS NULL)
        """,
    ),
    Check(
        "red_packet_account_holds_what_is_left",
        "a red packet's account was credited its points once and holds them minus what was grabbed and returned; "
        "once settled (exhausted, expired, closed) it is empty",
        """
        SELECT p.packet_id, p.state, p.points, COALESCE(g.grabbed, 0) AS grabbed, p.returned_points,
               a.credits_posted, a.credits_posted - a.debits_posted AS balance
        FROM red_packets p JOIN accounts a ON a.account_id = p.account_id
        LEFT JOIN (SELECT packet_id, sum(points) AS grabbed FROM red_packet_shares WHERE member_id IS NOT NULL
                   GROUP BY 1) g USING (packet_id)
        WHERE a.credits_posted <> p.points
           OR a.credits_posted - a.debits_posted <> p.points - COALESCE(g.grabbed, 0) - p.returned_points
           OR (p.state <> 'open' AND a.credits_posted - a.debits_posted <> 0)
        """,
    ),
    Check(
        "red_packet_transfers_match",
        "a red packet's account moves only by its funding from its source, its grabs and its return to its "
        "source; each grabbed share reached its grabber in full",
        """
        WITH legs AS (
            SELECT p.packet_id, t.reason, t.amount,
                   (t.credit_account = p.account_id AND t.debit_account = p.source_account) AS funding,
                   (t.debit_account = p.account_id AND t.credit_account = p.source_account) AS going_back,
                   t.debit_account = p.account_id AS out_of_packet
            FROM red_packets p JOIN transfers t ON t.credit_account = p.account_id
            UNION ALL
            SELECT p.packet_id, t.reason, t.amount, false, t.credit_account = p.source_account, true
            FROM red_packets p JOIN transfers t ON t.debit_account = p.account_id
        ), flows AS (
            SELECT packet_id,
                   COALESCE(sum(amount) FILTER (WHERE reason = 'red_packet_funding' AND funding), 0) AS funded,
                   COALESCE(sum(amount) FILTER (WHERE reason = 'red_packet_return' AND going_back), 0) AS returned,
                   COALESCE(sum(amount) FILTER (WHERE reason = 'red_packet_grab' AND out_of_packet), 0) AS grabbed,
                   count(*) FILTER (WHERE NOT ((reason = 'red_packet_funding' AND funding)
                                               OR (reason = 'red_packet_return' AND going_back)
                                               OR (reason = 'red_packet_grab' AND out_of_packet))) AS strays
            FROM legs GROUP BY 1
        ), grabs AS (
            SELECT s.packet_id, s.position, s.points, COALESCE(sum(t.amount), 0) AS reached
            FROM red_packet_shares s
            LEFT JOIN transfers t ON t.cause_event_id = s.grab_id AND t.reason = 'red_packet_grab'
                                 AND t.credit_account = 'member:' || s.member_id
            WHERE s.member_id IS NOT NULL GROUP BY 1, 2, 3
        )
        SELECT p.packet_id, p.points, f.funded, p.returned_points, f.returned, f.grabbed, f.strays,
               (SELECT count(*) FROM grabs g WHERE g.packet_id = p.packet_id AND g.reached <> g.points)
                   AS shares_not_reached,
               (SELECT COALESCE(sum(g.points), 0) FROM grabs g WHERE g.packet_id = p.packet_id) AS shares_grabbed
        FROM red_packets p LEFT JOIN flows f USING (packet_id)
        WHERE COALESCE(f.funded, 0) <> p.points OR COALESCE(f.returned, 0) <> p.returned_points
           OR COALESCE(f.strays, 0) > 0
           OR COALESCE(f.grabbed, 0) <> (SELECT COALESCE(sum(g.points), 0) FROM grabs g WHERE g.packet_id = p.packet_id)
           OR EXISTS (SELECT 1 FROM grabs g WHERE g.packet_id = p.packet_id AND g.reached <> g.points)
        """,
    ),
    Check(
        "red_packets_returned_on_time",
        "no red packet is still open an hour after its deadline (the return job is not running)",
        """
        SELECT packet_id, expires_at, now() - expires_at AS overdue FROM red_packets
        WHERE state = 'open' AND expires_at < now() - interval '1 hour'
        """,
    ),
    Check(
        "no_message_to_a_held_out_member",
        "an activity messages only its targeted members, never one of its holdout (points/domain/messages.py)",
        """
        SELECT m.message_id, m.activity_id, m.member_id, t.holdout
        FROM member_messages m
        LEFT JOIN activity_targets t ON t.activity_id = m.activity_id AND t.member_id = m.member_id
        WHERE t.member_id IS NULL OR t.holdout
        """,
    ),
    Check(
        "one_message_per_activity_and_member",
        "an activity messages each member at most once",
        """
        SELECT activity_id, member_id, count(*) AS messages FROM member_messages GROUP BY 1, 2 HAVING count(*) > 1
        """,
    ),
    Check(
        "message_callback_times_consistent",
        "what the messaging systems reported is consistent: a click was opened, an open delivered, never later",
        """
        SELECT message_id, state, delivered_at, opened_at, clicked_at, failed_at FROM member_messages
        WHERE (clicked_at IS NOT NULL AND (opened_at IS NULL OR opened_at > clicked_at))
           OR (opened_at IS NOT NULL AND (delivered_at IS NULL OR delivered_at > opened_at))
        """,
    ),
    Check(
        "attributed_grants_match_their_transfers",
        "an attribution is kept only on a purchase's earn transfer or a claim's grant transfer, with a known channel; "
        "the grants the attribution report counts for it are those transfers: a claim's is its grant's (member and "
        "points), a purchase's bonuses each moved their points from their activity's budget",
        """
        WITH attributed AS (
            SELECT transfer_id, reason, amount, cause_event_id, credit_account, memo -> 'attribution' AS a
            FROM transfers WHERE memo ? 'attribution'
        )
        SELECT a.transfer_id, a.reason, a.amount, NULL::bigint AS grant_points, 'misplaced or malformed' AS problem
        FROM attributed a
        WHERE a.reason NOT IN ('partner_purchase', 'card_purchase', 'bonus_limited_claim')
           OR jsonb_typeof(a.a) <> 'object'
           OR a.a ->> 'channel' NOT IN ('app', 'sms', 'wechat', 'branch', 'web', 'partner')
        UNION ALL
        SELECT a.transfer_id, a.reason, a.amount, g.points, 'claim without its grant'
        FROM attributed a LEFT JOIN activity_grants g ON g.transfer_id = a.transfer_id
        WHERE a.reason = 'bonus_limited_claim'
          AND (g.transfer_id IS NULL OR g.claim_id IS NULL OR g.points <> a.amount
               OR a.credit_account <> 'member:' || g.member_id)
        UNION ALL
        SELECT a.transfer_id, a.reason, a.amount, g.points, 'bonus without its transfer'
        FROM attributed a JOIN activity_grants g ON g.purchase_id = a.cause_event_id
        LEFT JOIN transfers b ON b.transfer_id = g.transfer_id
        WHERE a.reason IN ('partner_purchase', 'card_purchase')
          AND (b.transfer_id IS NULL OR b.amount <> g.points
               OR b.debit_account <> 'activity:' || g.activity_id || ':budget'
               OR b.credit_account <> 'member:' || g.member_id)
        """,
    ),
    # --- liability (points/domain/liability.py, adapters/liability_checks.py) -------------------------------
    Check(
        "liability_statement_reconciles",
        "the latest kept month-end liability statement (and the position at the start of this UTC month), "
        "recomputed from the lots and their debits, closes with the sum of the lot-holding accounts' balances at its "
        "end, summed from the transfers alone: difference zero",
        liability_checks.STATEMENTS_RECONCILE,
    ),
    Check(
        "liability_statement_lines_match_the_lots",
        "each issuer's line (gifts apart) of the latest kept liability statement closes with what its lots held at "
        "the month's end",
        liability_checks.STATEMENT_LINES_MATCH,
    ),
    Check(
        "liability_months_chain",
        "a kept liability statement opens, issuer by issuer, with the closing of the kept month before it",
        liability_checks.MONTHS_CHAIN,
    ),
    Check(
        "liability_outstanding_matches_accounts",
        "now: the outstanding points of every issuer (live lots) sum to the lot-holding accounts' posted balances",
        liability_checks.OUTSTANDING_NOW,
    ),
    # --- adjustments (points/domain/adjustments.py) ---------------------------------------------------------
    Check(
        "adjustments_account_matches_posted_adjustments",
        "the adjustments account moves only by posted adjustments, each one transfer of its points between it and "
        "its member (credit: to the member, debit: from it), and its balance is their debits minus their credits",
        """
        WITH posted AS (SELECT * FROM adjustments WHERE status = 'posted')
        SELECT p.adjustment_id, p.points, t.amount, 'posted without its transfer' AS problem
        FROM posted p LEFT JOIN transfers t ON t.transfer_id = p.transfer_id
        WHERE t.amount IS DISTINCT FROM p.points
           OR (p.direction = 'credit'
               AND (t.debit_account, t.credit_account) <> ('adjustments', 'member:' || p.member_id))
           OR (p.direction = 'debit'
               AND (t.debit_account, t.credit_account) <> ('member:' || p.member_id, 'adjustments'))
        UNION ALL
        SELECT NULL, NULL, t.amount, 'moved the adjustments account without a posted adjustment'
        FROM transfers t
        WHERE (t.debit_account = 'adjustments' OR t.credit_account = 'adjustments')
          AND NOT EXISTS (SELECT 1 FROM adjustments a WHERE a.transfer_id = t.transfer_id AND a.status = 'posted')
        UNION ALL
        SELECT NULL, a.credits_posted - a.debits_posted,
               (SELECT COALESCE(sum(CASE direction WHEN 'debit' THEN points ELSE -points END), 0) FROM posted),
               'its balance is not what the posted adjustments add up to'
        FROM accounts a
        WHERE a.account_id = 'adjustments' AND a.credits_posted - a.debits_posted
              <> (SELECT COALESCE(sum(CASE direction WHEN 'debit' THEN points ELSE -points END), 0) FROM posted)
        """,
    ),
    Check(
        "adjustments_four_eyes",
        "no adjustment above its approval threshold was posted (or rejected) without a second ops user, and nobody "
        "decided an adjustment they requested",
        """
        SELECT adjustment_id, points, threshold, status, requested_by, decided_by FROM adjustments
        WHERE decided_by = requested_by
           OR (status IN ('posted', 'rejected') AND points > threshold AND decided_by IS NULL)
        """,
    ),
    Check(
        "adjustments_audited",
        "every adjustment has its audit entries: requested; approved (above its threshold) and posted when posted; "
        "rejected when rejected",
        """
        SELECT a.adjustment_id, a.status, need.action AS missing
        FROM adjustments a
        CROSS JOIN LATERAL (VALUES ('adjustment.requested', true),
                                   ('adjustment.approved', a.status = 'posted' AND a.points > a.threshold),
                                   ('adjustment.rejected', a.status = 'rejected')) AS need(action, wanted)
        WHERE need.wanted AND NOT EXISTS (
            SELECT 1 FROM audit_log l WHERE l.subject = 'adjustment:' || a.adjustment_id AND l.action = need.action)
        UNION ALL
        SELECT a.adjustment_id, a.status, 'adjustment.posted'
        FROM adjustments a
        WHERE a.status = 'posted' AND NOT EXISTS (
            SELECT 1 FROM audit_log l WHERE l.subject = 'member:' || a.member_id AND l.action = 'adjustment.posted'
              AND l.details ->> 'adjustment_id' = a.adjustment_id::text)
        """,
    ),
    # --- points exchange (domain/exchange.py)
    Check(
        "card_points_credits_match_conversions",
        "every exchange_in credit is one conversion, from card-points:exchange, of floor(card points x the rate in "
        "force when the card system debited them) points, and every conversion has its credit",
        """
        WITH c AS (
            SELECT c.*, (SELECT r.points_per_card_point FROM card_points_rates r WHERE r.valid_from <= c.occurred_at
                         ORDER BY r.valid_from DESC LIMIT 1) AS rate_in_force
            FROM card_points_conversions c
        )
        SELECT t.transfer_id, c.request_id, t.amount, c.points, c.card_points, c.rate, c.rate_in_force,
               'credit without a matching conversion' AS problem
        FROM transfers t LEFT JOIN c ON c.transfer_id = t.transfer_id
        WHERE t.reason = 'exchange_in'
          AND (c.request_id IS NULL OR t.amount <> c.points OR t.debit_account <> 'card-points:exchange'
               OR t.credit_account <> c.credited OR c.rate IS DISTINCT FROM c.rate_in_force
               OR c.points <> floor(c.card_points * c.rate) OR c.remainder <> c.card_points * c.rate - c.points)
        UNION ALL
        SELECT c.transfer_id, c.request_id, t.amount, c.points, c.card_points, c.rate, c.rate_in_force,
               'conversion without its exchange_in credit'
        FROM c LEFT JOIN transfers t ON t.transfer_id = c.transfer_id
        WHERE t.transfer_id IS NULL OR t.reason <> 'exchange_in'
        """,
    ),
    Check(
        "exchange_out_holds_match_requests",
        "every exchange's hold reserves its points from the member for the partner's redeemed account; a captured "
        "one was confirmed and posted as one exchange_out transfer, a refused one was refused; every exchange_out "
        "transfer captures an exchange's hold",
        """
        SELECT e.exchange_id, h.hold_id, h.status, h.void_reason, e.decision, t.transfer_id, 'hold and request differ'
        FROM exchanges e JOIN holds h USING (hold_id) LEFT JOIN transfers t ON t.transfer_id = h.transfer_id
        WHERE h.amount <> e.points OR h.member_id <> e.member_id OR h.order_id <> e.exchange_id
           OR h.debit_account <> 'member:' || e.member_id
           OR h.credit_account <> 'partner:' || e.partner_id || ':redeemed'
           OR (h.status = 'posted' AND (e.decision IS DISTINCT FROM 'confirm' OR t.reason <> 'exchange_out'))
           OR (h.void_reason = 'refused_by_partner' AND e.decision IS DISTINCT FROM 'refuse')
        UNION ALL
        SELECT NULL, h.hold_id, h.status, h.void_reason, NULL, t.transfer_id, 'exchange_out without an exchange'
        FROM transfers t LEFT JOIN holds h ON h.transfer_id = t.transfer_id
        LEFT JOIN exchanges e ON e.hold_id = h.hold_id
        WHERE t.reason = 'exchange_out' AND e.exchange_id IS NULL
        """,
    ),
    Check(
        "exchange_daily_limits_kept",
        "no member has more points pending or captured with a programme on one programme day than the daily limit "
        "in force when each of those exchanges was asked for",
        """
        SELECT * FROM (
            SELECT e.exchange_id, e.member_id, e.partner_id, e.programme_day, e.daily_limit_points,
                   sum(e.points) OVER (PARTITION BY e.member_id, e.partner_id, e.programme_day
                                       ORDER BY e.requested_at, e.exchange_id) AS exchanged_until_then
            FROM exchanges e JOIN holds h USING (hold_id) WHERE h.status <> 'voided'
        ) x WHERE exchanged_until_then > daily_limit_points
        """,
    ),
    # --- velocity reviews (points/domain/velocity.py, handlers/reviews.py) -----------------------------------
    Check(
        "suspense_holds_the_open_reviews",
        "the suspense account review:pending holds exactly the open reviews' points (their purchases' points minus "
        "what refunds reversed)",
        """
        SELECT COALESCE(a.credits_posted - a.debits_posted, 0) AS suspense, o.open_points
        FROM (SELECT COALESCE(sum(e.points - e.points_reversed), 0) AS open_points
              FROM earning_reviews r JOIN earnings e USING (source_key) WHERE r.status = 'open') o
        LEFT JOIN accounts a ON a.account_id = 'review:pending'
        WHERE COALESCE(a.credits_posted - a.debits_posted, 0) <> o.open_points
        """,
    ),
    Check(
        "decided_reviews_moved_once",
        "a released review moved its points from review:pending to its identifier's holder, a rejected one back to "
        "its issuer, by exactly one transfer of its decided points (its earning now names that account as holder); "
        "open and cancelled reviews by none",
        """
        SELECT r.review_id, r.status, r.decided_points, e.holder_account, count(t.transfer_id) AS decision_transfers,
               min(t.amount) AS amount, min(t.credit_account) AS credited
        FROM earning_reviews r JOIN earnings e USING (source_key)
        LEFT JOIN transfers t ON t.debit_account = 'review:pending' AND t.memo ->> 'review_id' = r.review_id::text
                             AND t.reason IN ('review_released', 'review_rejected')
        GROUP BY r.review_id, r.status, r.decided_points, r.transfer_id, r.issuer_account, e.holder_account
        HAVING (r.status IN ('released', 'rejected')
                AND (count(t.transfer_id) <> 1 OR min(t.transfer_id::text) <> r.transfer_id::text
                     OR min(t.amount) <> r.decided_points OR min(t.credit_account) <> e.holder_account
                     OR (r.status = 'rejected') <> (min(t.credit_account) = r.issuer_account)))
            OR (r.status IN ('open', 'cancelled') AND count(t.transfer_id) > 0)
        """,
    ),
    Check(
        "held_earnings_never_credited_to_members",
        "a held purchase's earn transfer went to review:pending, nothing its purchase caused reached a member, and "
        "while its review is open its earning's holder is review:pending",
        """
        SELECT r.review_id, r.status, e.holder_account, earn.credit_account AS earn_credited,
               stray.credit_account AS credited_to_member
        FROM earning_reviews r JOIN earnings e USING (source_key)
        LEFT JOIN transfers earn ON earn.cause_event_id = r.event_id
                                AND earn.reason IN ('partner_purchase', 'card_purchase')
        LEFT JOIN transfers stray ON stray.cause_event_id = r.event_id AND stray.credit_account LIKE 'member:%'
        WHERE earn.credit_account IS DISTINCT FROM 'review:pending' OR stray.transfer_id IS NOT NULL
           OR (r.status = 'open' AND e.holder_account <> 'review:pending')
        """,
    ),
    # Data rights: an erasure renames an identifier and its unclaimed account together (domain/erasure.py).
    Check(
        "unclaimed_accounts_name_identifiers",
        "every unclaimed account is the account of an identifier that exists (an erasure renames both as one)",
        """
        SELECT a.account_id FROM accounts a
        LEFT JOIN identifiers i ON i.identifier = substr(a.account_id, length('unclaimed:') + 1)
        WHERE a.kind = 'unclaimed' AND i.identifier IS NULL
        """,
    ),
    Check(
        "erased_members_keep_no_personal_values",
        "an erased member's name is a pseudonym and none of the identifiers it held when erased is linked to it",
        """
        SELECT m.member_id, x.display_name LIKE 'erased-%' AS name_erased, count(i.identifier) AS still_linked
        FROM member_erasures m JOIN members x USING (member_id)
        LEFT JOIN identifiers i ON i.member_id = m.member_id AND i.linked_at <= m.erased_at
        GROUP BY m.member_id, x.display_name
        HAVING x.display_name NOT LIKE 'erased-%' OR count(i.identifier) > 0
        """,
    ),
)
