-- What the web console reads (member wallet, ops console): member search, the ops summary, gifts and
-- claims by member, and a record of every expiry run.

-- Members by name (case-insensitive substring) and newest first.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX members_display_name_trgm ON members USING gin (display_name gin_trgm_ops);
CREATE INDEX members_newest ON members (created_at, member_id);

-- A member's gifts received (those sent have gifts_by_sender), and its claims of limited give-aways.
CREATE INDEX gifts_by_recipient ON gifts (recipient, given_at);
CREATE INDEX activity_grants_claims_by_member ON activity_grants (member_id, occurred_at) WHERE claim_id IS NOT NULL;

-- The ops summary sums the transfers of a day and of a month by kind of movement, with index-only range
-- scans on posted_at. Each transfer enters at most one of these indexes, so the ledger's writes pay less
-- than for one index of every transfer. The predicates are repeated verbatim in points/adapters/reads.py:
-- the planner uses a partial index only for a query that states its predicate.
-- Issued: credited to a member or an unclaimed identifier by a partner, the card programme or an activity.
CREATE INDEX transfers_issued_by_time ON transfers (posted_at) INCLUDE (amount)
WHERE (credit_account LIKE 'member:%' OR credit_account LIKE 'unclaimed:%')
  AND (debit_account LIKE 'partner:%:issued' OR debit_account = 'card:issued' OR debit_account LIKE 'activity:%:budget');
-- Redeemed: a member's hold captured for a redemption order (credited to the partner redeemed with).
CREATE INDEX transfers_redeemed_by_time ON transfers (posted_at) INCLUDE (amount)
WHERE debit_account LIKE 'member:%' AND credit_account LIKE 'partner:%:redeemed';
-- Expired: what was left of lots, moved to breakage.
CREATE INDEX transfers_expired_by_time ON transfers (posted_at) INCLUDE (amount)
WHERE credit_account = 'breakage';

-- The accounts that are neither a member's nor an unclaimed identifier's: few, so that the points outstanding
-- (what members and unclaimed identifiers hold) are read as minus their sum, the ledger summing to zero.
-- Only `kind` is indexed, which never changes: balance updates stay HOT.
CREATE INDEX accounts_system ON accounts (kind) WHERE kind NOT IN ('member', 'unclaimed');

-- Every expiry run, scheduled or asked for by ops, with what it expired.
CREATE TABLE expiry_runs (
    run_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL,
    lots_expired   bigint NOT NULL CHECK (lots_expired >= 0),
    points_expired bigint NOT NULL CHECK (points_expired >= 0),
    requested_by   text NOT NULL CHECK (length(requested_by) BETWEEN 1 AND 200),
    CHECK (finished_at >= started_at)
);
CREATE INDEX expiry_runs_newest ON expiry_runs (started_at, run_id);
