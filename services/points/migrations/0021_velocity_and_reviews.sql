-- Fraud and velocity controls (points/domain/velocity.py): the rules ops set, the counts they read, and the
-- earnings they put on hold for review in the suspense account `review:pending`.

-- The suspense account ('review:pending', kind 'review'). The kind is added to whatever list the constraint has
-- now, so that kinds other migrations of this round add stay allowed whatever order they land in.
DO $$
DECLARE
    current text;
BEGIN
    SELECT pg_get_constraintdef(oid) INTO current
    FROM pg_constraint WHERE conrelid = 'accounts'::regclass AND conname = 'accounts_kind_check';
    IF position('''review''' IN current) = 0 THEN
        ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check;
        EXECUTE 'ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check '
            || replace(current, 'ARRAY[', 'ARRAY[''review''::text, ');
    END IF;
END
$$;
INSERT INTO accounts (account_id, kind) VALUES ('review:pending', 'review');

-- Every version of the rules ops put; the current one is the highest version.
CREATE TABLE velocity_rules (
    version    integer PRIMARY KEY CHECK (version > 0),
    rules      jsonb NOT NULL,
    set_by     text NOT NULL,
    set_at     timestamptz NOT NULL DEFAULT now()
);

-- What the earn batch counted per scope ('member:<id>', 'identifier:<identifier>', 'partner:<id>',
-- 'amount:<member or identifier>:<currency>') and UTC day or hour: only while a rule that reads it is on.
CREATE TABLE velocity_counts (
    scope        text NOT NULL,
    span         text NOT NULL CHECK (span IN ('day', 'hour')),
    bucket       timestamptz NOT NULL,
    points       bigint NOT NULL DEFAULT 0,
    purchases    bigint NOT NULL DEFAULT 0,
    amount_minor bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, span, bucket)
);

-- An earning the rules held: its points went from its issuer to `review:pending`; a decision moves them on.
CREATE TABLE earning_reviews (
    review_id      uuid PRIMARY KEY,
    source_key     text NOT NULL UNIQUE REFERENCES earnings (source_key),
    event_id       uuid NOT NULL,
    identifier     text NOT NULL,
    member_id      uuid REFERENCES members (member_id),
    partner_id     text,
    issuer_account text NOT NULL,
    amount_minor   bigint NOT NULL,
    currency       text NOT NULL,
    points         bigint NOT NULL CHECK (points > 0),
    rule           text NOT NULL,
    detail         text NOT NULL,
    earned_at      timestamptz NOT NULL,
    lot_expires_at timestamptz NOT NULL,
    status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'released', 'rejected', 'cancelled')),
    opened_at      timestamptz NOT NULL DEFAULT now(),
    decided_by     text,
    decided_at     timestamptz,
    note           text CHECK (length(note) <= 500),
    decided_points bigint,
    transfer_id    uuid REFERENCES transfers (transfer_id),
    CHECK ((status IN ('released', 'rejected')) = (transfer_id IS NOT NULL)),
    CHECK ((status = 'open') = (decided_at IS NULL))
);
CREATE INDEX earning_reviews_open ON earning_reviews (opened_at, review_id) WHERE status = 'open';
CREATE INDEX earning_reviews_by_status ON earning_reviews (status, opened_at DESC);
CREATE INDEX earning_reviews_open_by_member ON earning_reviews (member_id) WHERE status = 'open';

-- Redemptions per member and day (the rule that refuses holds beyond a count).
CREATE INDEX holds_by_member ON holds (member_id, created_at);
