-- Reward offers that partners publish, and the outbox that carries their events to
-- loyalty.offers.v1: a change and its event are written in one transaction.

-- The rules mirror contracts.events.offers.OfferPayload; the API refuses what breaks them first.
CREATE TABLE offers (
    partner_id     text        NOT NULL REFERENCES partners (partner_id),
    offer_id       text        NOT NULL CHECK (offer_id ~ '^[A-Za-z0-9][A-Za-z0-9._~:-]{0,127}$'),
    revision       integer     NOT NULL CHECK (revision >= 1),
    kind           text        NOT NULL CHECK (kind IN ('product', 'voucher', 'discount')),
    title          text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description    text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 2000),
    category       text        NOT NULL CHECK (category ~ '^[a-z][a-z0-9_-]{0,39}$'),
    price_points   bigint      NOT NULL CHECK (price_points > 0 AND price_points <= 1000000000),
    stock          bigint      NOT NULL CHECK (stock >= 0 AND stock <= 1000000000),
    valid_from     timestamptz NOT NULL,
    valid_until    timestamptz NOT NULL,
    fulfilment_url text        CHECK (fulfilment_url ~ '^https?://' AND char_length(fulfilment_url) <= 2048),
    withdrawn_at   timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, offer_id),
    CONSTRAINT offers_window CHECK (valid_until > valid_from),
    CONSTRAINT offers_fulfilment CHECK (kind = 'voucher' OR fulfilment_url IS NOT NULL)
);

-- As in the points service, so that loyalty_runtime.outbox.OutboxRelay relays it.
CREATE TABLE outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic      text NOT NULL,
    key        text NOT NULL,
    payload    bytea NOT NULL,
    headers    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
