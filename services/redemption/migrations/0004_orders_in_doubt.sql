-- An order is in doubt while a call to the partner may have reached it without its answer
-- reaching us; such an order is asked again, never cancelled for a missed deadline.
ALTER TABLE orders ADD COLUMN in_doubt boolean NOT NULL DEFAULT false;
