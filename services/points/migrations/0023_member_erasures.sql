-- Data rights (points/domain/erasure.py): each member's erasure, once. The key of its pseudonyms is never stored.
CREATE TABLE member_erasures (
    member_id      uuid PRIMARY KEY REFERENCES members (member_id),
    erasure_id     uuid NOT NULL UNIQUE,
    requested_by   text NOT NULL,
    requested_role text NOT NULL CHECK (requested_role IN ('member', 'ops')),
    identifiers    integer NOT NULL CHECK (identifiers >= 0),
    erased_at      timestamptz NOT NULL
);

-- An erasure finds the link codes of the member's identifiers, used or not (link_codes_open has only open ones).
CREATE INDEX link_codes_by_identifier ON link_codes (identifier);
