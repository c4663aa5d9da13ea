-- Adjustments (points/domain/adjustments.py): ops credit or debit a member with a reason and a note; above the
-- approval threshold a second ops user approves before it posts (four eyes).

-- The adjustments account ('adjustments', kind 'adjustment'): credits to members come from it, debits go back
-- to it; it may go below zero (like an issuer's). The kind is added to whatever list the constraint has now,
-- so that kinds other migrations of this round add stay allowed whatever order they land in.
DO $$
DECLARE
    current text;
BEGIN
    SELECT pg_get_constraintdef(oid) INTO current
    FROM pg_constraint WHERE conrelid = 'accounts'::regclass AND conname = 'accounts_kind_check';
    IF position('''adjustment''' IN current) = 0 THEN
        ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check;
        EXECUTE 'ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check '
            || replace(current, 'ARRAY[', 'ARRAY[''adjustment''::text, ');
    END IF;
END
$$;
INSERT INTO accounts (account_id, kind) VALUES ('adjustments', 'adjustment');

CREATE TABLE adjustments (
    adjustment_id  uuid PRIMARY KEY,
    member_id      uuid NOT NULL REFERENCES members (member_id),
    direction      text NOT NULL CHECK (direction IN ('credit', 'debit')),
    points         bigint NOT NULL CHECK (points > 0 AND points <= 10000000),
    reason         text NOT NULL CHECK (reason IN ('goodwill', 'service_recovery', 'correction', 'fraud_reversal',
                                                   'migration_fix', 'other')),
    note           text NOT NULL CHECK (length(note) BETWEEN 1 AND 1000),
    requested_by   text NOT NULL CHECK (length(requested_by) BETWEEN 1 AND 200),
    requested_at   timestamptz NOT NULL,
    -- The approval threshold in force at the request: above it, a second ops user decides.
    threshold      bigint NOT NULL CHECK (threshold >= 0),
    status         text NOT NULL CHECK (status IN ('pending', 'posted', 'rejected')),
    decided_by     text,
    decided_at     timestamptz,
    decision_note  text CHECK (length(decision_note) <= 1000),
    posted_at      timestamptz,
    transfer_id    uuid UNIQUE,
    -- The request as sent, so that the same adjustment id with another body is refused.
    request_sha256 text NOT NULL CHECK (request_sha256 ~ '^[0-9a-f]{64}$'),
    CHECK ((decided_by IS NULL) = (decided_at IS NULL)),
    CHECK ((status = 'posted') = (posted_at IS NOT NULL AND transfer_id IS NOT NULL)),
    CHECK (status <> 'rejected' OR decided_by IS NOT NULL),
    CHECK (status <> 'pending' OR decided_by IS NULL),
    -- Four eyes, held by the database too: above the threshold, only a second ops user posts or rejects it.
    CHECK (decided_by IS NULL OR decided_by <> requested_by),
    CHECK (points <= threshold OR status <> 'posted' OR decided_by IS NOT NULL)
);
CREATE INDEX adjustments_pending ON adjustments (requested_at, adjustment_id) WHERE status = 'pending';
CREATE INDEX adjustments_newest ON adjustments (requested_at DESC, adjustment_id DESC);
CREATE INDEX adjustments_by_member ON adjustments (member_id, requested_at);
