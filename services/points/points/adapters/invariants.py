"""The ledger's invariants (DESIGN.md) as queries that return the rows breaking them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    rule: str
    sql: str


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
        "a member's (or unclaimed identifier's) available balance is never below zero",
        """
        SELECT account_id, credits_posted - debits_posted - debits_pending AS available
        FROM accounts WHERE kind IN ('member', 'unclaimed') AND credits_posted - debits_posted - debits_pending < 0
        """,
    ),
    Check(
        "live_lots_sum_to_posted_balance",
        "the live lots of a member (or unclaimed identifier) sum to its posted balance",
        """
        SELECT a.account_id, a.credits_posted - a.debits_posted AS posted, COALESCE(l.live, 0) AS live_lots
        FROM accounts a
        LEFT JOIN (SELECT account_id, sum(remaining) AS live FROM lots GROUP BY 1) l USING (account_id)
        WHERE a.kind IN ('member', 'unclaimed') AND a.credits_posted - a.debits_posted <> COALESCE(l.live, 0)
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
        "every debit from a member (or unclaimed identifier) took lots for exactly its amount",
        """
        SELECT t.transfer_id, t.amount, COALESCE(sum(ld.amount), 0) AS from_lots
        FROM transfers t JOIN accounts a ON a.account_id = t.debit_account AND a.kind IN ('member', 'unclaimed')
        LEFT JOIN lot_debits ld USING (transfer_id)
        GROUP BY t.transfer_id, t.amount HAVING t.amount <> COALESCE(sum(ld.amount), 0)
        """,
    ),
    Check(
        "credits_create_lots",
        "every credit to a member (or unclaimed identifier) created one lot of its amount",
        """
        SELECT t.transfer_id, t.amount, l.amount AS lot_amount
        FROM transfers t JOIN accounts a ON a.account_id = t.credit_account AND a.kind IN ('member', 'unclaimed')
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
        "a reward activity never holds out beyond its budget (granted minus reversed) or grants beyond its "
        "quantity; its counters match its grants, and its budget account holds its funding plus what refunds "
        "took back, minus what it granted",
        """
        SELECT a.activity_id, a.budget_points, a.points_granted, a.points_reversed, a.grants_count, a.quantity_cap,
               COALESCE(g.points, 0) AS granted_points, COALESCE(g.reversed, 0) AS reversed_points,
               COALESCE(g.n, 0) AS grants, b.credits_posted - b.debits_posted AS budget_left
        FROM activities a
        LEFT JOIN (SELECT activity_id, sum(points) AS points, sum(points_reversed) AS reversed, count(*) AS n
                   FROM activity_grants GROUP BY 1) g USING (activity_id)
        LEFT JOIN accounts b ON b.account_id = 'activity:' || a.activity_id || ':budget'
        WHERE a.points_granted - a.points_reversed > a.budget_points
           OR (a.quantity_cap IS NOT NULL AND a.grants_count > a.quantity_cap)
           OR a.points_granted <> COALESCE(g.points, 0) OR a.grants_count <> COALESCE(g.n, 0)
           OR a.points_reversed <> COALESCE(g.reversed, 0)
           OR b.credits_posted - b.debits_posted < 0
           OR b.credits_posted <> a.budget_points + a.points_reversed OR b.debits_posted <> a.points_granted
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
)
