-- Redemption holds (two-phase transfers), gifts between members, and the issuer of every lot.

-- The account that issued a lot's points, kept through claims and gifts, so that settlement
-- can attribute breakage to the partner that sold those points. Unknown for older lots.
ALTER TABLE lots ADD COLUMN issuer text;

ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check CHECK (
    kind IN ('member', 'unclaimed', 'partner_issued', 'partner_redeemed', 'card_issued', 'breakage', 'receivable')
);

CREATE TABLE holds (
    hold_id        uuid PRIMARY KEY,
    member_id      uuid NOT NULL REFERENCES members (member_id),
    order_id       uuid NOT NULL,
    debit_account  text NOT NULL REFERENCES accounts (account_id),
    credit_account text NOT NULL REFERENCES accounts (account_id),
    amount         bigint NOT NULL CHECK (amount > 0),
    status         text NOT NULL CHECK (status IN ('pending', 'posted', 'voided')),
    void_reason    text,
    expires_at     timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    settled_at     timestamptz,
    transfer_id    uuid REFERENCES transfers (transfer_id),
    CHECK ((status = 'posted') = (transfer_id IS NOT NULL)),
    CHECK ((status = 'voided') = (void_reason IS NOT NULL)),
    CHECK ((status = 'pending') = (settled_at IS NULL))
);
CREATE INDEX holds_due ON holds (expires_at) WHERE status = 'pending';
CREATE INDEX holds_pending_by_account ON holds (debit_account) WHERE status = 'pending';

CREATE TABLE gifts (
    gift_id   uuid PRIMARY KEY,
    sender    uuid NOT NULL REFERENCES members (member_id),
    recipient uuid NOT NULL REFERENCES members (member_id),
    amount    bigint NOT NULL CHECK (amount > 0),
    message   text NOT NULL DEFAULT '' CHECK (length(message) <= 200),
    given_at  timestamptz NOT NULL,
    CHECK (sender <> recipient)
);
CREATE INDEX gifts_by_sender ON gifts (sender, given_at);
