-- Member prices ("one customer, one price"): what members of a tier pay for an offer, offers open to some
-- tiers only, and each member's tier as the points service announces it on loyalty.member-tiers.v1.
ALTER TABLE catalog
    ADD COLUMN tier_prices jsonb  NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(tier_prices) = 'object'),
    ADD COLUMN tiers_only  text[] NOT NULL DEFAULT '{}';

-- The latest tier change seen per member (TierChanged events may arrive twice or out of order).
CREATE TABLE member_tiers (
    member_id  uuid        PRIMARY KEY,
    tier       text,
    changed_at timestamptz NOT NULL,
    event_id   uuid        NOT NULL
);

-- What one unit cost the member when the order was placed, beside the offer's price for everyone then.
ALTER TABLE orders
    ADD COLUMN tier text,
    ADD COLUMN base_unit_points bigint CHECK (base_unit_points > 0);
