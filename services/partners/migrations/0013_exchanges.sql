-- Points exchange out (issue 13, item 2): the exchanges the points service asked of a partner, the partner's
-- decision, and what the ledger did with the hold; and the exchange lines of settlement.

CREATE TABLE exchange_requests (
    exchange_id       uuid PRIMARY KEY,
    partner_id        text NOT NULL REFERENCES partners (partner_id),
    member_id         uuid NOT NULL,
    membership_number text NOT NULL,
    points            bigint NOT NULL CHECK (points > 0),
    units             bigint NOT NULL CHECK (units > 0),
    units_name        text NOT NULL,
    units_per_point   numeric NOT NULL CHECK (units_per_point > 0),
    requested_at      timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed', 'refused')),
    partner_reference text,
    refuse_reason     text,
    decided_by        text,
    decided_at        timestamptz,
    settled           text CHECK (settled IN ('captured', 'released')),
    settled_reason    text,
    settled_at        timestamptz,
    received_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'confirmed') = (partner_reference IS NOT NULL)),
    CHECK ((status = 'refused') = (refuse_reason IS NOT NULL)),
    CHECK ((status = 'pending') = (decided_at IS NULL))
);
CREATE INDEX exchange_requests_partner ON exchange_requests (partner_id, status, requested_at DESC);

-- Points exchanged out to a partner's programme are a measure of their own, priced at the redemption price
-- of the contract in force (partners.domain.settlement), on their own figures of each line.
ALTER TABLE settlement_entries DROP CONSTRAINT settlement_entries_measure_check;
ALTER TABLE settlement_entries ADD CONSTRAINT settlement_entries_measure_check
    CHECK (measure IN ('issued', 'redeemed', 'breakage', 'gifted', 'exchanged'));

ALTER TABLE settlement_statements ADD COLUMN points_exchanged bigint NOT NULL DEFAULT 0;
ALTER TABLE settlement_lines ADD COLUMN points_exchanged bigint NOT NULL DEFAULT 0;
ALTER TABLE settlement_lines ADD COLUMN exchange_amount_minor bigint NOT NULL DEFAULT 0;
ALTER TABLE settlement_lines DROP CONSTRAINT settlement_lines_net;
ALTER TABLE settlement_lines ADD CONSTRAINT settlement_lines_net
    CHECK (net_minor = redemption_amount_minor + exchange_amount_minor + breakage_rebate_minor - issue_amount_minor);
