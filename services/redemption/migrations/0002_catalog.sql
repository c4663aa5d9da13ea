-- The member-facing catalog, built from the offers partners publish on loyalty.offers.v1.
-- A row holds the highest revision seen of an offer; the stock counters belong to orders,
-- and no offer event ever changes them.
CREATE TABLE catalog (
    partner_id     text        NOT NULL,
    offer_id       text        NOT NULL,
    revision       bigint      NOT NULL CHECK (revision >= 1),
    kind           text        NOT NULL CHECK (kind IN ('product', 'voucher', 'discount')),
    title          text        NOT NULL,
    description    text        NOT NULL DEFAULT '',
    category       text        NOT NULL,
    price_points   bigint      NOT NULL CHECK (price_points > 0),
    stock          bigint      NOT NULL CHECK (stock >= 0),
    valid_from     timestamptz NOT NULL,
    valid_until    timestamptz NOT NULL,
    fulfilment_url text,
    withdrawn      boolean     NOT NULL DEFAULT false,
    -- Units held by orders in progress, and units sold. No CHECK ties them to stock: a partner
    -- may lower the stock below what is already sold; what is left to sell is then 0.
    units_reserved bigint      NOT NULL DEFAULT 0 CHECK (units_reserved >= 0),
    units_sold     bigint      NOT NULL DEFAULT 0 CHECK (units_sold >= 0),
    published_at   timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, offer_id),
    CONSTRAINT catalog_window CHECK (valid_until > valid_from)
);

-- Browsing pages through (price_points, partner_id, offer_id), optionally within a category or a partner.
CREATE INDEX catalog_browse ON catalog (price_points, partner_id, offer_id) WHERE NOT withdrawn;
CREATE INDEX catalog_by_category ON catalog (category, price_points, partner_id, offer_id) WHERE NOT withdrawn;
CREATE INDEX catalog_by_partner ON catalog (partner_id, price_points, offer_id) WHERE NOT withdrawn;

-- Withdrawals of offers the catalog has not seen (yet): an older OfferPublished arriving later stays out.
CREATE TABLE catalog_tombstones (
    partner_id text   NOT NULL,
    offer_id   text   NOT NULL,
    revision   bigint NOT NULL CHECK (revision >= 1),
    PRIMARY KEY (partner_id, offer_id)
);
