"""The ledger's invariants (DESIGN.md) as queries that return the rows breaking them."""

from __future__ import annotations

from dataclasses import dataclass

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
)
