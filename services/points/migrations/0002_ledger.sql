-- The ledger (DESIGN.md, "The ledger"): members and their identifiers, accounts, transfers,
-- lots, earnings, parked reversals, card earn rates and the outbox.

-- The walking skeleton's record of partner events gives way to the ledger.
DROP TABLE partner_transactions;

CREATE TABLE members (
    member_id    uuid PRIMARY KEY,
    display_name text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- A partner customer reference ('partner:<partner>:<customer ref>') or a card token
-- ('card:<token>'). Points for an identifier nobody linked yet wait in its unclaimed account.
CREATE TABLE identifiers (
    identifier text PRIMARY KEY CHECK (identifier ~ '^(partner|card):'),
    member_id  uuid REFERENCES members (member_id),
    linked_at  timestamptz,
    CHECK ((member_id IS NULL) = (linked_at IS NULL))
);
CREATE INDEX identifiers_member ON identifiers (member_id) WHERE member_id IS NOT NULL;

CREATE TABLE accounts (
    account_id     text PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('member', 'unclaimed', 'partner_issued', 'card_issued', 'breakage', 'receivable')),
    member_id      uuid REFERENCES members (member_id),
    debits_posted  bigint NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_posted bigint NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    debits_pending bigint NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    credits_pending bigint NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind IN ('member', 'receivable')) = (member_id IS NOT NULL)),
    -- A member's (or an unclaimed identifier's) available balance is never below zero.
    CONSTRAINT no_overdraft CHECK (
        kind NOT IN ('member', 'unclaimed') OR credits_posted - debits_posted - debits_pending >= 0
    )
);
CREATE UNIQUE INDEX accounts_one_per_member ON accounts (member_id, kind) WHERE member_id IS NOT NULL;
INSERT INTO accounts (account_id, kind) VALUES ('breakage', 'breakage'), ('card:issued', 'card_issued');

CREATE TABLE transfers (
    transfer_id    uuid PRIMARY KEY,
    seq            bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    debit_account  text NOT NULL REFERENCES accounts (account_id),
    credit_account text NOT NULL REFERENCES accounts (account_id),
    amount         bigint NOT NULL CHECK (amount > 0),
    reason         text NOT NULL,
    cause_event_id uuid NOT NULL,
    occurred_at    timestamptz NOT NULL,
    posted_at      timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz,
    memo           jsonb NOT NULL DEFAULT '{}',
    CHECK (debit_account <> credit_account)
);
CREATE INDEX transfers_debit_history ON transfers (debit_account, seq);
CREATE INDEX transfers_credit_history ON transfers (credit_account, seq);
CREATE INDEX transfers_cause ON transfers (cause_event_id);

-- Every credit to a member or unclaimed account is a lot; debits take lots, soonest expiry first.
CREATE TABLE lots (
    lot_id     uuid PRIMARY KEY REFERENCES transfers (transfer_id),
    account_id text NOT NULL REFERENCES accounts (account_id),
    amount     bigint NOT NULL CHECK (amount > 0),
    remaining  bigint NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
    earned_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX lots_live ON lots (account_id, expires_at) WHERE remaining > 0;
CREATE INDEX lots_due ON lots (expires_at) WHERE remaining > 0;

-- Which lots each debit took, and how much of each.
CREATE TABLE lot_debits (
    transfer_id uuid NOT NULL REFERENCES transfers (transfer_id),
    lot_id      uuid NOT NULL REFERENCES lots (lot_id),
    amount      bigint NOT NULL CHECK (amount > 0),
    PRIMARY KEY (transfer_id, lot_id)
);
CREATE INDEX lot_debits_lot ON lot_debits (lot_id);

-- Purchases that earned points, with what refunds reversed so far.
CREATE TABLE earnings (
    source_key      text PRIMARY KEY,
    event_id        uuid NOT NULL UNIQUE,
    identifier      text NOT NULL REFERENCES identifiers (identifier),
    issuer_account  text NOT NULL REFERENCES accounts (account_id),
    amount_minor    bigint NOT NULL CHECK (amount_minor > 0),
    currency        char(3) NOT NULL,
    points          bigint NOT NULL CHECK (points >= 0),
    refunded_minor  bigint NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor),
    points_reversed bigint NOT NULL DEFAULT 0 CHECK (points_reversed >= 0 AND points_reversed <= points),
    occurred_at     timestamptz NOT NULL
);

-- Refunds and reversals that arrived before their purchase.
CREATE TABLE parked_reversals (
    event_id     uuid PRIMARY KEY,
    source_key   text NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency     char(3) NOT NULL,
    occurred_at  timestamptz NOT NULL,
    reason       text NOT NULL,
    memo         jsonb NOT NULL DEFAULT '{}',
    parked_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX parked_reversals_source ON parked_reversals (source_key);

-- Earn rates for card spend by merchant category code ('*': any other), versioned by start time.
CREATE TABLE card_earn_rates (
    mcc             text NOT NULL CHECK (mcc = '*' OR mcc ~ '^[0-9]{4}$'),
    valid_from      timestamptz NOT NULL,
    points_per_unit numeric(12, 4) NOT NULL CHECK (points_per_unit >= 0),
    PRIMARY KEY (mcc, valid_from)
);
INSERT INTO card_earn_rates (mcc, valid_from, points_per_unit) VALUES
    ('*',    '2000-01-01T00:00:00Z', 1),    -- every purchase: 1 point per unit
    ('5411', '2000-01-01T00:00:00Z', 2),    -- grocery stores
    ('5812', '2000-01-01T00:00:00Z', 2),    -- restaurants
    ('4511', '2000-01-01T00:00:00Z', 3),    -- airlines
    ('7011', '2000-01-01T00:00:00Z', 3),    -- hotels
    ('5541', '2000-01-01T00:00:00Z', 0.5);  -- fuel

-- Events the ledger emits, written in the same transaction as the transfers they report;
-- a relay publishes them in order and deletes them.
CREATE TABLE outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic      text NOT NULL,
    key        text NOT NULL,
    payload    bytea NOT NULL,
    headers    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
