-- One row per signed-in person. The cookie carries a random token; only its SHA-256 is stored, so a
-- copy of this table signs nobody in. The bearer token is the one the person's identity gave them.
CREATE TABLE sessions (
    token_hash  bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    subject     text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    role        text NOT NULL CHECK (role IN ('member', 'partner', 'ops')),
    partner_id  text CHECK ((role = 'partner') = (partner_id IS NOT NULL)),
    display     text NOT NULL DEFAULT '' CHECK (length(display) <= 200),
    bearer      text NOT NULL,
    csrf        text NOT NULL CHECK (length(csrf) >= 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

CREATE INDEX sessions_expiry ON sessions (expires_at);
