-- Every earn contract version leaves for the points service (loyalty.partner-contracts.v1), which values its
-- liability at the partners' issue prices. A version is published once through the outbox, in the transaction
-- that sets its published_at; the versions added before this migration wait with NULL and leave the same way.
ALTER TABLE earn_contracts ADD COLUMN published_at timestamptz;
CREATE INDEX earn_contracts_unpublished ON earn_contracts (partner_id, valid_from) WHERE published_at IS NULL;
