-- Records this service's consumers could not apply (loyalty_runtime.dead_letters): stored once per
-- place in Kafka however often their batch is read again, listed and replayed by ops, and sent on
-- to <topic>.dlq through the outbox in the same transaction.
CREATE TABLE dead_letters (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic            text NOT NULL,
    partition        integer NOT NULL,
    record_offset    bigint NOT NULL,
    record_timestamp bigint NOT NULL,
    key              text,
    value            bytea NOT NULL,
    headers          jsonb NOT NULL DEFAULT '{}',
    event_id         uuid,
    event_type       text,
    reason           text NOT NULL,
    error_class      text NOT NULL,
    dead_at          timestamptz NOT NULL DEFAULT now(),
    replays          integer NOT NULL DEFAULT 0,
    last_replayed_at timestamptz,
    UNIQUE (topic, partition, record_offset, record_timestamp)
);
CREATE INDEX dead_letters_by_topic ON dead_letters (topic, id);

-- Dead letters and their replays keep the key the record had, which may be none.
ALTER TABLE outbox ALTER COLUMN key DROP NOT NULL;
