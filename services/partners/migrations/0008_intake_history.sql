-- What the partner portal lists: each purchase and refund intake accepted, with what it said, and each one it
-- refused after the request was authenticated, with the reason. One sequence orders both, newest first.
CREATE SEQUENCE intake_log_seq AS bigint;

-- Written by the same INSERT that claims the idempotency key, so accepting a request costs no extra round trip.
-- Rows accepted before this migration have NULL in these columns: intake did not keep what they said.
ALTER TABLE intake_requests
    ADD COLUMN seq          bigint,
    ADD COLUMN customer_ref text COLLATE "C" CHECK (char_length(customer_ref) BETWEEN 1 AND 128),
    ADD COLUMN purchase_id  text COLLATE "C" CHECK (char_length(purchase_id) BETWEEN 1 AND 128),
    ADD COLUMN amount_minor bigint,
    ADD COLUMN currency     text COLLATE "C" CHECK (char_length(currency) = 3),
    ADD COLUMN points       bigint;

COMMENT ON COLUMN intake_requests.purchase_id IS 'Refunds only: the purchase it reverses (a purchase''s own id is external_id).';
COMMENT ON COLUMN intake_requests.points IS 'Purchases only: the points its contract earned.';

-- Rows accepted before this migration take their place in the order they were accepted.
UPDATE intake_requests AS r
   SET seq = o.seq
  FROM (SELECT partner_id, kind, idempotency_key,
               row_number() OVER (ORDER BY accepted_at, partner_id, kind, idempotency_key) AS seq
          FROM intake_requests) AS o
 WHERE (r.partner_id, r.kind, r.idempotency_key) = (o.partner_id, o.kind, o.idempotency_key);
SELECT setval('intake_log_seq', coalesce((SELECT max(seq) FROM intake_requests), 0) + 1, false);

ALTER TABLE intake_requests
    ALTER COLUMN seq SET DEFAULT nextval('intake_log_seq'),
    ALTER COLUMN seq SET NOT NULL;
ALTER SEQUENCE intake_log_seq OWNED BY intake_requests.seq;

CREATE INDEX intake_requests_newest_first ON intake_requests (partner_id, seq);

-- A request that proved which partner sent it (a valid, fresh, unused signature) and was refused: the domain's
-- reason, a conflict with what intake accepted before, or a body that does not validate. Unauthenticated
-- requests are never stored. Each item of a refused batch has its row. Fields are what the body said, when it
-- said something of the right type; none of it is trusted.
CREATE TABLE intake_refusals (
    seq             bigint      PRIMARY KEY DEFAULT nextval('intake_log_seq'),
    partner_id      text        COLLATE "C" NOT NULL,
    kind            text        COLLATE "C" NOT NULL CHECK (kind IN ('purchase', 'refund')),
    received_at     timestamptz NOT NULL DEFAULT now(),
    reason          text        NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 1000),
    idempotency_key text        CHECK (char_length(idempotency_key) BETWEEN 1 AND 128),
    customer_ref    text        CHECK (char_length(customer_ref) BETWEEN 1 AND 128),
    purchase_id     text        CHECK (char_length(purchase_id) BETWEEN 1 AND 128),
    refund_id       text        CHECK (char_length(refund_id) BETWEEN 1 AND 128),
    amount_minor    bigint,
    currency        text        CHECK (char_length(currency) BETWEEN 1 AND 16)
);

CREATE INDEX intake_refusals_newest_first ON intake_refusals (partner_id, seq);
