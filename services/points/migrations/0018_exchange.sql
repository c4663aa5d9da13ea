-- Points exchange (issue 13, item 2): card points in at dated rates; alliance points out to partner
-- programmes (miles) as two-phase holds (domain/exchange.py).

-- The issuer of converted card points: an account kind of its own, added to the list whatever else is in it.
DO $$
DECLARE
    current text;
BEGIN
    SELECT pg_get_constraintdef(oid) INTO current
    FROM pg_constraint WHERE conrelid = 'accounts'::regclass AND conname = 'accounts_kind_check';
    IF position('''card_exchange''' IN current) = 0 THEN
        ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check;
        EXECUTE 'ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check '
            || replace(current, 'ARRAY[', 'ARRAY[''card_exchange''::text, ');
    END IF;
END
$$;
INSERT INTO accounts (account_id, kind) VALUES ('card-points:exchange', 'card_exchange') ON CONFLICT DO NOTHING;

-- Alliance points per card point, from a moment on (ops); a conversion uses the version in force when the card
-- system debited its points.
CREATE TABLE card_points_rates (
    valid_from            timestamptz PRIMARY KEY,
    points_per_card_point numeric NOT NULL CHECK (points_per_card_point > 0),
    created_by            text NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now()
);

-- Each conversion once (its request id), with the rate used and the fraction not credited.
CREATE TABLE card_points_conversions (
    request_id      uuid PRIMARY KEY,
    event_id        uuid NOT NULL,
    card_token      text NOT NULL,
    card_points     bigint NOT NULL CHECK (card_points > 0),
    rate_valid_from timestamptz NOT NULL,
    rate            numeric NOT NULL,
    points          bigint NOT NULL CHECK (points > 0),
    remainder       numeric NOT NULL CHECK (remainder >= 0 AND remainder < 1),
    credited        text NOT NULL REFERENCES accounts (account_id),
    transfer_id     uuid NOT NULL UNIQUE REFERENCES transfers (transfer_id),
    occurred_at     timestamptz NOT NULL,
    converted_at    timestamptz NOT NULL DEFAULT now()
);

-- A partner programme that takes alliance points (ops): its units, limits and dated rates.
CREATE TABLE exchange_programmes (
    partner_id         text PRIMARY KEY,
    units_name         text NOT NULL CHECK (length(units_name) BETWEEN 1 AND 40),
    min_points         bigint NOT NULL CHECK (min_points >= 1),
    step_points        bigint NOT NULL CHECK (step_points >= 1),
    daily_limit_points bigint NOT NULL CHECK (daily_limit_points >= min_points),
    active             boolean NOT NULL DEFAULT true,
    updated_by         text NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE exchange_rates (
    partner_id      text NOT NULL REFERENCES exchange_programmes (partner_id),
    valid_from      timestamptz NOT NULL,
    units_per_point numeric NOT NULL CHECK (units_per_point > 0),
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, valid_from)
);

-- A member's exchange out: what was asked and quoted; what became of it is its hold's status.
CREATE TABLE exchanges (
    exchange_id        uuid PRIMARY KEY,
    member_id          uuid NOT NULL REFERENCES members (member_id),
    partner_id         text NOT NULL REFERENCES exchange_programmes (partner_id),
    membership_number  text NOT NULL,
    points             bigint NOT NULL CHECK (points > 0),
    units              bigint NOT NULL CHECK (units > 0),
    units_name         text NOT NULL,
    units_per_point    numeric NOT NULL,
    daily_limit_points bigint NOT NULL,
    programme_day      date NOT NULL,
    hold_id            uuid NOT NULL UNIQUE REFERENCES holds (hold_id),
    requested_at       timestamptz NOT NULL,
    partner_reference  text,
    decision           text CHECK (decision IN ('confirm', 'refuse')),
    decision_reason    text,
    decided_at         timestamptz
);
CREATE INDEX exchanges_member_day ON exchanges (member_id, partner_id, programme_day);
CREATE INDEX exchanges_member_requested ON exchanges (member_id, requested_at DESC);
