-- Settlement between the programme and its partners, derived from the ledger's TransferPosted events.

-- The share of the issue price refunded to the issuer for its points that expired (breakage).
-- Existing contract versions keep working: they refund nothing.
ALTER TABLE earn_contracts
    ADD COLUMN breakage_rebate_share numeric NOT NULL DEFAULT 0,
    ADD CONSTRAINT earn_contracts_breakage_rebate_share CHECK (
        breakage_rebate_share >= 0 AND breakage_rebate_share <= 1 AND scale(breakage_rebate_share) <= 4);

-- The ledger transfers that settlement needs (those touching a partner's accounts, expiries of
-- partner-issued points, gifts), one row per transfer id whatever event carried it.
-- posted_at is the envelope's occurred_at: the transfer's posting time in the ledger.
CREATE TABLE ledger_transfers (
    transfer_id    uuid PRIMARY KEY,
    event_id       uuid NOT NULL,
    debit_account  text NOT NULL,
    credit_account text NOT NULL,
    amount         bigint NOT NULL CHECK (amount > 0),
    reason         text NOT NULL,
    issuer_account text,
    posted_at      timestamptz NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now()
);

-- What each transfer means to settlement: signed points per partner and measure
-- (partner_id is NULL for programme-wide measures: gifts).
CREATE TABLE settlement_entries (
    transfer_id uuid NOT NULL REFERENCES ledger_transfers (transfer_id),
    partner_id  text,
    measure     text NOT NULL CHECK (measure IN ('issued', 'redeemed', 'breakage', 'gifted')),
    points      bigint NOT NULL CHECK (points <> 0),
    posted_at   timestamptz NOT NULL,
    CHECK ((partner_id IS NULL) = (measure = 'gifted'))
);
CREATE INDEX settlement_entries_posted ON settlement_entries (posted_at);
CREATE INDEX settlement_entries_partner_posted ON settlement_entries (partner_id, posted_at);

-- How far the consumer got on each partition of the ledger topic: the watermark of finalisation.
CREATE TABLE ledger_partitions (
    topic            text NOT NULL,
    partition        integer NOT NULL CHECK (partition >= 0),
    next_offset      bigint NOT NULL CHECK (next_offset >= 0),
    newest_posted_at timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- Finalised statements: written once per month, never changed.
CREATE TABLE settlement_runs (
    period        text PRIMARY KEY CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    period_start  timestamptz NOT NULL,
    period_end    timestamptz NOT NULL CHECK (period_end > period_start),
    gifted_points bigint NOT NULL,
    forced        boolean NOT NULL,
    watermark     jsonb NOT NULL,
    finalised_by  text NOT NULL,
    finalised_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE settlement_statements (
    period          text NOT NULL REFERENCES settlement_runs (period),
    partner_id      text NOT NULL REFERENCES partners (partner_id),
    points_issued   bigint NOT NULL,
    points_redeemed bigint NOT NULL,
    breakage_points bigint NOT NULL,
    PRIMARY KEY (period, partner_id)
);

-- One line per contract version in force during the period; amounts in minor units of `currency`.
CREATE TABLE settlement_lines (
    period                           text    NOT NULL,
    partner_id                       text    NOT NULL,
    contract_valid_from              date    NOT NULL,
    currency                         char(3) NOT NULL,
    issue_price_minor_per_point      numeric NOT NULL,
    redemption_price_minor_per_point numeric NOT NULL,
    breakage_rebate_share            numeric NOT NULL,
    points_issued                    bigint  NOT NULL,
    issue_amount_minor               bigint  NOT NULL,
    points_redeemed                  bigint  NOT NULL,
    redemption_amount_minor          bigint  NOT NULL,
    breakage_points                  bigint  NOT NULL,
    breakage_rebate_minor            bigint  NOT NULL,
    net_minor                        bigint  NOT NULL,
    PRIMARY KEY (period, partner_id, contract_valid_from),
    FOREIGN KEY (period, partner_id) REFERENCES settlement_statements (period, partner_id),
    CONSTRAINT settlement_lines_net CHECK (net_minor = redemption_amount_minor + breakage_rebate_minor - issue_amount_minor)
);

CREATE FUNCTION refuse_settlement_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'finalised settlement is immutable: % on % refused', TG_OP, TG_TABLE_NAME
        USING HINT = 'a correction is a new entry in a later period, never an edit of a finalised one';
END
$$;

CREATE TRIGGER settlement_runs_immutable BEFORE UPDATE OR DELETE ON settlement_runs
    FOR EACH ROW EXECUTE FUNCTION refuse_settlement_change();
CREATE TRIGGER settlement_statements_immutable BEFORE UPDATE OR DELETE ON settlement_statements
    FOR EACH ROW EXECUTE FUNCTION refuse_settlement_change();
CREATE TRIGGER settlement_lines_immutable BEFORE UPDATE OR DELETE ON settlement_lines
    FOR EACH ROW EXECUTE FUNCTION refuse_settlement_change();
CREATE TRIGGER settlement_runs_no_truncate BEFORE TRUNCATE ON settlement_runs
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_settlement_change();
CREATE TRIGGER settlement_statements_no_truncate BEFORE TRUNCATE ON settlement_statements
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_settlement_change();
CREATE TRIGGER settlement_lines_no_truncate BEFORE TRUNCATE ON settlement_lines
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_settlement_change();
