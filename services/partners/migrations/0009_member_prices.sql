-- Member prices ("one customer, one price"): an offer may cost members of a tier another price, and may be
-- open to some tiers only. They mirror contracts.events.offers.OfferPayload.tier_prices and tiers_only.
ALTER TABLE offers
    ADD COLUMN tier_prices jsonb  NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(tier_prices) = 'object'),
    ADD COLUMN tiers_only  text[] NOT NULL DEFAULT '{}';
