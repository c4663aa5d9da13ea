-- The partner registry. Credentials and earn contracts arrive in later migrations.
CREATE TABLE partners (
    partner_id text PRIMARY KEY CHECK (partner_id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Inbox for the events this service consumes (ledger and redemption events, for settlement).
CREATE TABLE inbox (
    event_id    uuid PRIMARY KEY,
    topic       text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
