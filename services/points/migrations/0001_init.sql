-- Inbox: every consumed event_id, written in the same transaction as its effects,
-- so that a redelivered event is recognised and applied at most once.
CREATE TABLE inbox (
    event_id    uuid PRIMARY KEY,
    topic       text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Purchases and refunds that partners reported, as the points service received them.
CREATE TABLE partner_transactions (
    event_id     uuid PRIMARY KEY REFERENCES inbox (event_id),
    kind         text NOT NULL CHECK (kind IN ('purchase', 'refund')),
    partner_id   text NOT NULL,
    customer_ref text NOT NULL,
    external_id  text NOT NULL,
    purchase_id  text NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency     char(3) NOT NULL,
    category     text,
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (partner_id, kind, external_id)
);
CREATE INDEX partner_transactions_customer ON partner_transactions (partner_id, customer_ref);
