-- Every purchase and refund that intake accepted, so that a key or an id used again is judged at intake
-- (partners.domain.idempotency): a key names one body forever, a purchase_id (refund_id) is accepted under
-- one key only. A row is committed only after the broker confirmed its event.
-- No foreign key to partners: the partner is the one that signed the request, and a batch of 1,000 rows
-- would pay 1,000 checks for it on the request's path. Keys and ids compare byte by byte (COLLATE "C"):
-- they are identifiers, and a locale's collation would make every index comparison slower.
CREATE TABLE intake_requests (
    partner_id      text        COLLATE "C" NOT NULL,
    kind            text        COLLATE "C" NOT NULL CHECK (kind IN ('purchase', 'refund')),
    idempotency_key text        COLLATE "C" NOT NULL CHECK (char_length(idempotency_key) BETWEEN 1 AND 128),
    body_hash       bytea       NOT NULL CHECK (octet_length(body_hash) = 32),
    external_id     text        COLLATE "C" NOT NULL CHECK (char_length(external_id) BETWEEN 1 AND 128),
    event_id        uuid        NOT NULL,
    accepted_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, kind, idempotency_key),
    CONSTRAINT intake_requests_one_key_per_external_id UNIQUE (partner_id, kind, external_id)
);
