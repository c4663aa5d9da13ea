-- Inbox for the events this service consumes (hold results, offers), written in the
-- same transaction as their effects.
CREATE TABLE inbox (
    event_id    uuid PRIMARY KEY,
    topic       text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
