-- Each partner's keys for the fulfilment callbacks this service signs. No secret is stored: a key's
-- secret is derived from FULFILMENT_SIGNING_SECRET, the partner id and the version (domain/fulfilment_keys.py).
-- A partner's current key is its highest version whose active_from has come; the one before it keeps
-- signing until then, so that a rotation gives the partner time to install the new secret.
CREATE TABLE fulfilment_keys (
    partner_id  text        NOT NULL,
    version     int         NOT NULL CHECK (version >= 1),
    key_id      text        NOT NULL UNIQUE,
    issued      boolean     NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    active_from timestamptz NOT NULL,
    PRIMARY KEY (partner_id, version)
);
COMMENT ON COLUMN fulfilment_keys.issued IS 'Its secret was shown to ops (false: made on first use, never shown).';
