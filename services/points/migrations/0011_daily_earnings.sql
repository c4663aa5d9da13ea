-- Daily earnings (points/domain/daily_earnings.py): what each member earned per programme day, the summary of each
-- finished day (DailyEarningsSummarised), and share cards of a day's points.

-- A member's earnings over a time range: the credits to its account and the debits of its account and of its
-- receivable (reversals, clawbacks), by posting time. Partial, so that the issuers' side of every transfer stays
-- out: an earning adds one entry (to the first), a refund one (to the second). The predicates are repeated verbatim
-- in points/adapters/daily_earnings.py: the planner uses a partial index only for a query that states its predicate.
CREATE INDEX transfers_member_credits_by_time ON transfers (credit_account, posted_at)
WHERE credit_account LIKE 'member:%';
CREATE INDEX transfers_member_debits_by_time ON transfers (debit_account, posted_at)
WHERE debit_account LIKE 'member:%' OR debit_account LIKE 'receivable:%';
-- Which members had earnings on a day: transfers are appended in posting order, so a block range index finds the
-- day's blocks, and costs the ledger's writes next to nothing.
CREATE INDEX transfers_posted_blocks ON transfers USING brin (posted_at) WITH (pages_per_range = 32);

-- One row per member and finished day with earnings: written in the transaction that puts its
-- DailyEarningsSummarised in the outbox (ON CONFLICT DO NOTHING), so a day is summarised once per member whoever
-- runs it. The day's bounds are kept, so `make verify` compares it with the ledger whatever the zone is now.
CREATE TABLE daily_summaries (
    day           date NOT NULL,
    member_id     uuid NOT NULL REFERENCES members (member_id),
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    earned        bigint NOT NULL CHECK (earned >= 0),
    taken_back    bigint NOT NULL CHECK (taken_back >= 0),
    net           bigint GENERATED ALWAYS AS (earned - taken_back) STORED,
    by_source     jsonb NOT NULL,
    month_to_date bigint NOT NULL,
    lifetime      bigint NOT NULL,
    event_id      uuid NOT NULL UNIQUE,
    summarised_at timestamptz NOT NULL,
    PRIMARY KEY (day, member_id),
    CHECK (ends_at > starts_at),
    CHECK (earned > 0 OR taken_back > 0)
);
-- A member's latest summary before a day: where its lifetime total continues from.
CREATE INDEX daily_summaries_by_member ON daily_summaries (member_id, day);

-- The days whose summary finished, so the job continues after the latest (and starts with yesterday on a new ledger).
CREATE TABLE daily_summary_days (
    day          date PRIMARY KEY,
    time_zone    text NOT NULL,
    finished_at  timestamptz NOT NULL,
    requested_by text NOT NULL CHECK (length(requested_by) BETWEEN 1 AND 200)
);

-- A card a member shares: frozen when made (the day's net points, the sources if chosen, a display name if given),
-- reached by an unguessable token of which only the SHA-256 is kept. No balance, no member id, no identifier.
CREATE TABLE share_cards (
    card_id      uuid PRIMARY KEY,
    member_id    uuid NOT NULL REFERENCES members (member_id),
    token_sha256 text NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    day          date NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    display_name text CHECK (length(display_name) BETWEEN 1 AND 40),
    points       bigint NOT NULL CHECK (points > 0),
    sources      jsonb,
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    CHECK (ends_at > starts_at),
    CHECK (revoked_at IS NULL OR revoked_at >= created_at)
);
CREATE INDEX share_cards_live_by_member ON share_cards (member_id, created_at) WHERE revoked_at IS NULL;
