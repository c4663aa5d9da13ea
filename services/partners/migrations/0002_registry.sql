-- Partner credentials, earn contracts versioned by date, and the replay log of signed requests.
-- Secrets are not stored: each key's secret is derived from PARTNER_KEY_SECRET and its key_id.

ALTER TABLE partners
    ADD CONSTRAINT partners_name_length CHECK (char_length(name) BETWEEN 1 AND 200);

CREATE TABLE api_keys (
    key_id     text PRIMARY KEY CHECK (key_id ~ '^pk_[A-Za-z0-9_-]{24}$'),
    partner_id text NOT NULL REFERENCES partners (partner_id),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    CONSTRAINT api_keys_revoked_after_created CHECK (revoked_at IS NULL OR revoked_at >= created_at)
);
CREATE INDEX api_keys_partner_idx ON api_keys (partner_id);

-- {category: points per major unit}: slug keys, numbers from 0 (category earns nothing) with at most 4 decimals.
CREATE FUNCTION category_rates_are_valid(rates jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE WHEN jsonb_typeof(rates) <> 'object' THEN false ELSE (
        SELECT coalesce(bool_and(
            category ~ '^[a-z][a-z0-9_-]{0,39}$'
            AND CASE WHEN jsonb_typeof(rate) = 'number'
                     THEN rate::numeric >= 0 AND rate::numeric < 1000000 AND scale(rate::numeric) <= 4
                     ELSE false END
        ), true)
        FROM jsonb_each(rates) AS r(category, rate)
    ) END
$$;

-- Plain numeric with a scale check, so that a rate with too many decimals is refused rather than rounded.
CREATE TABLE earn_contracts (
    partner_id                       text    NOT NULL REFERENCES partners (partner_id),
    valid_from                       date    NOT NULL,
    currency                         char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    points_per_unit                  numeric NOT NULL,
    category_rates                   jsonb   NOT NULL DEFAULT '{}'::jsonb,
    issue_price_minor_per_point      numeric NOT NULL,
    redemption_price_minor_per_point numeric NOT NULL,
    created_at                       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, valid_from),
    CONSTRAINT earn_contracts_points_per_unit CHECK (
        points_per_unit > 0 AND points_per_unit < 1000000 AND scale(points_per_unit) <= 4),
    CONSTRAINT earn_contracts_category_rates CHECK (category_rates_are_valid(category_rates)),
    CONSTRAINT earn_contracts_issue_price CHECK (
        issue_price_minor_per_point > 0 AND issue_price_minor_per_point < 10000000000
        AND scale(issue_price_minor_per_point) <= 4),
    CONSTRAINT earn_contracts_redemption_price CHECK (
        redemption_price_minor_per_point > 0 AND redemption_price_minor_per_point < 10000000000
        AND scale(redemption_price_minor_per_point) <= 4)
);

-- Each accepted signature once. A row matters only while its timestamp is inside the replay window:
-- an older timestamp is refused anyway, so a background task deletes rows by signed_at.
CREATE TABLE seen_signatures (
    signature text PRIMARY KEY CHECK (signature ~ '^[0-9a-f]{64}$'),
    signed_at timestamptz NOT NULL,
    seen_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX seen_signatures_signed_at_idx ON seen_signatures (signed_at);
