-- Prices per segment: what members of a published segment pay for an offer ({segment id: points}), and the
-- segments' members as the points service publishes them on loyalty.segment-members.v1, in parts.
ALTER TABLE catalog
    ADD COLUMN segment_prices jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(segment_prices) = 'object');

CREATE TABLE segment_publications (
    publication_id uuid        PRIMARY KEY,
    segment_id     uuid        NOT NULL,
    as_of          timestamptz NOT NULL,
    parts          integer     NOT NULL CHECK (parts >= 1),
    parts_seen     integer     NOT NULL DEFAULT 0 CHECK (parts_seen BETWEEN 0 AND parts)
);
CREATE TABLE segment_publication_parts (
    publication_id uuid    NOT NULL REFERENCES segment_publications (publication_id) ON DELETE CASCADE,
    part           integer NOT NULL,
    PRIMARY KEY (publication_id, part)
);
CREATE TABLE segment_publication_members (
    publication_id uuid NOT NULL REFERENCES segment_publications (publication_id) ON DELETE CASCADE,
    member_id      uuid NOT NULL,
    PRIMARY KEY (member_id, publication_id)
);
-- Each segment's members now: its latest publication whose parts all arrived.
CREATE TABLE segment_current (
    segment_id     uuid        PRIMARY KEY,
    publication_id uuid        NOT NULL REFERENCES segment_publications (publication_id),
    as_of          timestamptz NOT NULL
);
