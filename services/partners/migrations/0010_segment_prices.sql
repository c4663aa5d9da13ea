-- Prices per published segment of the points service ({segment id: points}), beside the prices per tier (0009).
ALTER TABLE offers
    ADD COLUMN segment_prices jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(segment_prices) = 'object');
