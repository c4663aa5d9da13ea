-- Batch import of the old programme (points/domain/imports.py): members, balances as lots, purchase history.

-- The migration account ('migration', kind 'migration'): an issuer like the card's. Every migrated balance is a
-- transfer from it to a member, so minus its balance is what the import brought in. The kind is added to
-- whatever list the constraint has now, so that kinds other migrations of this round add stay allowed.
DO $$
DECLARE
    current text;
BEGIN
    SELECT pg_get_constraintdef(oid) INTO current
    FROM pg_constraint WHERE conrelid = 'accounts'::regclass AND conname = 'accounts_kind_check';
    IF position('''migration''' IN current) = 0 THEN
        ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check;
        EXECUTE 'ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check '
            || replace(current, 'ARRAY[', 'ARRAY[''migration''::text, ');
    END IF;
END
$$;
INSERT INTO accounts (account_id, kind) VALUES ('migration', 'migration') ON CONFLICT DO NOTHING;

-- One run per file and kind (its content's sha256): a rerun after a crash resumes after `rows_done`,
-- which each chunk's transaction advances together with what the chunk wrote.
CREATE TABLE import_runs (
    run_id         uuid PRIMARY KEY,
    file_sha256    text NOT NULL CHECK (file_sha256 ~ '^[0-9a-f]{64}$'),
    kind           text NOT NULL CHECK (kind IN ('members', 'balances', 'purchases')),
    file_name      text NOT NULL CHECK (length(file_name) <= 500),
    actor          text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    -- Where a date's day ends (an expiry without a time): kept, so that a resumed run reads the rest alike.
    time_zone      text NOT NULL,
    rows_total     bigint NOT NULL CHECK (rows_total >= 0),
    rows_done      bigint NOT NULL DEFAULT 0 CHECK (rows_done >= 0 AND rows_done <= rows_total),
    rows_imported  bigint NOT NULL DEFAULT 0 CHECK (rows_imported >= 0),
    rows_existing  bigint NOT NULL DEFAULT 0 CHECK (rows_existing >= 0),
    rows_refused   bigint NOT NULL DEFAULT 0 CHECK (rows_refused >= 0),
    points         bigint NOT NULL DEFAULT 0 CHECK (points >= 0),
    -- Refused rows by reason ({"unknown_member": 3, ...}) and the first ones ([{"line", "refusal", "detail"}]).
    refusals       jsonb NOT NULL DEFAULT '{}',
    first_errors   jsonb NOT NULL DEFAULT '[]',
    status         text NOT NULL CHECK (status IN ('running', 'completed')),
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    resumed        integer NOT NULL DEFAULT 0 CHECK (resumed >= 0),
    CHECK ((status = 'completed') = (finished_at IS NOT NULL)),
    CHECK (status <> 'completed' OR rows_done = rows_total),
    CHECK (rows_imported + rows_existing + rows_refused = rows_done),
    UNIQUE (file_sha256, kind)
);
CREATE INDEX import_runs_newest ON import_runs (started_at DESC, run_id);

-- Every imported balance row, once (its legacy key): the gate that makes a rerun or an overlapping file change
-- nothing. Its transfer (and lot) has `transfer_id` (no foreign keys: a million rows are checked once, by
-- `make verify`'s imported_balances_match_their_rows, instead of row by row as they are written).
CREATE TABLE import_balance_rows (
    row_key     text PRIMARY KEY CHECK (length(row_key) BETWEEN 1 AND 300),
    run_id      uuid NOT NULL REFERENCES import_runs (run_id),
    line_no     bigint NOT NULL,
    member_id   uuid NOT NULL,
    transfer_id uuid NOT NULL,
    points      bigint NOT NULL CHECK (points > 0),
    earned_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- Imported members by their legacy id (their member id derives from it, points/domain/imports.py).
CREATE TABLE import_members (
    legacy_id  text PRIMARY KEY CHECK (length(legacy_id) BETWEEN 1 AND 100),
    member_id  uuid NOT NULL UNIQUE REFERENCES members (member_id),
    run_id     uuid NOT NULL REFERENCES import_runs (run_id),
    line_no    bigint NOT NULL
);

-- The old programme's purchase history, kept as history only: its points are in the migrated balances.
CREATE TABLE imported_purchases (
    partner_id   text NOT NULL,
    purchase_id  text NOT NULL,
    customer_ref text NOT NULL,
    identifier   text NOT NULL,
    member_id    uuid REFERENCES members (member_id),
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency     char(3) NOT NULL,
    occurred_at  timestamptz NOT NULL,
    run_id       uuid NOT NULL REFERENCES import_runs (run_id),
    line_no      bigint NOT NULL,
    PRIMARY KEY (partner_id, purchase_id)
);
CREATE INDEX imported_purchases_member ON imported_purchases (member_id, occurred_at) WHERE member_id IS NOT NULL;
