-- Whose points a purchase earned: the account they were credited to, and the member who claimed them
-- when they waited unclaimed. A refund takes them back from there, even after ops unlinked the
-- identifier (the member keeps what it brought, and gives back what is refunded). NULL for purchases
-- recorded before this column: their identifier's holder, as before.
ALTER TABLE earnings ADD COLUMN holder_account text REFERENCES accounts (account_id);
