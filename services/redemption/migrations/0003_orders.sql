-- Redemption orders (the saga's state) and the outbox of the commands and events it emits.

CREATE TABLE orders (
    order_id            uuid PRIMARY KEY,
    member_id           uuid NOT NULL,
    idempotency_key     text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 128),
    partner_id          text NOT NULL,
    offer_id            text NOT NULL,
    kind                text NOT NULL CHECK (kind IN ('product', 'voucher', 'discount')),
    quantity            int NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    unit_points         bigint NOT NULL CHECK (unit_points > 0),
    state               text NOT NULL CHECK (state IN ('awaiting_hold', 'fulfilling', 'capturing', 'cancelling',
                                                       'fulfilled', 'cancelled', 'payment_failed')),
    hold_id             uuid NOT NULL UNIQUE,
    hold_expires_at     timestamptz NOT NULL,
    fulfilment_deadline timestamptz NOT NULL,
    stock_reserved      boolean NOT NULL DEFAULT false,
    attempts            int NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz,
    voucher_code        text,
    partner_reference   text,
    cancel_reason       text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (member_id, idempotency_key),
    FOREIGN KEY (partner_id, offer_id) REFERENCES catalog (partner_id, offer_id),
    CHECK (fulfilment_deadline < hold_expires_at),
    CHECK (state NOT IN ('fulfilled', 'cancelled', 'payment_failed') OR NOT stock_reserved),
    CHECK ((state = 'cancelled') <= (cancel_reason IS NOT NULL))
);
CREATE INDEX orders_by_member ON orders (member_id, created_at DESC, order_id);
CREATE INDEX orders_to_fulfil ON orders (next_attempt_at) WHERE state = 'fulfilling';

CREATE TABLE outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic      text NOT NULL,
    key        text NOT NULL,
    payload    bytea NOT NULL,
    headers    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
