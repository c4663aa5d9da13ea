-- Data rights (partners/adapters/member_data_store.py): a member's intake rows are found by the purchase event ids
-- the points service names, then by the customer reference those purchases carry, for its export and its erasure.
CREATE INDEX intake_requests_by_event ON intake_requests (event_id);
CREATE INDEX intake_requests_by_customer ON intake_requests (partner_id, customer_ref) WHERE customer_ref IS NOT NULL;
CREATE INDEX intake_refusals_by_customer ON intake_refusals (partner_id, customer_ref) WHERE customer_ref IS NOT NULL;
