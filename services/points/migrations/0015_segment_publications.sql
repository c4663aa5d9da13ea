-- Segments that ops publish for member prices: each publication lists the segment's members at a moment on
-- loyalty.segment-members.v1 (through the outbox, in the same transaction); the redemption service prices by it.
CREATE TABLE segment_publications (
    publication_id uuid        PRIMARY KEY,
    segment_id     uuid        NOT NULL REFERENCES segments (segment_id),
    as_of          timestamptz NOT NULL,
    members        integer     NOT NULL CHECK (members >= 0),
    parts          integer     NOT NULL CHECK (parts >= 1),
    published_by   text        NOT NULL,
    published_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX segment_publications_latest ON segment_publications (segment_id, as_of DESC);
