-- Identifiers are linked only with proof from their owner (DESIGN.md, Security): one-time link codes
-- (contracts.link_codes), or by ops. Every link and unlink is kept for the member's history.

-- Codes an identifier's owner issued: partners through the partners service (loyalty.link-codes.v1),
-- ops and the card system through POST /v1/ops/link-codes. Only the hash of a code is kept; two
-- issuers may draw the same code for different identifiers, so the identifier is part of the key.
CREATE TABLE link_codes (
    code_hash      text NOT NULL CHECK (code_hash ~ '^[0-9a-f]{64}$'),
    identifier     text NOT NULL CHECK (identifier ~ '^(partner|card):'),
    issued_by      text NOT NULL CHECK (length(issued_by) BETWEEN 1 AND 200),
    issued_at      timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    -- Wrong codes tried for the identifier while this one was open; at the limit it is dead.
    wrong_attempts integer NOT NULL DEFAULT 0 CHECK (wrong_attempts >= 0),
    used_at        timestamptz,
    used_by        uuid REFERENCES members (member_id),
    PRIMARY KEY (code_hash, identifier),
    CHECK ((used_at IS NULL) = (used_by IS NULL))
);
CREATE INDEX link_codes_open ON link_codes (identifier, expires_at) WHERE used_at IS NULL;

-- Who linked or unlinked an identifier, when, and on what authority. `seq` is drawn from the
-- transfers' sequence, so that one cursor pages a member's history of both, newest first.
CREATE TABLE identifier_events (
    seq            bigint PRIMARY KEY DEFAULT nextval('transfers_seq_seq'),
    member_id      uuid NOT NULL REFERENCES members (member_id),
    identifier     text NOT NULL REFERENCES identifiers (identifier),
    action         text NOT NULL CHECK (action IN ('linked', 'unlinked')),
    actor          text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    actor_role     text NOT NULL CHECK (actor_role IN ('member', 'ops')),
    via            text NOT NULL CHECK (via IN ('link_code', 'ops')),
    code_issued_by text,
    occurred_at    timestamptz NOT NULL,
    CHECK ((via = 'link_code') = (code_issued_by IS NOT NULL)),
    CHECK (via = 'ops' OR action = 'linked'),
    CHECK (actor_role = 'ops' OR via = 'link_code')
);
CREATE INDEX identifier_events_history ON identifier_events (member_id, seq);
