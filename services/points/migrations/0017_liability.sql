-- Liability and breakage (issue 13, item 1): issue prices, month-end statements and the reads they need.

-- What a point is worth to the programme when it is issued, per issuer, by UTC day from `valid_from` until the
-- next version. Partners' prices arrive from their earn contracts (loyalty.partner-contracts.v1); ops set the
-- others (the card, activities as 'activity:*' or one activity, the programme, migrated balances, ...).
-- A version never changes once recorded: a repeated or late contract event changes nothing.
CREATE TABLE issue_prices (
    issuer                text    NOT NULL CHECK (length(issuer) BETWEEN 1 AND 200),
    valid_from            date    NOT NULL,
    currency              char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    price_minor_per_point numeric NOT NULL CHECK (
        price_minor_per_point > 0 AND price_minor_per_point < 10000000000 AND scale(price_minor_per_point) <= 4),
    source                text    NOT NULL CHECK (source IN ('partner_contract', 'ops')),
    set_by                text    NOT NULL,
    recorded_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, valid_from),
    CHECK ((source = 'partner_contract') = (issuer LIKE 'partner:%:issued'))
);

-- Closed months' statements (points/domain/liability.py), computed once from the ledger and kept: the next month
-- opens with this one's closing, so that no read scans the whole history. `ledger_closing` is the sum of the
-- balances of every lot-holding account at `ends_at`, summed from the transfers (not the lots): the statement
-- reconciles when the lines' closing sum to it (`make verify` recomputes the latest month from scratch).
CREATE TABLE liability_months (
    time_zone      text        NOT NULL,
    month          text        NOT NULL CHECK (month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL CHECK (ends_at > starts_at),
    ledger_closing bigint      NOT NULL,
    computed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (time_zone, month)
);

-- One line per issuer and whether the points reached their member as a gift (or a member's red packet).
-- The *_out columns are the gross points that left for redemption or breakage (the rates' figures).
CREATE TABLE liability_month_lines (
    time_zone        text    NOT NULL,
    month            text    NOT NULL,
    issuer           text    NOT NULL,
    received_as_gift boolean NOT NULL,
    opening          bigint  NOT NULL,
    issued           bigint  NOT NULL,
    redeemed         bigint  NOT NULL,
    expired          bigint  NOT NULL,
    moved            bigint  NOT NULL,
    other            bigint  NOT NULL,
    closing          bigint  NOT NULL,
    redeemed_out     bigint  NOT NULL CHECK (redeemed_out >= 0),
    expired_out      bigint  NOT NULL CHECK (expired_out >= 0),
    PRIMARY KEY (time_zone, month, issuer, received_as_gift),
    FOREIGN KEY (time_zone, month) REFERENCES liability_months (time_zone, month),
    CHECK (closing = opening + issued - redeemed - expired + moved + other)
);

-- A month's movements are read by posting time (points/adapters/liability_store.py); the expiry forecast reads
-- live lots by expires_at (lots_due, 0002).
CREATE INDEX transfers_by_posting ON transfers (posted_at);
