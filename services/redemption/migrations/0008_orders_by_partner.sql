-- Partner staff and ops list the orders placed with one partner, newest first: all of them, or those in
-- given states (the staff's work queue: orders awaiting fulfilment).
CREATE INDEX orders_by_partner ON orders (partner_id, created_at DESC, order_id DESC);
CREATE INDEX orders_by_partner_state ON orders (partner_id, state, created_at DESC, order_id DESC);
